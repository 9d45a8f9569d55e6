"""`nbenv hub up` / `down` / `status`: a real JupyterHub for a team on one host.

The hub runs in a container (the hub image, built by nbenv FROM its own Debian base), not in a venv on the
host: the same image on every host, nothing installed beside the user's Python, and DockerSpawner reaches
the users' servers by name on the hub's own Docker network (a host venv would have to bind the hub API to
the bridge's address). The price: DockerSpawner starts containers, so the hub container gets the Docker
socket, which is root on the host for whoever controls the hub process. It runs as the user who ran
`nbenv hub up` (with the socket's group), with no capabilities, no-new-privileges and a read-only root
filesystem; it is published on 127.0.0.1 unless told otherwise. README "Team" says so.

Secrets (cookie secret, proxy token, nbenv's API token) are git-ignored 0600 files under .nbenv/hub/secrets
(an nbenv-owned directory), mounted read-only; never in generated files, arguments or logs.
"""

from __future__ import annotations

import ipaddress
import os
import secrets as token_source
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv.adapters import localhttp
from nbenv.adapters.engine import Engine
from nbenv.constants import DEFAULT_BASE_TAG
from nbenv.errors import RunError, UsageError
from nbenv.fs import atomic_write
from nbenv.hub.generate import BUILD_SCRIPTS, hub_dir, hub_generate, offered
from nbenv.hub.render import (
    CONFIG,
    HUB_CONFIG_DIR,
    HUB_IMAGE_DIR,
    HUB_PORT,
    HUB_SECRETS_DIR,
    HUB_STATE_DIR,
    LABEL,
    SWARM_CONFIG,
    hub_id,
)
from nbenv.image_plan import content_key
from nbenv.project import Project
from nbenv.safepath import owned_dir
from nbenv.server_env import HUB_PINS
from nbenv.ui import Say
from nbenv.workspace import STATE_DIR

SECRET_FILES = ("cookie_secret", "proxy_token", "api_token")
ROLE = f"{LABEL}.role"
SPAWNER = f"{LABEL}.spawner"  # the hub container's: "docker" (DockerSpawner) or "swarm" (SwarmSpawner)


@dataclass(frozen=True)
class HubStatus:
    hub: str  # the hub container's name
    state: str  # running, exited, ... ("" when there is none)
    url: str | None
    servers: list[tuple[str, str]]  # (container name, state) of the users' servers


def _engine(project: Project) -> Engine:
    engine = project.engine
    if not isinstance(engine, Engine):  # pragma: no cover (unit tests inject a fake engine elsewhere)
        raise UsageError("nbenv hub needs the Docker engine")
    return engine


def secrets_dir(project: Project) -> Path:
    path = owned_dir(project.ws.root, f"{STATE_DIR}/hub/secrets", what="hub secrets")
    os.chmod(path, 0o700)
    return path


def state_dir(project: Project) -> Path:
    return owned_dir(project.ws.root, f"{STATE_DIR}/hub/state", what="hub state")


def ensure_secrets(project: Project) -> Path:
    """The hub's secrets, made once (random, 0600), kept across `down`/`up` (sessions survive a restart)."""
    directory = secrets_dir(project)
    for name in SECRET_FILES:
        path = directory / name
        if path.is_symlink() or (path.exists() and not stat.S_ISREG(path.lstat().st_mode)):
            raise RunError(f"{project.ws.rel(path)}: is not a regular file", f"remove it: `rm {project.ws.rel(path)}`")
        if not path.exists() or path.stat().st_size == 0:
            atomic_write(path, token_source.token_hex(32) + "\n", mode=0o600)
        os.chmod(path, 0o600)
    return directory


def api_token(project: Project) -> str:
    """nbenv's own API token of the hub (the `nbenv` service: users, their servers and tokens)."""
    return (secrets_dir(project) / "api_token").read_text("utf-8").strip()


def _socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise UsageError(
            f"DOCKER_HOST={host}: nbenv hub mounts the engine's socket into the hub, so it needs a local unix socket",
            "unset DOCKER_HOST or point it at unix:///PATH",
        )
    return host.removeprefix("unix://")


def build_hub_image(project: Project, *, files: dict[str, str], say: Say, live: bool) -> str:
    """The hub image from docker/hub/image/ (as generated), built FROM nbenv's Debian base when missing."""
    builder = project.builder(say=say, live=live)
    base_id = builder.ensure_base(DEFAULT_BASE_TAG, what="[tool.nbenv.hub]")
    prefix = f"{HUB_IMAGE_DIR}/"
    context = {rel.removeprefix(prefix): text for rel, text in files.items() if rel.startswith(prefix)}
    ref = f"{project.ws.config.image_prefix}/hub:ck-{content_key(from_image_id=base_id, files=context)[:12]}"
    if project.engine.image_id(ref) is None:
        say(f"hub: building {ref} (JupyterHub, DockerSpawner, NativeAuthenticator; FROM {DEFAULT_BASE_TAG})")
        builder.build_files(context, tags=(ref,), labels={ROLE: "image"})
    else:
        say(f"hub: image up to date ({ref})")
    return ref


def _url(bind: str, port: int) -> str:
    host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/hub/"


def require_manager(info: dict[str, Any]) -> str:
    """This engine's swarm node ID, when it is an active swarm manager; one line naming the fix otherwise."""
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        raise UsageError(
            "--swarm: this Docker engine is not part of a swarm",
            "make it a one-node swarm: `docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377`",
        )
    if not swarm.get("ControlAvailable"):
        raise UsageError(
            "--swarm: this Docker engine is a swarm worker", "run `nbenv hub up --swarm` on a manager node"
        )
    return str(swarm.get("NodeID", ""))


def ensure_network(api: Any, name: str, *, hub: str, swarm: bool) -> None:
    """The hub's network: a bridge, or for the swarm an attachable overlay (services and the hub container
    both join it); made when missing, refused in one line when a network of that name cannot serve."""
    found = [n for n in api.networks(names=[name]) if n.get("Name") == name]  # the filter matches substrings
    if not found:
        if swarm:
            api.create_network(name, driver="overlay", attachable=True, labels={LABEL: hub})
        else:
            api.create_network(name, driver="bridge", labels={LABEL: hub})
        return
    network = found[0]
    if swarm and (network.get("Driver") != "overlay" or not network.get("Attachable")):
        kind = "a non-attachable overlay" if network.get("Driver") == "overlay" else f"a {network.get('Driver')}"
        raise UsageError(
            f"[tool.nbenv.hub] network: {name!r} is {kind} network; the swarm hub needs an attachable overlay one",
            "`nbenv hub down` removes nbenv's own, or set [tool.nbenv.hub] network to another name",
        )


def refuse_swarm_gpus(project: Project) -> None:
    """SwarmSpawner cannot give a server a GPU: a swarm service takes no device request, and swarm's generic
    resources (`node-generic-resources` in every node's daemon.json plus the NVIDIA runtime's swarm-resource
    setting, configured by hand) are not honoured reliably by the NVIDIA runtime. So an offered environment
    with [resources] gpus is refused in one line, at the file and line that set it, before anything starts."""
    loader = project.loader
    for name in offered(project.ws):
        if loader.environment(name).resources.gpus is None:
            continue
        declared: str | None = name  # the file in the `extends` chain that sets it, nearest first
        while declared is not None:
            loaded = loader.file(declared)
            if loaded.spec.resources is not None and loaded.spec.resources.gpus is not None:
                break
            declared = loaded.spec.extends
        doc = loader.file(declared or name).doc
        raise doc.error(
            ("resources", "gpus"),
            f"{name} asks for GPUs, but a swarm service cannot reserve them (SwarmSpawner has no device request)",
            "serve it with `nbenv hub up` (DockerSpawner on one host) or on Kubernetes, or leave it out of "
            "[tool.nbenv.hub] environments",
        )


def up(project: Project, *, bind: str | None, port: int | None, say: Say, live: bool, swarm: bool = False) -> str:
    """Generate and build what is stale, then start the hub (if it does not run already); its URL. With
    `swarm`: the SwarmSpawner variant on this swarm manager (each user's server a service)."""
    settings = project.ws.config.hub
    bind = settings.bind if bind is None else bind
    port = settings.port if port is None else port
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        raise UsageError(f"--bind: {bind!r} is not an IP address", "e.g. --bind 127.0.0.1") from None
    if swarm:
        refuse_swarm_gpus(project)
    if not address.is_loopback:
        say(f"warning: the hub is published on {bind}:{port}: anyone who reaches it can sign up and log in")
    engine = _engine(project)
    socket = _socket()
    if swarm:
        require_manager(engine.api.info())
    result = hub_generate(project, check=False, say=say, live=live, native_only=True)  # the hub here spawns these
    for path in result.changed:
        say(f"regenerated {path}")
    image = build_hub_image(project, files=result.files, say=say, live=live)
    hub = hub_id(project.ws.config)
    url = _url(bind, port)
    mode = "swarm" if swarm else "docker"
    if engine.container_state(hub) == "running":
        running = (engine.api.inspect_container(hub).get("Config", {}).get("Labels") or {}).get(SPAWNER, "docker")
        if running != mode:
            raise UsageError(
                f"{hub}: the hub runs with {'SwarmSpawner' if running == 'swarm' else 'DockerSpawner'} already",
                "stop it first: `nbenv hub down`",
            )
        say(f"hub: already running ({hub})")
        return url
    engine.remove_containers([hub])
    secrets = ensure_secrets(project)
    state = state_dir(project)
    api = engine.api
    network = settings.network
    ensure_network(api, network, hub=hub, swarm=swarm)
    host_config = api.create_host_config(
        binds={
            socket: {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(hub_dir(project.ws)): {"bind": HUB_CONFIG_DIR, "mode": "ro"},
            str(secrets): {"bind": HUB_SECRETS_DIR, "mode": "ro"},
            str(state): {"bind": HUB_STATE_DIR, "mode": "rw"},
        },
        port_bindings={HUB_PORT: (bind, port)},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        group_add=[str(os.stat(socket).st_gid)],
        read_only=True,
        tmpfs={"/tmp": "mode=1777"},
        network_mode=network,
    )
    container: dict[str, Any] = api.create_container(
        image,
        name=hub,
        user=f"{os.getuid()}:{os.getgid()}",
        environment={"NBENV_HUB_REPO": str(project.ws.root), "NBENV_HUB_NAME": hub},
        labels={LABEL: hub, ROLE: "hub", SPAWNER: mode},
        command=["jupyterhub", "-f", f"{HUB_CONFIG_DIR}/{SWARM_CONFIG if swarm else CONFIG}"],
        ports=[HUB_PORT],
        host_config=host_config,
    )
    api.start(container["Id"])
    say(f"hub: starting {hub} on {bind}:{port}{' (SwarmSpawner: each server a swarm service)' if swarm else ''}")
    _wait(engine, hub, url)
    return url


def _wait(engine: Engine, hub: str, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.container_state(hub) not in ("running", "created"):
            break
        if localhttp.status(url + "api/", timeout=3) == 200:  # never through a proxy from the environment
            return
        time.sleep(0.5)
    logs = engine.api.logs(hub, tail=5).decode("utf-8", "replace").strip().splitlines()
    engine.remove_containers([hub])
    raise RunError(
        f"the hub did not answer at {url}: {logs[-1] if logs else 'no output'}",
        "see `docker logs` of a new `nbenv hub up`, or `nbenv hub generate` for the configuration",
    )


def services(engine: Engine, hub: str) -> list[dict[str, Any]]:
    """The hub's swarm services (its users' servers under SwarmSpawner); none when the engine is no manager."""
    import docker.errors

    try:
        return list(engine.api.services(filters={"label": f"{LABEL}={hub}"}))
    except docker.errors.APIError:  # not a swarm manager: no services
        return []


def down(project: Project, *, say: Say) -> list[str]:
    """Stop the hub and its users' servers (containers and swarm services removed); users' volumes (their
    work) are kept."""
    engine = _engine(project)
    hub = hub_id(project.ws.config)
    stopped: list[str] = []
    if engine.container_state(hub):  # the hub first: it starts nothing meanwhile
        engine.remove_containers([hub])
        stopped.append(hub)
    removed = [service["Spec"]["Name"] for service in services(engine, hub)]
    for name in removed:
        engine.api.remove_service(name)
    stopped += removed

    def servers() -> list[str]:
        return [c.name for c in engine.containers([f"{LABEL}={hub}"]) if c.name != hub]

    deadline = time.monotonic() + 30
    while removed and time.monotonic() < deadline and any(n.split(".", 1)[0] in removed for n in servers()):
        time.sleep(0.3)  # the swarm removes a service's task containers itself, a moment later
    left = servers()
    engine.remove_containers(left)
    stopped += left
    network = project.ws.config.hub.network
    while not engine.remove_network(network) and removed and time.monotonic() < deadline:
        if not [n for n in engine.api.networks(names=[network]) if n.get("Name") == network]:
            break  # gone already
        time.sleep(0.5)  # the tasks leave the overlay network a moment after their containers go
    for name in stopped:
        say(f"stopped {name}")
    return stopped


def status(project: Project) -> HubStatus:
    engine = _engine(project)
    hub = hub_id(project.ws.config)
    servers = [(c.name, c.state) for c in engine.containers([f"{LABEL}={hub}"]) if c.name != hub]
    servers += [(s["Spec"]["Name"], "service") for s in services(engine, hub)]
    state = engine.container_state(hub)
    settings = project.ws.config.hub
    return HubStatus(hub, state, _url(settings.bind, settings.port) if state == "running" else None, servers)


__all__ = ("BUILD_SCRIPTS", "HUB_PINS", "HubStatus", "api_token", "down", "status", "up")
