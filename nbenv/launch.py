"""The lifecycle of a running environment: `up`, `down`, `ps`, `logs`, `shell`.

run.py holds the pieces (token, port check, compose.env, readiness); this module orders them and
owns the side effects. Callers pass the discovered workspace and the engine (api.py resolves both).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from nbenv import datasync
from nbenv.adapters.compose import Compose, ServiceState
from nbenv.adapters.engine import Engine
from nbenv.build import ImageBuilder
from nbenv.datasync import data_targets
from nbenv.errors import DataError, NbenvError, RunError
from nbenv.generate import load_lock, plan_for
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
from nbenv.safepath import confine
from nbenv.spec.load import Loader, environment_names
from nbenv.spec.models import Environment
from nbenv.ui import Say, warn
from nbenv.workspace import Workspace


@dataclass(frozen=True)
class UpOptions:
    port: int | None  # None: the running container's port, else the spec's
    timeout: float  # seconds to wait for Jupyter to answer
    pull: bool
    allow_missing: bool
    live: bool


def up(ws: Workspace, engine: Engine, name: str, options: UpOptions, *, say: Say) -> Running:
    """Plan first (a bad spec fails before waiting for the lock); the same environment's `up`s take turns."""
    loader, lock = Loader(ws), load_lock(ws)
    plan = plan_for(ws, loader, lock, name)
    with environment_lock(ws, name, say=say):
        return _up_locked(ws, engine, loader, lock, plan, options, say=say)


def _up_locked(
    ws: Workspace, engine: Engine, loader: Loader, lock: Lock, plan: BuildPlan, options: UpOptions, *, say: Say
) -> Running:
    name = plan.env.name
    env = plan.env
    if options.pull and env.data:
        _pull_for_up(ws, env, allow_missing=options.allow_missing, say=say)
    _check_data(ws, env, allow_missing=options.allow_missing, say=say)
    _warn_unwritable_mounts(ws, env)
    built = ImageBuilder(ws, loader, lock, engine, say=say, live=options.live).build(name)
    for line in banner(built.ref, built.image_id, built.provenance):
        say(line)
    compose = compose_for(ws, name, compose_file=ws.root / plan.out_dir / "compose.yaml", docker=engine.docker)
    states = compose.ps() if compose.env_file else []
    running = next((s for s in states if s.state == "running"), None)
    token = read_token(ws, name)
    port = options.port
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
        state = wait_ready(compose, port=chosen_port, token=token, timeout=options.timeout, say=say)
    except RunError:
        for line in compose.logs(tail=30).splitlines():
            say(f"  {line}")
        raise
    except KeyboardInterrupt:  # this `up` started it: leave no container behind
        _removequietly(compose)
        raise
    return Running(name, jupyter_url(chosen_port, token, env.jupyter.default_url), chosen_port, state.container, True)


def _compose_up(compose: Compose, *, name: str, port: int, bind: str) -> None:
    """`compose up`; on failure or Ctrl-C remove what it created. Losing the port to another process
    between the check and the start (e.g. two `up`s at once) is the same one line as a busy port."""
    try:
        compose.up()
    except RunError as exc:
        _removequietly(compose)
        if is_busy_port(exc.message):
            raise RunError(
                f"port {port} on {bind} is already in use", f"choose another: `nbenv up {name} --port {port + 1}`"
            ) from None
        raise
    except KeyboardInterrupt:
        _removequietly(compose)
        raise


def _removequietly(compose: Compose) -> None:
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
    """The port the running container was started on (its compose.env), for an `up` without --port."""
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
    """Every data path is in the workspace and holds no symlink out of the repository (else the
    container would get it mounted); with --allow-missing a missing one becomes an empty directory,
    created at its confined real place."""
    missing = [d.path for d in env.data if not (ws.root / d.path).exists()]
    datasync.check_data(ws.root, [d.path for d in env.data if d.path not in missing])
    if not missing:
        return
    if not allow_missing:
        raise DataError(
            f"{env.file}: data: not in the workspace: {', '.join(missing)}",
            f"`nbenv data pull {env.name}` fetches it, or start anyway with `nbenv up {env.name} --allow-missing`",
        )
    for path in missing:
        real = confine(ws.root, path, what="data path", error=DataError)
        try:
            real.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{path}: cannot create it (--allow-missing): {exc.strerror}") from None
        say(f"data {path} is missing: mounted as an empty read-only directory (--allow-missing)")


def down(ws: Workspace, engine: Engine, *, name: str, say: Say) -> None:
    compose = _compose_of(ws, name, engine)
    compose.down()
    say(f"{name}: stopped and removed its containers (images and data kept)")


def _compose_of(ws: Workspace, name: str, engine: Engine) -> Compose:
    Loader(ws).environment(name)  # a clear error for an unknown environment
    compose_file = ws.generated_dir / name / "compose.yaml"
    if not compose_file.is_file():
        raise RunError(f"{ws.rel(compose_file)}: not generated yet", f"run `nbenv up {name}`")
    return compose_for(ws, name, compose_file=compose_file, docker=engine.docker)


def ps(ws: Workspace, engine: Engine) -> list[tuple[str, ServiceState]]:
    rows = []
    for name in environment_names(ws):
        compose_file = ws.generated_dir / name / "compose.yaml"
        if compose_file.is_file():
            rows += [
                (name, state) for state in compose_for(ws, name, compose_file=compose_file, docker=engine.docker).ps()
            ]
    return rows


def logs(ws: Workspace, engine: Engine, *, name: str, follow: bool, tail: int | None) -> int:
    compose = _compose_of(ws, name, engine)
    return compose.attached(["logs", *(["--follow"] if follow else []), *(["--tail", str(tail)] if tail else [])])


def shell(ws: Workspace, engine: Engine, *, name: str, command: Sequence[str]) -> int:
    compose = _compose_of(ws, name, engine)
    return compose.attached(["exec", SERVICE, *(command or ["bash"])])
