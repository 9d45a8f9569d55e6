"""Typed, keyword-only entry points; the CLI parses arguments and calls exactly one of these."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tomlkit

from nbenv import datasync, images
from nbenv.adapters.compose import Compose, ServiceState
from nbenv.adapters.dvc import TargetStatus
from nbenv.adapters.engine import Engine
from nbenv.adapters.git import git_state
from nbenv.build import BuildOptions, BuiltImage, ImageBuilder
from nbenv.datasync import PullSummary, data_targets
from nbenv.errors import DataError, DriftError, NbenvError, RunError, SpecError, UsageError
from nbenv.fs import atomic_write
from nbenv.generate import GenerateResult, load_lock, plan_for
from nbenv.generate import generate as write_generated
from nbenv.images import Inspection, PushResult
from nbenv.lock import Lock
from nbenv.plan import GID, SERVICE, UID, BuildPlan
from nbenv.provenance import banner
from nbenv.run import (
    Running,
    compose_for,
    environment_lock,
    is_busy_port,
    jupyter_url,
    port_problem,
    read_token,
    run_dir,
    wait_ready,
    write_compose_env,
    write_token,
)
from nbenv.spec.load import Loader, SpecErrors, environment_names, load_file, poetry_groups
from nbenv.spec.models import SPEC_VERSION, Environment, _env_name, _group, text_problem
from nbenv.tomlio import did_you_mean
from nbenv.ui import warn
from nbenv.workspace import Workspace

if TYPE_CHECKING:
    from nbenv.data.compact import CompactResult

Say = Callable[[str], None]


def _quiet(message: str) -> None:
    """Default progress sink: say nothing."""


def _workspace(repo: Path | None) -> Workspace:
    return Workspace.discover(repo)


def _names(ws: Workspace, names: Sequence[str]) -> list[str]:
    known = environment_names(ws)
    if not known:
        raise SpecError(
            f"{ws.rel(ws.environments_dir)}/: no environments",
            "create one with `nbenv new NAME --groups notebook`",
        )
    return list(names) or known


def validate(*, repo: Path | None = None) -> list[Environment]:
    """Check every environment (spec, repo, lock); raise SpecErrors listing every problem."""
    ws = _workspace(repo)
    loader = Loader(ws)
    errors: list[SpecError] = []
    resolved: list[Environment] = []
    lock = load_lock(ws)
    for name in _names(ws, ()):
        try:
            plan_for(ws, loader, lock, name)
            resolved.append(loader.environment(name))
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


def list_environments(*, repo: Path | None = None) -> list[EnvironmentRow]:
    """One row per environments/*.toml; an invalid file is listed with its first problem."""
    ws = _workspace(repo)
    loader = Loader(ws)
    rows = []
    for name in environment_names(ws):
        try:
            env = loader.environment(name)
            rows.append(EnvironmentRow(name, env.extends, env.groups, env.jupyter.port, env.description, None))
        except SpecError as exc:
            rows.append(EnvironmentRow(name, None, (), None, "", exc.message))
    return rows


def show(*, repo: Path | None = None, name: str) -> Environment:
    """The resolved environment (extends applied, defaults filled in)."""
    ws = _workspace(repo)
    return Loader(ws).environment(name)


def generate(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    groups: Sequence[str] | None = None,
    check: bool = False,
) -> GenerateResult:
    """Write docker/NAME/ for each environment (all by default); with `check`, write nothing and
    raise DriftError naming every file that would change."""
    ws = _workspace(repo)
    if groups is not None and len(names) != 1:
        raise UsageError(
            "--groups applies to one environment: name it, e.g. `nbenv generate traffic-analysis --groups ...`"
        )
    loader = Loader(ws)
    lock = load_lock(ws)
    selected = _names(ws, names)
    plans = [plan_for(ws, loader, lock, name, groups) for name in selected]
    result = write_generated(ws, plans, check=check)
    drifted = result.changed + result.stale + _orphans(ws, names)
    if check and drifted:
        raise DriftError(
            f"{len(drifted)} generated file(s) out of date: {', '.join(drifted)}",
            "run `nbenv generate` and commit the result",
        )
    return result


def _orphans(ws: Workspace, names: Sequence[str]) -> list[str]:
    """Generated directories whose environment no longer exists."""
    if names or not ws.generated_dir.is_dir():
        return []
    known = set(environment_names(ws))
    return sorted(
        ws.rel(d) + "/"
        for d in ws.generated_dir.iterdir()
        if d.is_dir() and (d / "Dockerfile").exists() and d.name not in known
    )


def new(
    *,
    repo: Path | None = None,
    name: str,
    groups: Sequence[str],
    extends: str | None = None,
    description: str = "",
    force: bool = False,
) -> Path:
    """Write environments/NAME.toml with the given groups (validated first; nothing written on error)."""
    ws = _workspace(repo)
    try:
        _env_name(name)
        for group in groups:
            _group(group)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if problem := text_problem(description):
        raise UsageError(f"--description: {problem}", "give one line of plain text")
    known = poetry_groups(ws)
    for group in groups:
        if group not in known:
            raise UsageError(
                f"--groups: unknown Poetry group {group!r}{did_you_mean(group, known)}",
                f"pyproject.toml defines: {', '.join(known)}",
            )
    if not groups and extends is None:
        raise UsageError("--groups: name at least one Poetry group (e.g. --groups notebook)")
    if extends is not None and extends not in environment_names(ws):
        raise UsageError(f"--extends: no environment {extends!r}{did_you_mean(extends, environment_names(ws))}")
    path = ws.spec_path(name)
    if path.exists() and not force:
        raise UsageError(f"{ws.rel(path)}: already exists", "edit it, or pass --force to replace it")
    atomic_write(path, _new_spec_text(name, groups, extends, description))
    return path


def _new_spec_text(name: str, groups: Sequence[str], extends: str | None, description: str) -> str:
    doc = tomlkit.document()
    doc.add(tomlkit.comment('A notebook environment: see README.md, section "Environment spec", for every key.'))
    doc.add("spec_version", SPEC_VERSION)
    doc.add("name", name)
    doc.add("description", description)
    if extends:
        doc.add("extends", extends)
    doc.add("groups", tomlkit.array().multiline(False))
    doc["groups"].extend(groups)
    doc.add("importable", True)
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment("DVC-tracked data, mounted read-only (path: a .dvc output or a dvc.yaml out):"))
    doc.add(tomlkit.comment("[[data]]"))
    doc.add(tomlkit.comment('path = "data/processed/example"'))
    doc.add(tomlkit.nl())
    jupyter = tomlkit.table()
    jupyter.add("port", 8888)
    jupyter.add("interface", "lab")
    doc.add("jupyter", jupyter)
    return tomlkit.dumps(doc)


# --- images and running environments (need a Docker engine) ---------------------------------


def _engine() -> Engine:
    return Engine.from_env()


def image_build(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    groups: Sequence[str] | None = None,
    no_cache: bool = False,
    cache_from: Sequence[str] = (),
    cache_to: Sequence[str] = (),
    say: Say = _quiet,
    live: bool = False,
) -> list[BuiltImage]:
    """Build each environment's image (parents first); skip what is up to date. No names: all of them."""
    ws = _workspace(repo)
    if groups is not None and len(names) != 1:
        raise UsageError("--groups applies to one environment: name it")
    loader, lock = Loader(ws), load_lock(ws)
    builder = ImageBuilder(ws, loader, lock, _engine(), say=say, live=live)
    options = BuildOptions(no_cache=no_cache, cache_from=tuple(cache_from), cache_to=tuple(cache_to))
    return [builder.build(name, groups=groups, options=options) for name in _names(ws, names)]


def image_status(*, repo: Path | None = None, names: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Per environment: up to date, or stale and why (what `up` or `image build` would rebuild)."""
    ws = _workspace(repo)
    builder = ImageBuilder(ws, Loader(ws), load_lock(ws), _engine(), say=_quiet, live=False)
    return [(name, builder.status(name)[0]) for name in _names(ws, names)]


def image_inspect(*, repo: Path | None = None, name: str) -> Inspection:
    """An environment's image: labels, provenance and its whole lineage of build records."""
    ws = _workspace(repo)
    load_file(ws, name)  # an unknown name is a spec error with a did-you-mean, before the engine is asked
    return images.inspect(_engine(), ws, name, git_state(ws.root))


def image_push(
    *,
    repo: Path | None = None,
    name: str,
    registry: str | None = None,
    allow_dirty: bool = False,
    say: Say = _quiet,
    live: bool = False,
) -> PushResult:
    """Push an environment's image under the tag rules; refuse a dirty tree and never move a fixed tag."""
    ws = _workspace(repo)
    load_file(ws, name)
    target = images.registry_of(ws, registry)
    engine = _engine()
    builder = ImageBuilder(ws, Loader(ws), load_lock(ws), engine, say=say, live=live)
    return images.push(builder, engine, ws, name, registry=target, allow_dirty=allow_dirty, say=say)


def image_base(*, tag: str, suite: str = "bookworm", say: Say = _quiet) -> str:
    """Build a base image from Debian packages (python3, venv, tini, user jovyan) without any registry."""
    from nbenv.base_image import base_image_plan, build_base_image

    engine = _engine()
    return build_base_image(base_image_plan(tag=tag, suite=suite), docker_cmd=(engine.docker,), log=say)


def up(
    *,
    repo: Path | None = None,
    name: str,
    port: int | None = None,
    timeout: float = 180.0,
    pull: bool = True,
    allow_missing: bool = False,
    say: Say = _quiet,
    live: bool = False,
) -> Running:
    """Pull the data, build what is stale, start the environment, wait until Jupyter answers; return its URL.

    Data comes first: a missing dataset fails in seconds, not after a long build.
    """
    ws = _workspace(repo)
    engine = _engine()
    loader, lock = Loader(ws), load_lock(ws)
    plan = plan_for(ws, loader, lock, name)
    with environment_lock(ws, name, say=say):  # the same environment's `up`s take turns
        return _up_locked(
            ws,
            engine,
            loader,
            lock,
            plan,
            port=port,
            timeout=timeout,
            pull=pull,
            allow_missing=allow_missing,
            say=say,
            live=live,
        )


def _up_locked(
    ws: Workspace,
    engine: Engine,
    loader: Loader,
    lock: Lock,
    plan: BuildPlan,
    *,
    port: int | None,
    timeout: float,
    pull: bool,
    allow_missing: bool,
    say: Say,
    live: bool,
) -> Running:
    name = plan.env.name
    env = plan.env
    if pull and env.data:
        _pull_for_up(ws, env, allow_missing=allow_missing, say=say)
    _check_data(ws, env, allow_missing=allow_missing, say=say)
    _warn_unwritable_mounts(ws, env)
    built = ImageBuilder(ws, loader, lock, engine, say=say, live=live).build(name)
    for line in banner(built.ref, built.image_id, built.provenance):
        say(line)
    compose = compose_for(ws, name, compose_file=ws.root / plan.out_dir / "compose.yaml", docker=engine.docker)
    states = compose.ps() if compose.env_file else []
    running = next((s for s in states if s.state == "running"), None)
    token = read_token(ws, name)
    chosen_port = (port or _current_port(ws, name)) if running else (port or env.jupyter.port)
    if running and token and running.image == built.ref and (port is None or port == chosen_port):
        say(f"{name} is already running")
        return Running(
            name, jupyter_url(chosen_port, token, env.jupyter.default_url), chosen_port, running.container, False
        )
    if running:
        compose.down()
    if problem := port_problem(env.jupyter.bind, chosen_port):
        raise RunError(f"{problem}", f"choose another: `nbenv up {name} --port {chosen_port + 1}`")
    if env.jupyter.bind not in ("127.0.0.1", "::1"):
        warn(f"{name}: Jupyter is published on {env.jupyter.bind}:{chosen_port}, reachable from other machines")
    token = write_token(ws, name)
    write_compose_env(ws, name, image=built.ref, port=chosen_port)
    compose = compose_for(ws, name, compose_file=compose.compose_file, docker=engine.docker)
    say(f"{name}: starting {built.ref} on 127.0.0.1:{chosen_port}")
    _compose_up(compose, name=name, port=chosen_port, bind=env.jupyter.bind)
    try:
        state = wait_ready(compose, port=chosen_port, token=token, timeout=timeout, say=say)
    except RunError:
        for line in compose.logs(tail=30).splitlines():
            say(f"  {line}")
        raise
    except KeyboardInterrupt:  # this `up` started it: leave no container behind
        _remove_quietly(compose)
        raise
    return Running(name, jupyter_url(chosen_port, token, env.jupyter.default_url), chosen_port, state.container, True)


def _compose_up(compose: Compose, *, name: str, port: int, bind: str) -> None:
    """`compose up`; on failure or Ctrl-C remove what it created. Losing the port to another process
    between the check and the start (e.g. two `up`s at once) is the same one line as a busy port."""
    try:
        compose.up()
    except RunError as exc:
        _remove_quietly(compose)
        if is_busy_port(exc.message):
            raise RunError(
                f"port {port} on {bind} is already in use", f"choose another: `nbenv up {name} --port {port + 1}`"
            ) from None
        raise
    except KeyboardInterrupt:
        _remove_quietly(compose)
        raise


def _remove_quietly(compose: Compose) -> None:
    """`compose down`, shielded from a second Ctrl-C (the signal is ignored meanwhile, by compose too)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with contextlib.suppress(NbenvError):
            compose.down()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def _warn_unwritable_mounts(ws: Workspace, env: Environment) -> None:
    """The container runs as UID 1000 (GID 100): say so when it cannot write a source mount."""
    for mount in env.mounts:
        info = (ws.root / mount.source).stat()
        writable = info.st_uid == UID or (info.st_gid == GID and info.st_mode & 0o020) or info.st_mode & 0o002
        if not writable:
            warn(
                f"{mount.source} is owned by UID {info.st_uid}: the container's user (UID {UID}) cannot write "
                f"there, so notebooks cannot be saved (e.g. `chown -R {UID} {mount.source}` or `chmod o+w`)"
            )


def _current_port(ws: Workspace, name: str) -> int:
    path = run_dir(ws, name) / "compose.env"
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.startswith("NBENV_PORT="):
            return int(line.split("=", 1)[1])
    return 8888


def _pull_for_up(ws: Workspace, env: Environment, *, allow_missing: bool, say: Say) -> None:
    try:
        targets = data_targets([env])
        summary = datasync.pull_unless_unchanged(ws.root, targets, stamp_dir=ws.state_dir / "cache", say=say)
        say(f"data: {summary.line()}" if summary else f"data: {len(targets)} target(s) unchanged since the last pull")
    except DataError as exc:
        if not allow_missing:
            raise
        say(f"data: {exc.message} (continuing: --allow-missing)")


def _check_data(ws: Workspace, env: Environment, *, allow_missing: bool, say: Say) -> None:
    missing = [d.path for d in env.data if not (ws.root / d.path).exists()]
    if not missing:
        return
    if not allow_missing:
        raise DataError(
            f"{env.file}: data: not in the workspace: {', '.join(missing)}",
            f"`nbenv data pull {env.name}` fetches it, or start anyway with `nbenv up {env.name} --allow-missing`",
        )
    for path in missing:
        (ws.root / path).mkdir(parents=True, exist_ok=True)
        say(f"data {path} is missing: mounted as an empty read-only directory (--allow-missing)")


def down(*, repo: Path | None = None, name: str, say: Say = _quiet) -> None:
    """Remove the environment's containers and network; keep images, data and the source."""
    ws = _workspace(repo)
    engine = _engine()
    compose = _compose_of(ws, name, engine)
    compose.down()
    say(f"{name}: stopped and removed its containers (images and data kept)")


def _compose_of(ws: Workspace, name: str, engine: Engine) -> Compose:
    Loader(ws).environment(name)  # a clear error for an unknown environment
    compose_file = ws.generated_dir / name / "compose.yaml"
    if not compose_file.is_file():
        raise RunError(f"{ws.rel(compose_file)}: not generated yet", f"run `nbenv up {name}`")
    return compose_for(ws, name, compose_file=compose_file, docker=engine.docker)


def ps(*, repo: Path | None = None) -> list[tuple[str, ServiceState]]:
    """The state of every environment's container."""
    ws = _workspace(repo)
    engine = _engine()
    rows = []
    for name in environment_names(ws):
        compose_file = ws.generated_dir / name / "compose.yaml"
        if compose_file.is_file():
            rows += [
                (name, state) for state in compose_for(ws, name, compose_file=compose_file, docker=engine.docker).ps()
            ]
    return rows


def logs(*, repo: Path | None = None, name: str, follow: bool = False, tail: int | None = None) -> int:
    ws = _workspace(repo)
    compose = _compose_of(ws, name, _engine())
    return compose.attached(["logs", *(["--follow"] if follow else []), *(["--tail", str(tail)] if tail else [])])


def shell(*, repo: Path | None = None, name: str, command: Sequence[str] = ()) -> int:
    ws = _workspace(repo)
    compose = _compose_of(ws, name, _engine())
    return compose.attached(["exec", SERVICE, *(command or ["bash"])])


# --- data ------------------------------------------------------------------------------------


def _data_targets_of(ws: Workspace, names: Sequence[str], all_envs: bool) -> list[str]:
    if not names and not all_envs:
        raise UsageError("name the environments whose data to use, or pass --all")
    loader = Loader(ws)
    return data_targets([loader.environment(n) for n in (environment_names(ws) if all_envs else names)])


def data_pull(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    all_envs: bool = False,
    jobs: int | None = None,
    remote: str | None = None,
    say: Say = _quiet,
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
