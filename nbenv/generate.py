"""Render an environment's generated files (pure given its inputs) and write or check them."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nbenv.errors import SpecError, UsageError
from nbenv.fs import write_files
from nbenv.lock import Lock, name_problem, read_lock
from nbenv.plan import BuildPlan, build_plan, compose_project, jupyter_problem, missing_parent_groups, run_plan
from nbenv.render.compose import render_compose
from nbenv.render.dockerfile import render_dockerfile
from nbenv.spec.load import Loader, poetry_groups, project_mount_target
from nbenv.workspace import Workspace


def token_file(name: str) -> str:
    """Repo-relative path of the environment's Jupyter token file (git-ignored state)."""
    return posixpath.join(".nbenv", "run", name, "jupyter_token")


def load_lock(ws: Workspace) -> Lock:
    return read_lock(ws.root / "poetry.lock", ws.pyproject.data, cache_root=ws.root)


def plan_for(ws: Workspace, loader: Loader, lock: Lock, name: str, groups: Sequence[str] | None = None) -> BuildPlan:
    """The build plan of `name`, with every cross-check that needs both spec and lock."""
    env = loader.environment(name)
    doc = loader.file(name).doc
    parent = loader.environment(env.extends) if env.extends else None
    if groups is not None:
        known = set(env.groups) | set(poetry_groups(ws))
        for group in groups:
            if problem := name_problem(group, "group name"):
                raise UsageError(f"--groups: {problem}")
            if group not in known:
                raise SpecError(
                    f"--groups: unknown Poetry group {group!r}",
                    f"pyproject.toml defines: {', '.join(poetry_groups(ws))}",
                )
        if parent and (missing := missing_parent_groups(env, groups)):
            raise SpecError(
                f"--groups: must include {', '.join(missing)}: {name} builds FROM {parent.name}'s image, which has them"
            )
    plan = build_plan(
        env,
        lock=lock,
        config=ws.config,
        python_path=project_mount_target(ws, env) or [],
        parent=parent,
        groups=groups,
    )
    if problem := jupyter_problem(env, lock, plan.groups):
        raise doc.error(
            ("groups",), problem, "add the missing package to one of these groups in pyproject.toml, then `poetry lock`"
        )
    return plan


# Run inside the image at build time (standard library only), copied into the build context's build/.
BUILD_SCRIPTS = ("register.py", "fetch_uv.py")


def render(ws: Workspace, plan: BuildPlan) -> dict[Path, str]:
    """Every generated file of one environment, by absolute path."""
    out = ws.root / plan.out_dir
    project = compose_project(ws.config, plan.env.name)
    run = run_plan(plan.env, plan, project=project, token_file=token_file(plan.env.name))
    files = {
        out / "Dockerfile": render_dockerfile(plan),
        out / "compose.yaml": render_compose(run, plan),
    }
    scripts = resources.files("nbenv.render")
    files.update({out / "build" / name: scripts.joinpath(name).read_text("utf-8") for name in BUILD_SCRIPTS})
    files.update({out / layer.filename: layer.text for layer in plan.layers})
    return files


@dataclass(frozen=True)
class GenerateResult:
    changed: list[str]  # repo-relative paths written (or, with check, that would change)
    unchanged: list[str]
    stale: list[str]  # files in a generated directory that nbenv no longer produces
    rendered: dict[Path, str]  # every file's text, by absolute path (what a build context needs)


def generate(ws: Workspace, plans: Sequence[BuildPlan], *, check: bool) -> GenerateResult:
    """Write the files of `plans` (all or nothing), or with `check` only report what would change."""
    wanted: dict[Path, str] = {}
    for plan in plans:
        wanted.update(render(ws, plan))
    changed = {p: t for p, t in wanted.items() if _read(p) != t}
    stale = sorted(ws.rel(p) for plan in plans for p in _existing_files(ws.root / plan.out_dir) if p not in wanted)
    if not check:
        write_files(changed)
        for rel in stale:
            (ws.root / rel).unlink(missing_ok=True)
    return GenerateResult(
        changed=sorted(ws.rel(p) for p in changed),
        unchanged=sorted(ws.rel(p) for p in wanted if p not in changed),
        stale=stale,
        rendered=wanted,
    )


def _existing_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
