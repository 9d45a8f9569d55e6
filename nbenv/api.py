"""Typed, keyword-only entry points; the CLI parses arguments and calls exactly one of these.

Each resolves the project (nbenv/project.py: the workspace, its specs, lock and plans, and the Docker
engine where one is needed) and hands over to the module that owns the concern: scaffold (a new
spec), generate, build and images, running.lifecycle (a running environment: up, down, ps, logs, shell),
headless (`nbenv run`), ci, datasync and data.compact (the data).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbenv import datasync, scaffold
from nbenv.adapters.compose import ServiceState
from nbenv.adapters.dvc import TargetStatus
from nbenv.adapters.git import git_state
from nbenv.datasync import PullSummary
from nbenv.errors import DriftError, SpecError, UsageError
from nbenv.generate import MANIFEST, GenerateResult, write_outputs
from nbenv.hub.render import OUT_DIR as HUB_OUT_DIR
from nbenv.plan import data_targets
from nbenv.project import Project, real_engine
from nbenv.safepath import owned_dir
from nbenv.spec.load import (
    SpecErrors,
    base_recipe,
    default_environment,
    environment_names,
    existing_environments,
    load_file,
    new_environment_hint,
)
from nbenv.spec.models import Environment
from nbenv.ui import Say, quiet
from nbenv.workspace import Workspace

if TYPE_CHECKING:  # the modules that build, push or run load on first use: `nbenv data pull` needs none of them
    from nbenv.base_image import BaseRecipe
    from nbenv.build import BuiltImage
    from nbenv.ci import CiResult
    from nbenv.data.compact import CompactResult
    from nbenv.hub.generate import HubResult
    from nbenv.hub.run import HubStatus
    from nbenv.images import Inspection, PushResult
    from nbenv.running.headless import RunResult
    from nbenv.running.lifecycle import Running
    from nbenv.wheel_preflight import Preflight


def _workspace(repo: Path | None) -> Workspace:
    return Workspace.discover(repo)


def _project(repo: Path | None, *, engine: bool = False) -> Project:
    """The project at `repo` (found from the cwd without one); with `engine`, the engine is asked first."""
    project = Project.discover(repo)
    if engine:
        project.engine  # noqa: B018  (made, and checked to answer, before anything else is loaded)
    return project


def _names(ws: Workspace, names: Sequence[str]) -> list[str]:
    known = existing_environments(ws)
    return list(names) or known


def validate(*, repo: Path | None = None) -> list[Environment]:
    """Check every environment (spec, repo, lock); raise SpecErrors listing every problem."""
    project = _project(repo)
    errors: list[SpecError] = []
    resolved: list[Environment] = []
    project.lock  # noqa: B018  (a bad poetry.lock is refused even without environments)
    for name in _names(project.ws, ()):
        try:
            project.plan(name)
            resolved.append(project.loader.environment(name))
        except SpecErrors as exc:
            errors.extend(e for e in exc.errors if e.message not in {x.message for x in errors})
        except SpecError as exc:
            if exc.message not in {x.message for x in errors}:
                errors.append(exc)
    if errors:
        raise SpecErrors(errors)
    return resolved


@dataclass(frozen=True)
class EnvironmentRow:
    name: str
    extends: str | None
    groups: tuple[str, ...]
    port: int | None
    description: str
    problem: str | None


def first_environment_hint(*, repo: Path | None = None) -> str:
    """How to create a first environment here, with this project's own group names."""
    return new_environment_hint(_workspace(repo))


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of `environments/NAME.toml`, from the pydantic model that validates it."""
    from nbenv.spec.models import EnvironmentFile

    schema = EnvironmentFile.model_json_schema()
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "nbenv environment spec"}


def list_environments(*, repo: Path | None = None) -> list[EnvironmentRow]:
    """One row per environments/*.toml; an invalid file is listed with its first problem."""
    project = _project(repo)
    rows = []
    for name in environment_names(project.ws):
        try:
            env = project.loader.environment(name)
            rows.append(EnvironmentRow(name, env.extends, env.groups, env.jupyter.port, env.description, None))
        except SpecError as exc:
            rows.append(EnvironmentRow(name, None, (), None, "", exc.message))
    return rows


def show(*, repo: Path | None = None, name: str) -> Environment:
    """The resolved environment (extends applied, defaults filled in)."""
    return _project(repo).loader.environment(name)


def generate(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    groups: Sequence[str] | None = None,
    check: bool = False,
) -> GenerateResult:
    """Write docker/NAME/ for each environment (all by default); with `check`, write nothing and
    raise DriftError naming every file that would change."""
    project = _project(repo)
    ws = project.ws
    if groups is not None and len(names) != 1:
        example = names[0] if names else existing_environments(ws)[0]
        raise UsageError(
            f"--groups applies to one environment: name it, e.g. `nbenv generate {example} --groups {','.join(groups)}`"
        )
    project.lock  # noqa: B018  (read before the names are resolved)
    plans = [project.plan(name, groups) for name in _names(ws, names)]
    # An environment with a .devcontainer/NAME/devcontainer.json (`nbenv devcontainer NAME`) keeps it current too.
    from nbenv.devcontainer import with_devcontainers

    result = write_outputs(ws, with_devcontainers(ws, plans), check=check)
    drifted = result.changed + result.stale + _orphans(ws, names)
    if check and drifted:
        raise DriftError(
            f"{len(drifted)} generated file(s) out of date: {', '.join(drifted)}",
            "run `nbenv generate` and commit the result",
        )
    return result


def _orphans(ws: Workspace, names: Sequence[str]) -> list[str]:
    """Generated directories whose environment no longer exists: docker/NAME/ and .devcontainer/NAME/
    (symlinks are not followed: never ours)."""
    if names:
        return []
    from nbenv.render.devcontainer import DEVCONTAINER_DIR, FILENAME

    known = set(environment_names(ws))
    # docker/hub/ is `nbenv hub generate`'s. A .devcontainer/NAME/ is nbenv's only with its manifest or its
    # generated header: a devcontainer.json of the user's own is never reported.
    generated = _orphan_dirs(
        ws, ws.config.generated_dir, known | {HUB_OUT_DIR}, lambda d: _is_regular(d / "Dockerfile")
    )
    editors = _orphan_dirs(ws, DEVCONTAINER_DIR, known, lambda d: _starts_with(d / FILENAME, DEVCONTAINER_MARK))
    return sorted(generated + editors)


DEVCONTAINER_MARK = b"// Generated by nbenv"


def _orphan_dirs(ws: Workspace, rel: str, known: set[str], looks_generated: Callable[[Path], bool]) -> list[str]:
    """The directories in `rel` that nbenv generated (a manifest, or `looks_generated`) for no known name."""
    try:
        root = owned_dir(ws.root, rel, what="generated files", create=False)
    except SpecError:
        return []  # generate() has refused it already, or a link nbenv does not follow
    if not root.is_dir():
        return []
    return [
        ws.rel(d) + "/"
        for d in root.iterdir()
        if not d.is_symlink()
        and d.is_dir()
        and d.name not in known
        and (_is_regular(d / MANIFEST) or looks_generated(d))
    ]


def _starts_with(path: Path, mark: bytes) -> bool:
    """Whether `path` is a regular file (never through a link) whose first bytes are `mark`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, len(mark)) == mark
    except OSError:
        return False
    finally:
        os.close(fd)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def new(
    *,
    repo: Path | None = None,
    name: str,
    groups: Sequence[str],
    extends: str | None = None,
    description: str = "",
    force: bool = False,
    data: Sequence[str] = (),
) -> scaffold.Written:
    """Write environments/NAME.toml with the given groups and DVC-tracked data (validated first;
    nothing written on error); return its path and the notes on it."""
    ws = _workspace(repo)
    return scaffold.new(ws, name=name, groups=groups, extends=extends, description=description, force=force, data=data)


# --- images and running environments (need a Docker engine) ---------------------------------


def image_build(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    all_envs: bool = False,
    groups: Sequence[str] | None = None,
    no_cache: bool = False,
    cache_from: Sequence[str] = (),
    cache_to: Sequence[str] = (),
    platform: str | None = None,
    say: Say = quiet,
    live: bool = False,
) -> list[BuiltImage]:
    """Build each environment's image (parents first); skip what is up to date. No names: every
    environment with `all_envs`, else the default one (`nbenv image build --groups ...` as typed).
    One image per platform of an environment's `platforms` (one after the other), or for `platform` only."""
    if platform is not None:
        _check_platform(platform)  # before the engine is asked anything
    project = _project(repo)
    ws = project.ws
    if not names and not all_envs:
        names = [default_environment(ws)]
    if groups is not None and len(names) != 1:
        raise UsageError("--groups applies to one environment: name it (or none, for the default one)")
    builder = project.builder(say=say, live=live)
    from nbenv.build import BuildOptions

    options = BuildOptions(no_cache=no_cache, cache_from=tuple(cache_from), cache_to=tuple(cache_to))
    if platform is not None:
        return [builder.build(name, groups=groups, options=options, platform=platform) for name in _names(ws, names)]
    if groups is not None:
        return [builder.build(name, groups=groups, options=options) for name in _names(ws, names)]
    chosen = _names(ws, names)
    for name in chosen:  # before any build: a user learns what would compile under emulation first
        _warn_foreign_compiles(project, name, [p for p in builder.platforms(name) if builder.foreign(p)], say)
    return [built for name in chosen for _, built in builder.build_platforms(name, options=options)]


def _warn_foreign_compiles(project: Project, name: str, foreign: Sequence[str], say: Say) -> None:
    """The wheel pre-flight of `name` for its emulated platforms, said as warnings (a package without a
    wheel is built from its sdist under QEMU: slow, and it may need a compiler); `nbenv image preflight`
    is the gate that fails."""
    if not foreign:
        return
    try:
        found = _preflight(project, name, foreign)
    except UsageError:  # a base whose Python and glibc nbenv does not know: nothing to check against
        say(f"{name}: no wheel pre-flight for {', '.join(foreign)} (unknown base Python/glibc)")
        return
    if found.compiles:
        say(f"warning: {found.summary()} under emulation:")
        for item in found.compiles:
            say(f"  {item.line()}")


def image_status(*, repo: Path | None = None, names: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Per environment (and per platform of its `platforms`): up to date, or stale and why (what `up` or
    `image build` would rebuild)."""
    project = _project(repo)
    builder = project.builder(say=quiet, live=False)
    rows: list[tuple[str, str]] = []
    for name in _names(project.ws, names):
        if project.loader.environment(name).platforms is None:
            rows.append((name, builder.status(name)[0]))
        else:
            rows += [(f"{name} {p}", builder.status(name, p)[0]) for p in builder.platforms(name)]
    return rows


def image_inspect(*, repo: Path | None = None, name: str) -> Inspection:
    """An environment's image: labels, provenance and its whole lineage of build records."""
    project = _project(repo)
    load_file(project.ws, name)  # an unknown name is a spec error with a did-you-mean, before the engine is asked
    from nbenv import images

    platforms = project.loader.environment(name).platforms
    return images.inspect(project.engine, project.ws, name, git_state(project.ws.root), platforms)


def image_push(
    *,
    repo: Path | None = None,
    name: str,
    registry: str | None = None,
    allow_dirty: bool = False,
    say: Say = quiet,
    live: bool = False,
) -> PushResult:
    """Push an environment's image under the tag rules; refuse a dirty tree and never move a fixed tag."""
    project = _project(repo)
    load_file(project.ws, name)
    from nbenv import images

    target = images.registry_of(project.ws, registry)
    engine = project.engine
    builder = project.builder(say=say, live=live)
    return images.push(builder, engine, project.ws, name, registry=target, allow_dirty=allow_dirty, say=say)


def image_base(
    *,
    repo: Path | None = None,
    tag: str | None = None,
    suite: str | None = None,
    cuda: bool = False,
    platform: str | None = None,
    say: Say = quiet,
) -> tuple[str, str]:
    """Build a base image from Debian packages (python3, venv, tini, user jovyan) without any registry;
    return (tag, image id). Without a tag: nbenv/debian-python:SUITE. A tag declared in the repository's
    [tool.nbenv.base_images] brings its suite and packages; nbenv/debian-python:SUITE its suite.
    `platform` another than the engine's: mmdebstrap --arch under QEMU, tagged TAG-ARCH."""
    from nbenv.base_image import base_image_plan, build_base_image, nbenv_recipe, suite_tag
    from nbenv.constants import DEFAULT_SUITE, NBENV_BASE_REPOSITORY
    from nbenv.platforms import platform_tag
    from nbenv.spec.load import base_recipe

    if platform is not None:
        _check_platform(platform)  # before the engine is asked anything
    tag = tag or suite_tag(suite or DEFAULT_SUITE, cuda=cuda)
    try:
        ws: Workspace | None = _workspace(repo)
    except SpecError:
        if repo is not None:
            raise
        ws = None  # outside any project: only nbenv's own tags have a recipe
    recipe = base_recipe(ws, tag) if ws is not None else nbenv_recipe(tag)
    if suite is not None and recipe is not None and recipe.suite != suite:
        what = "declared in [tool.nbenv.base_images] as" if ws and tag in ws.config.base_images else "nbenv's base of"
        raise UsageError(
            f"--suite {suite}: {tag} is {what} Debian {recipe.suite}",
            f"drop --suite, or build --tag {NBENV_BASE_REPOSITORY}:{suite}",
        )
    if cuda and recipe is not None and not recipe.cuda:
        raise UsageError(
            _no_cuda_recipe(ws, tag, recipe), "drop --tag (nbenv then names it SUITE-cuda), or declare it cuda = true"
        )
    engine = real_engine() if platform else None  # which platform is foreign is the engine's to say
    foreign = _foreign_platform(platform, engine.platform) if engine else None
    plan = base_image_plan(
        tag=platform_tag(tag, foreign, engine.platform) if foreign and engine else tag,
        suite=suite or (recipe.suite if recipe else DEFAULT_SUITE),
        extra_packages=recipe.packages if recipe else (),
        cuda=cuda or (recipe.cuda if recipe else False),
        platform=foreign,
    )
    return plan.tag, build_base_image(plan, engine=engine or real_engine(), log=say)


def _foreign_platform(platform: str | None, native: str) -> str | None:
    """--platform, checked (UsageError), when it is not the engine's own; else None."""
    from nbenv.platforms import canonical

    if platform is None:
        return None
    _check_platform(platform)
    return None if canonical(platform) == native else canonical(platform)


def _check_platform(platform: str) -> None:
    from nbenv.platforms import platform_problem

    if problem := platform_problem(platform):
        raise UsageError(f"--platform: {problem}", "e.g. --platform linux/arm64")


def image_preflight(
    *,
    repo: Path | None = None,
    name: str | None = None,
    platforms: Sequence[str] = (),
    python: str | None = None,
    glibc: str | None = None,
) -> Preflight:
    """The wheel pre-flight of an environment's image (the default one without a name): every package
    its groups select from poetry.lock with no wheel for one of `platforms` (default linux/amd64 and
    linux/arm64) at the base's Python and glibc. Builds nothing, needs no engine."""
    project = _project(repo)
    return _preflight(project, name or default_environment(project.ws), platforms, python=python, glibc=glibc)


def _preflight(
    project: Project, name: str, platforms: Sequence[str], *, python: str | None = None, glibc: str | None = None
) -> Preflight:
    from nbenv import wheel_preflight
    from nbenv.constants import SUITE_GLIBC, SUITE_PYTHON

    plan = project.plan(name)
    base = plan.env.base_image
    recipe = base_recipe(project.ws, base)
    python = python or (SUITE_PYTHON.get(recipe.suite) if recipe else None)
    glibc = glibc or (SUITE_GLIBC.get(recipe.suite) if recipe else None)
    if python is None or glibc is None:
        raise UsageError(
            f"{base}: nbenv does not know this base image's Python and glibc (not one it makes from a suite it knows)",
            "name them, e.g. --python 3.11 --glibc 2.36 (`ldd --version` in the image shows its glibc)",
        )
    packages = wheel_preflight.selected(project.lock, plan.groups)
    chosen = list(platforms) or list(wheel_preflight.DEFAULT_PLATFORMS)
    return wheel_preflight.preflight(name, base, packages, chosen, python=python, glibc=glibc)


def _no_cuda_recipe(ws: Workspace | None, tag: str, recipe: BaseRecipe) -> str:
    """`--cuda` for a tag whose recipe has no CUDA: nbenv's own SUITE tag, or a base declared without it."""
    if ws is not None and tag in ws.config.base_images:
        return f"--cuda: {tag} is declared in [tool.nbenv.base_images] without cuda = true"
    return f"--cuda: {tag} is nbenv's base of Debian {recipe.suite} without CUDA"


def devcontainer(*, repo: Path | None = None, name: str | None = None, check: bool = False) -> GenerateResult:
    """Write .devcontainer/NAME/devcontainer.json (and docker/NAME/, which it points at); with `check`,
    write nothing and raise DriftError naming every file that would change."""
    from nbenv import devcontainer as editor

    project = _project(repo)
    return editor.write(project, [name or default_environment(project.ws)], check=check)


def devcontainer_prepare(
    *,
    repo: Path | None = None,
    name: str | None = None,
    pull: bool = True,
    allow_missing: bool = False,
    say: Say = quiet,
    live: bool = False,
) -> str:
    """The devcontainer's initializeCommand: `nbenv up` without starting anything (data, image, token file,
    compose.env), after checking the editor's container would write the source as its owner; the image."""
    from nbenv import devcontainer as editor

    project = _project(repo, engine=True)
    name = name or default_environment(project.ws)
    return editor.prepare_for_editor(project, name, pull=pull, allow_missing=allow_missing, say=say, live=live).image


def up(
    *,
    repo: Path | None = None,
    name: str | None = None,
    port: int | None = None,
    timeout: float = 180.0,
    pull: bool = True,
    allow_missing: bool = False,
    say: Say = quiet,
    live: bool = False,
) -> Running:
    """Pull the data, build what is stale, start the environment, wait until Jupyter answers; return its URL.

    Data comes first: a missing dataset fails in seconds, not after a long build.
    """
    project = _project(repo, engine=True)
    from nbenv.running import lifecycle

    options = lifecycle.UpOptions(port=port, timeout=timeout, pull=pull, allow_missing=allow_missing, live=live)
    return lifecycle.up(project, name or default_environment(project.ws), options, say=say)


def down(*, repo: Path | None = None, name: str | None = None, say: Say = quiet) -> None:
    """Remove the environment's containers and network; keep images, data and the source."""
    project = _project(repo, engine=True)
    from nbenv.running import lifecycle

    lifecycle.down(project, name=name or default_environment(project.ws), say=say)


def ps(*, repo: Path | None = None) -> list[tuple[str, ServiceState]]:
    """The state of every environment's container."""
    from nbenv.running import lifecycle

    return lifecycle.ps(_project(repo, engine=True))


def logs(*, repo: Path | None = None, name: str | None = None, follow: bool = False, tail: int | None = None) -> int:
    project = _project(repo, engine=True)
    from nbenv.running import lifecycle

    return lifecycle.logs(project, name=name or default_environment(project.ws), follow=follow, tail=tail)


def shell(*, repo: Path | None = None, name: str, command: Sequence[str] = ()) -> int:
    from nbenv.running import lifecycle

    return lifecycle.shell(_project(repo, engine=True), name=name, command=command)


def run(
    *,
    repo: Path | None = None,
    name: str,
    notebook: Path,
    parameters: Sequence[str] = (),
    output: Path | None = None,
    timeout: float | None = None,
    pull: bool = True,
    build: bool = True,
    say: Say = quiet,
    live: bool = False,
) -> RunResult:
    """Execute `notebook` headless in `name`'s image (pulling the data and building the image first
    unless told not to); write the executed notebook to `output` (default NAME.out.ipynb beside it)."""
    from nbenv.running import headless

    return headless.run_notebook(
        Project.discover(repo),
        name=name,
        notebook=notebook,
        parameters=parameters,
        output=output,
        timeout=timeout,
        pull=pull,
        build=build,
        say=say,
        live=live,
    )


# --- data ------------------------------------------------------------------------------------


def _data_targets_of(ws: Workspace, names: Sequence[str], all_envs: bool) -> list[str]:
    if all_envs and names:
        raise UsageError("--all uses every environment's data: give either names or --all", "drop one of them")
    loader = Project(ws).loader
    chosen = environment_names(ws) if all_envs else (names or [default_environment(ws, loader)])
    return data_targets([loader.environment(n) for n in chosen])


def data_pull(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    all_envs: bool = False,
    jobs: int | None = None,
    remote: str | None = None,
    say: Say = quiet,
) -> PullSummary:
    """Fetch and check out exactly the data the environments declare (hash-verified)."""
    ws = _workspace(repo)
    return datasync.pull(ws.root, _data_targets_of(ws, names, all_envs), jobs=jobs, remote=remote, say=say)


def data_push(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    all_envs: bool = False,
    jobs: int | None = None,
    remote: str | None = None,
) -> tuple[list[str], int]:
    ws = _workspace(repo)
    targets = _data_targets_of(ws, names, all_envs)
    return targets, datasync.push(ws.root, targets, jobs=jobs, remote=remote)


def data_status(
    *, repo: Path | None = None, names: Sequence[str] = (), all_envs: bool = False, remote: str | None = None
) -> list[TargetStatus]:
    ws = _workspace(repo)
    return datasync.status(ws.root, _data_targets_of(ws, names, all_envs), remote=remote)


def data_compact(
    *,
    source: Path,
    output: Path,
    columns: Sequence[str] | None = None,
    partition_by: Sequence[str] = (),
    schema: Sequence[str] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> CompactResult:
    """CSV (plain or gzip) -> Parquet (zstd), streaming, written atomically."""
    from nbenv.data.compact import compact

    overrides: dict[str, str] = {}
    for item in schema:
        column, sep, kind = item.partition("=")
        if not sep or not column or not kind:
            raise UsageError(f"--schema: {item!r} is not COLUMN=TYPE", "e.g. --schema station=int32")
        overrides[column.strip()] = kind.strip()
    return compact(
        source, output, columns=columns, partition_by=partition_by, schema=overrides, on_progress=on_progress
    )


# --- CI --------------------------------------------------------------------------------------


def ci_github(*, repo: Path | None = None, output: Path | None = None, check: bool = False) -> CiResult:
    """Write the GitHub Actions workflow (only if it changed); with `check`, write nothing and raise
    DriftError if it would change."""
    from nbenv import ci

    return ci.github(_project(repo), output=output, check=check)


def hub_generate(*, repo: Path | None = None, check: bool = False, say: Say = quiet, live: bool = False) -> HubResult:
    """Build the offered environments' images and hub layers when stale, then write docker/hub/ (with
    `check`: build and write nothing; DriftError if a file would change)."""
    from nbenv.hub.generate import hub_generate as generate_hub
    from nbenv.hub.generate import offered

    project = _project(repo)
    offered(project.ws)  # [tool.nbenv.hub] validated (and its environments checked) before the engine is asked
    project.engine  # noqa: B018
    return generate_hub(
        project,
        check=check,
        say=say,
        live=live,
        preflight=lambda name, platforms: _warn_foreign_compiles(project, name, platforms, say),
    )


def hub_up(
    *,
    repo: Path | None = None,
    bind: str | None = None,
    port: int | None = None,
    swarm: bool = False,
    say: Say = quiet,
    live: bool = False,
) -> str:
    """Generate and build what is stale, start the hub on [tool.nbenv.hub] bind:port; its URL. `swarm`:
    the SwarmSpawner variant, on this swarm manager."""
    from nbenv.hub import run
    from nbenv.hub.generate import offered

    project = _project(repo)
    offered(project.ws)  # settings, then the arguments (run.up), then the engine
    return run.up(project, bind=bind, port=port, swarm=swarm, say=say, live=live)


def hub_down(*, repo: Path | None = None, say: Say = quiet) -> list[str]:
    """Stop the hub and its users' servers; the users' volumes (their work) stay."""
    from nbenv.hub import run

    return run.down(_project(repo, engine=True), say=say)


def hub_status(*, repo: Path | None = None) -> HubStatus:
    from nbenv.hub import run

    return run.status(_project(repo, engine=True))
