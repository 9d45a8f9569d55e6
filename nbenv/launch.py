"""The lifecycle of a running environment: `up`, `down`, `ps`, `logs`, `shell`.

run.py holds the pieces (token, port check, compose.env, readiness); this module orders them and
owns the side effects. Callers pass the project (nbenv/project.py: the workspace, its plans and the
engine, which api.py resolves; a unit test injects a fake engine).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbenv import datasync
from nbenv.adapters.compose import Compose, ServiceState
from nbenv.adapters.engine import EngineAPI
from nbenv.errors import DataError, NbenvError, RunError
from nbenv.identity import Identity, check_can_save, for_workspace
from nbenv.plan import SERVICE, BuildPlan, data_targets, legacy_compose_project
from nbenv.project import Project
from nbenv.provenance import banner
from nbenv.run import (
    Running,
    compose_env,
    compose_for,
    environment_lock,
    is_busy_port,
    jupyter_url,
    netloc,
    port_problem,
    probe_host,
    read_state_file,
    read_token,
    run_dir,
    status_code,
    wait_ready,
    write_compose_env,
    write_token,
)
from nbenv.safepath import confine
from nbenv.spec.load import environment_names
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


def up(project: Project, name: str, options: UpOptions, *, say: Say) -> Running:
    """Plan first (a bad spec fails before waiting for the lock); the same environment's `up`s take turns."""
    ws = project.ws
    plan = project.plan(name)
    identity = for_workspace(ws.root, project.engine.security_options)
    check_can_save(ws.root, plan.env, identity)  # before anything is written, the lock file included
    with environment_lock(ws, name, say=say):
        return _up_locked(project, plan, identity, options, say=say)


def _up_locked(
    project: Project,
    plan: BuildPlan,
    identity: Identity,
    options: UpOptions,
    *,
    say: Say,
) -> Running:
    ws, engine = project.ws, project.engine
    name = plan.env.name
    env = plan.env
    if options.pull and env.data:
        _pull_for_up(ws, env, allow_missing=options.allow_missing, say=say)
    _check_data(ws, env, allow_missing=options.allow_missing, say=say)
    built = project.builder(say=say, live=options.live).build(name)
    for line in banner(built.ref, built.image_id, built.provenance):
        say(line)
    compose = compose_for(ws, name, compose_file=ws.root / plan.out_dir / "compose.yaml", engine=engine)
    _remove_legacy(ws, engine, name, compose.compose_file, say=say)
    states = compose.ps()
    check_same_checkout(name, compose, states)
    running = next((s for s in states if s.state == "running"), None)
    token = read_token(ws, name)
    host = probe_host(env.jupyter.bind)  # the token goes to the address Jupyter is published on, only
    current_port = _current_port(ws, name) if running else None
    chosen_port = options.port or current_port or env.jupyter.port
    if not env.jupyter.token:
        warn(
            f"{name}: Jupyter asks for no token ([jupyter] token = false in {env.file}): "
            f"anyone who can reach {netloc(host, chosen_port)} can run code there"
        )
    wanted_env = compose_env(image=built.ref, port=chosen_port, identity=identity)
    same_env = _current_env(ws, name) == wanted_env
    if running and token and running.image == built.ref and chosen_port == current_port and same_env:
        say(f"{name} is already running")
        url_token = token if env.jupyter.token else None
        return Running(
            name,
            jupyter_url(host, chosen_port, url_token, env.jupyter.default_url),
            chosen_port,
            running.container,
            False,
        )
    if running:
        if current_port is not None and chosen_port != current_port:
            say(f"{name}: was running on port {current_port}; restarting it on {chosen_port}")
        elif not same_env:
            say(f"{name}: restarting it as {identity.describe()}")
        compose.down()
    if problem := port_problem(env.jupyter.bind, chosen_port):
        raise RunError(f"{problem}", f"choose another: `nbenv up {name} --port {chosen_port + 1}`")
    if not ipaddress.ip_address(env.jupyter.bind).is_loopback:
        warn(f"{name}: Jupyter is published on {netloc(env.jupyter.bind, chosen_port)}, reachable from other machines")
    token = write_token(ws, name, identity)
    url_token = token if env.jupyter.token else None
    write_compose_env(ws, name, wanted_env)
    compose = compose_for(ws, name, compose_file=compose.compose_file, engine=engine)
    say(f"{name}: starting {built.ref} on {netloc(env.jupyter.bind, chosen_port)} as {identity.describe()}")
    _compose_up(compose, name=name, port=chosen_port, bind=env.jupyter.bind)
    try:  # from here on this `up` started the container: any failure removes it again
        state = wait_ready(compose, host=host, port=chosen_port, token=url_token, timeout=options.timeout, say=say)
        if env.jupyter.token:
            _check_token_required(compose, env, host=host, port=chosen_port)
    except RunError:
        for line in compose.logs(tail=30).splitlines():
            say(f"  {line}")
        _removequietly(compose)
        raise
    except KeyboardInterrupt:
        _removequietly(compose)
        raise
    url = jupyter_url(host, chosen_port, url_token, env.jupyter.default_url)
    return Running(name, url, chosen_port, state.container, True)


def _check_token_required(compose: Compose, env: Environment, *, host: str, port: int) -> None:
    """Belt and braces: the server that accepted nbenv's token must refuse a request without one. A
    configuration nbenv did not write (e.g. in a custom base image) may have switched the token off."""
    code = status_code(port, None, host=host)
    if code not in (401, 403):
        answer = f"answered {code}" if code else "did not answer"
        raise RunError(
            f"{compose.project}: Jupyter on {netloc(host, port)} {answer} without the token instead of refusing "
            "(403), so anyone who reaches the port could run code: stopped it",
            f"a Jupyter configuration in the image switches the token off; `[jupyter] token = false` in {env.file} "
            "is the explicit opt-in",
        )


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


def _current_env(ws: Workspace, name: str) -> str:
    return read_state_file(run_dir(ws, name) / "compose.env", f".nbenv/run/{name}/compose.env") or ""


def _current_port(ws: Workspace, name: str) -> int:
    """The port the running container was started on (its compose.env), for an `up` without --port."""
    text = _current_env(ws, name)
    for line in text.splitlines():
        value = line.removeprefix("NBENV_PORT=")
        if value != line and value.isascii() and value.isdigit() and 0 < int(value) < 65536:
            return int(value)
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


def down(project: Project, *, name: str, say: Say) -> None:
    compose = _compose_of(project, name)
    _remove_legacy(project.ws, project.engine, name, compose.compose_file, say=say)
    compose.down()
    say(f"{name}: stopped and removed its containers (images and data kept)")


def _compose_of(project: Project, name: str) -> Compose:
    ws, engine = project.ws, project.engine
    project.loader.environment(name)  # a clear error for an unknown environment
    compose_file = ws.generated_dir / name / "compose.yaml"
    if not compose_file.is_file():
        raise RunError(f"{ws.rel(compose_file)}: not generated yet", f"run `nbenv up {name}`")
    compose = compose_for(ws, name, compose_file=compose_file, engine=engine)
    check_same_checkout(name, compose, compose.ps())
    return compose


def check_same_checkout(name: str, compose: Compose, states: Sequence[ServiceState]) -> None:
    """An environment's compose project is named after the image prefix and the environment, so every
    checkout of a repository on this engine shares it (another user's clone on a shared server, say):
    never stop, replace or enter a container that another checkout started."""
    mine = os.path.realpath(compose.compose_file)
    for state in states:
        if state.config_file and os.path.realpath(state.config_file) != mine:
            raise RunError(
                f"{name}: running from another checkout ({state.config_file}, container {state.container}); "
                "nbenv leaves it alone",
                f"stop it from there (`nbenv down {name}` in that checkout), then run this again",
            )


def ps(project: Project) -> list[tuple[str, ServiceState]]:
    ws, engine = project.ws, project.engine
    rows = []
    for name in environment_names(ws):
        compose_file = ws.generated_dir / name / "compose.yaml"
        if compose_file.is_file():
            rows += [(name, state) for state in compose_for(ws, name, compose_file=compose_file, engine=engine).ps()]
            rows += [(name, state) for state in _legacy_containers(ws, engine, name, compose_file)]
    return rows


def _legacy_containers(ws: Workspace, engine: EngineAPI, name: str, compose_file: Path) -> list[ServiceState]:
    """Containers an older nbenv started under the old project name `PREFIX-NAME`, which distinct prefixes
    could share: only those started from this workspace's compose file, so another's are never touched."""
    legacy = legacy_compose_project(ws.config, name)
    old = Compose(engine=engine, project=legacy, compose_file=compose_file, env_file=None)
    return old.ps(config_file=compose_file)


def _remove_legacy(ws: Workspace, engine: EngineAPI, name: str, compose_file: Path, *, say: Say) -> None:
    """Remove this workspace's containers of the old project name, by id (`compose down` of that project
    would take another workspace's along); the shared network goes once no container uses it."""
    states = _legacy_containers(ws, engine, name, compose_file)
    if not states:
        return
    engine.remove_containers([s.container for s in states])
    legacy = legacy_compose_project(ws.config, name)
    engine.remove_network(f"{legacy}_default")  # refused while another still uses it
    say(f"{name}: removed its container started by an older nbenv (compose project {legacy})")


def logs(project: Project, *, name: str, follow: bool, tail: int | None) -> int:
    compose = _compose_of(project, name)
    return compose.attached(["logs", *(["--follow"] if follow else []), *(["--tail", str(tail)] if tail else [])])


def shell(project: Project, *, name: str, command: Sequence[str]) -> int:
    compose = _compose_of(project, name)
    return compose.attached(["exec", SERVICE, *(command or ["bash"])])
