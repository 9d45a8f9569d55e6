"""The lifecycle of a running environment: `up`, `down`, `ps`, `logs`, `shell`.

`up` reads top to bottom: plan, take the environment's lock, data, image, find what runs, then either
keep it or (re)start it and wait for Jupyter. The pieces below it in this package are state.py (token,
compose.env, lock) and jupyter.py (port, URL, readiness); this module orders them and owns the side
effects. Callers pass the project (nbenv/project.py: the workspace, its plans and the engine, which api.py
resolves; a unit test injects a fake engine).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbenv import datasync
from nbenv.adapters.compose import Compose, ServiceState
from nbenv.adapters.engine import EngineAPI
from nbenv.build import BuiltImage
from nbenv.errors import DataError, NbenvError, RunError
from nbenv.identity import Identity, check_can_save, for_workspace
from nbenv.plan import SERVICE, BuildPlan, data_targets, legacy_compose_project
from nbenv.project import Project
from nbenv.provenance import banner
from nbenv.running.gpus import is_no_gpu_driver, no_gpu_error
from nbenv.running.jupyter import (
    check_token_required,
    is_busy_port,
    jupyter_url,
    netloc,
    port_problem,
    probe_host,
    wait_ready,
)
from nbenv.running.state import (
    compose_env,
    compose_for,
    current_env,
    current_port,
    environment_lock,
    read_token,
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


@dataclass(frozen=True)
class Running:
    name: str
    url: str
    port: int
    container: str
    started: bool  # False: it was already running


@dataclass(frozen=True)
class Target:
    """What `up` wants running: the image, where Jupyter is published and probed, what compose interpolates."""

    image: str
    host: str  # where nbenv reaches Jupyter (and sends the token): the published address, never another
    port: int
    compose_env: str
    token: bool  # whether Jupyter asks for a token


# --- up, from top to bottom ---------------------------------------------------------------------------


def up(project: Project, name: str, options: UpOptions, *, say: Say) -> Running:
    """Plan first (a bad spec fails before waiting for the lock); the same environment's `up`s take turns."""
    ws = project.ws
    plan = project.plan(name)
    identity = for_workspace(ws.root, project.engine.security_options)
    check_can_save(ws.root, plan.env, identity)  # before anything is written, the lock file included
    with environment_lock(ws, name, say=say):
        return _up_locked(project, plan, identity, options, say=say)


@dataclass(frozen=True)
class Prepared:
    name: str
    image: str  # the content-keyed tag built (or found up to date); `:latest` names the same image
    identity: Identity


def prepare(
    project: Project,
    name: str,
    *,
    pull: bool,
    allow_missing: bool,
    live: bool,
    say: Say,
    check_identity: Callable[[Identity], None] | None = None,
    compose_image: Callable[[BuildPlan, BuiltImage], str] | None = None,
) -> Prepared:
    """`up` without the start, for a container something else starts from the generated compose file (an
    editor's devcontainer): the data pulled and checked, the image built if stale, the token file written
    if there is none (a running Jupyter keeps its token), and compose.env (image: `compose_image`, else the
    built tag; the spec's port; who runs it). Nothing is started or stopped."""
    ws = project.ws
    plan = project.plan(name)
    identity = for_workspace(ws.root, project.engine.security_options)
    if check_identity is not None:
        check_identity(identity)
    check_can_save(ws.root, plan.env, identity)
    with environment_lock(ws, name, say=say):
        _prepare_data(ws, plan.env, pull=pull, allow_missing=allow_missing, say=say)
        built = _build(project, name, live=live, say=say)
        if read_token(ws, name) is None:
            write_token(ws, name, identity)
        image = compose_image(plan, built) if compose_image else built.ref
        write_compose_env(ws, name, compose_env(image=image, port=plan.env.jupyter.port, identity=identity))
    return Prepared(name, built.ref, identity)


def _up_locked(project: Project, plan: BuildPlan, identity: Identity, options: UpOptions, *, say: Say) -> Running:
    ws, env = project.ws, plan.env
    _prepare_data(ws, env, pull=options.pull, allow_missing=options.allow_missing, say=say)
    built = _build(project, env.name, live=options.live, say=say)
    compose = compose_for(ws, env.name, compose_file=ws.root / plan.out_dir / "compose.yaml", engine=project.engine)
    running = _running_container(project, env.name, compose, say=say)
    target = _target(ws, env, built.ref, identity, running=running is not None, port=options.port)
    token = read_token(ws, env.name)
    if running and token and _unchanged(ws, env.name, running, target):
        say(f"{env.name} is already running")
        return Running(env.name, _url(env, target, token), target.port, running.container, False)
    if running:
        _stop_for_restart(ws, env.name, compose, target, identity, say=say)
    return _start(ws, env, compose, target, identity, timeout=options.timeout, say=say)


def _prepare_data(ws: Workspace, env: Environment, *, pull: bool, allow_missing: bool, say: Say) -> None:
    if pull and env.data:
        _pull_for_up(ws, env, allow_missing=allow_missing, say=say)
    _check_data(ws, env, allow_missing=allow_missing, say=say)


def _build(project: Project, name: str, *, live: bool, say: Say) -> BuiltImage:
    """The environment's image, built if stale; its provenance banner printed."""
    built = project.builder(say=say, live=live).build(name)
    for line in banner(built.ref, built.image_id, built.provenance):
        say(line)
    return built


def _running_container(project: Project, name: str, compose: Compose, *, say: Say) -> ServiceState | None:
    """This checkout's running container of the environment, if any (after removing one an older nbenv
    started under the old project name; another checkout's is refused, never touched)."""
    _remove_legacy(project.ws, project.engine, name, compose.compose_file, say=say)
    states = compose.ps()
    check_same_checkout(name, compose, states)
    return next((s for s in states if s.state == "running"), None)


def _target(
    ws: Workspace, env: Environment, image: str, identity: Identity, *, running: bool, port: int | None
) -> Target:
    """The port is --port, else the one the running container was started on, else the spec's."""
    chosen = port or (current_port(ws, env.name) if running else None) or env.jupyter.port
    host = probe_host(env.jupyter.bind)  # the token goes to the address Jupyter is published on, only
    if not env.jupyter.token:
        warn(
            f"{env.name}: Jupyter asks for no token ([jupyter] token = false in {env.file}): "
            f"anyone who can reach {netloc(host, chosen)} can run code there"
        )
    return Target(image, host, chosen, compose_env(image=image, port=chosen, identity=identity), env.jupyter.token)


def _unchanged(ws: Workspace, name: str, running: ServiceState, target: Target) -> bool:
    """The running container is what `up` wants: same image, port and compose.env (so the same user)."""
    text = current_env(ws, name)
    return running.image == target.image and current_port(ws, name) == target.port and text == target.compose_env


def _url(env: Environment, target: Target, token: str) -> str:
    return jupyter_url(target.host, target.port, token if target.token else None, env.jupyter.default_url)


def _stop_for_restart(
    ws: Workspace, name: str, compose: Compose, target: Target, identity: Identity, *, say: Say
) -> None:
    was = current_port(ws, name)
    if was != target.port:
        say(f"{name}: was running on port {was}; restarting it on {target.port}")
    elif current_env(ws, name) != target.compose_env:
        say(f"{name}: restarting it as {identity.describe()}")
    compose.down()


def _start(
    ws: Workspace, env: Environment, compose: Compose, target: Target, identity: Identity, *, timeout: float, say: Say
) -> Running:
    """Check the port, write a fresh token and compose.env, `compose up`, wait until Jupyter answers with the
    token (and refuses without it); any failure from here removes what this `up` started."""
    name, bind = env.name, env.jupyter.bind
    if problem := port_problem(bind, target.port):
        raise RunError(f"{problem}", f"choose another: `nbenv up {name} --port {target.port + 1}`")
    if not ipaddress.ip_address(bind).is_loopback:
        warn(f"{name}: Jupyter is published on {netloc(bind, target.port)}, reachable from other machines")
    token = write_token(ws, name, identity)
    write_compose_env(ws, name, target.compose_env)
    compose = compose_for(ws, name, compose_file=compose.compose_file, engine=compose.engine)
    say(f"{name}: starting {target.image} on {netloc(bind, target.port)} as {identity.describe()}")
    _compose_up(compose, env=env, port=target.port, bind=bind)
    url_token = token if target.token else None
    try:
        state = wait_ready(compose, host=target.host, port=target.port, token=url_token, timeout=timeout, say=say)
        if target.token:
            check_token_required(compose.project, env, host=target.host, port=target.port)
    except RunError:
        for line in compose.logs(tail=30).splitlines():
            say(f"  {line}")
        _removequietly(compose)
        raise
    except KeyboardInterrupt:
        _removequietly(compose)
        raise
    return Running(name, _url(env, target, token), target.port, state.container, True)


def _compose_up(compose: Compose, *, env: Environment, port: int, bind: str) -> None:
    """`compose up`; on failure or Ctrl-C remove what it created. Losing the port to another process
    between the check and the start (e.g. two `up`s at once) is the same one line as a busy port; an
    engine without GPU support, for a spec with [resources] gpus, one line naming the fix."""
    name = env.name
    try:
        compose.up()
    except RunError as exc:
        _removequietly(compose)
        if is_no_gpu_driver(exc.message):
            raise no_gpu_error(env) from None
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
        if state.config_file and not _started_from(state.config_file, mine):
            raise RunError(
                f"{name}: running from another checkout ({state.config_file}, container {state.container}); "
                "nbenv leaves it alone",
                f"stop it from there (`nbenv down {name}` in that checkout), then run this again",
            )


def _started_from(config_files: str, mine: str) -> bool:
    """Whether compose's config_files label (the -f files, joined by commas) starts with this compose file: an
    editor's devcontainer adds an override file of its own after it."""
    return os.path.realpath(config_files) == mine or os.path.realpath(config_files.split(",", 1)[0]) == mine


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
    return compose.follow_logs(follow=follow, tail=tail)


def shell(project: Project, *, name: str, command: Sequence[str]) -> int:
    compose = _compose_of(project, name)
    return compose.execute(SERVICE, command or ["bash"])
