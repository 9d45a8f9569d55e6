"""`nbenv devcontainer NAME`: .devcontainer/NAME/devcontainer.json, written or drift-checked like docker/NAME/
(the same manifest and atomic writes: generate.write_outputs), and `--prepare`, its initializeCommand.

The file points at docker/NAME/compose.yaml (written in the same step, so what it points at is current);
render/devcontainer.py says what it holds and why. `--prepare` is `nbenv up` without the start
(running.lifecycle.prepare), plus the check that the editor's container (which runs as the image's user,
compose's default: the devcontainer CLI passes no nbenv values) writes the source as the workspace's owner.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbenv.constants import USER_UID
from nbenv.errors import DriftError, RunError
from nbenv.generate import GenerateResult, render, write_outputs
from nbenv.identity import Identity
from nbenv.plan import BuildPlan
from nbenv.project import Project
from nbenv.render.devcontainer import FILENAME, out_dir, render_devcontainer
from nbenv.ui import Say
from nbenv.workspace import Workspace

if TYPE_CHECKING:  # `nbenv generate` imports this module: the engine-side ones load with --prepare only
    from nbenv.build import BuiltImage
    from nbenv.running.lifecycle import Prepared


def devcontainer_file(ws: Workspace, name: str) -> Path:
    return ws.root / out_dir(name) / FILENAME


def files(ws: Workspace, plan: BuildPlan) -> dict[Path, str]:
    """The devcontainer.json of one (committed, not --groups) environment, by absolute path."""
    compose = posixpath.relpath(posixpath.join(plan.out_dir, "compose.yaml"), out_dir(plan.env.name))
    return {devcontainer_file(ws, plan.env.name): render_devcontainer(plan, compose_file=compose)}


def outputs(ws: Workspace, plan: BuildPlan) -> list[tuple[str, dict[Path, str]]]:
    """What `nbenv devcontainer NAME` writes: docker/NAME/ (what the file points at) and .devcontainer/NAME/."""
    return [(plan.out_dir, render(ws, plan)), (out_dir(plan.env.name), files(ws, plan))]


def with_devcontainers(ws: Workspace, plans: Sequence[BuildPlan]) -> list[tuple[str, dict[Path, str]]]:
    """What `nbenv generate` writes: docker/NAME/ of each plan, and .devcontainer/NAME/ of each environment that
    has one already (never for a --groups variant, which is not committed)."""
    found: list[tuple[str, dict[Path, str]]] = []
    for plan in plans:
        found.append((plan.out_dir, render(ws, plan)))
        if not plan.is_variant and has_devcontainer(ws, plan.env.name):
            found.append((out_dir(plan.env.name), files(ws, plan)))
    return found


def has_devcontainer(ws: Workspace, name: str) -> bool:
    """Whether the environment has a devcontainer.json already (a regular file, never through a link):
    then `nbenv generate` keeps it current too."""
    try:
        return stat.S_ISREG(os.lstat(devcontainer_file(ws, name)).st_mode)
    except OSError:
        return False


def write(project: Project, names: Sequence[str], *, check: bool) -> GenerateResult:
    """Write (or with `check` only compare) each environment's devcontainer.json and its docker/ files."""
    ws = project.ws
    project.lock  # noqa: B018  (read before the names are resolved)
    result = write_outputs(ws, [o for name in names for o in outputs(ws, project.plan(name))], check=check)
    drifted = result.changed + result.stale
    if check and drifted:
        raise DriftError(
            f"{len(drifted)} generated file(s) out of date: {', '.join(drifted)}",
            f"run `nbenv devcontainer {' '.join(names)}` and commit the result",
        )
    return result


def check_editor_identity(ws: Workspace, name: str) -> Callable[[Identity], None]:
    """The check `--prepare` makes: the editor's container runs as the image's user (UID USER_UID), so
    that must be who nbenv.identity says writes the workspace (its owner when you are root, else you)."""

    def check(identity: Identity) -> None:
        if identity.uid == USER_UID and identity.host_uid == USER_UID and not identity.userns_host:
            return
        engine = " (rootless engine)" if identity.host_uid != identity.uid else ""
        engine = " (the daemon remaps user namespaces)" if identity.userns_host else engine
        who = f"UID {identity.host_uid}{engine}"
        raise RunError(
            f"{ws.root}: the devcontainer would run as the image's user (UID {USER_UID}), but files in this "
            f"workspace must be written as {who}",
            f"use `nbenv up {name}` (it runs the container as {who}) and attach the editor to its Jupyter URL",
        )

    return check


def prepare_for_editor(
    project: Project, name: str, *, pull: bool, allow_missing: bool, say: Say, live: bool
) -> Prepared:
    """The initializeCommand: data, image, token file and compose.env, as `nbenv up` would; nothing started."""
    from nbenv.running.lifecycle import prepare

    write(project, [name], check=False)  # the file the editor reads is current before compose runs

    def latest(plan: BuildPlan, built: BuiltImage) -> str:
        return f"{plan.image}:latest"  # compose's default image, which the build has just moved

    return prepare(
        project,
        name,
        pull=pull,
        allow_missing=allow_missing,
        live=live,
        say=say,
        check_identity=check_editor_identity(project.ws, name),
        compose_image=latest,
    )
