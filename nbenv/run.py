"""Running an environment: token, port check, compose up, wait for Jupyter, the URL."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import posixpath
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nbenv.adapters.compose import Compose, ServiceState
from nbenv.adapters.engine import EngineAPI
from nbenv.errors import RunError
from nbenv.fs import atomic_write
from nbenv.identity import Identity, hand_over
from nbenv.plan import compose_project, token_file
from nbenv.safepath import existing_non_link, owned_dir, read_regular
from nbenv.ui import Say
from nbenv.workspace import STATE_DIR, Workspace


@dataclass(frozen=True)
class Running:
    name: str
    url: str
    port: int
    container: str
    started: bool  # False: it was already running


STATE_FILE_LIMIT = 64 * 1024  # a token or compose.env is a few dozen bytes


def run_dir(ws: Workspace, name: str, *, create: bool = False) -> Path:
    """`.nbenv/run/NAME`, owned by nbenv: no symlink on its path (a committed `.nbenv/run/NAME -> ~/.ssh`
    gets one clear line, and nothing is chmod-ed, written or locked outside the repository)."""
    return owned_dir(
        ws.root, posixpath.join(STATE_DIR, "run", name), what="run state (token, compose.env, lock)", create=create
    )


def read_state_file(path: Path, display: str) -> str | None:
    """A state file's text (None if absent), read only as a regular file, never through a symlink."""
    if not existing_non_link(path, display=display, why="nbenv reads its state only from files it wrote"):
        return None
    return read_regular(path, display=display, limit=STATE_FILE_LIMIT).decode("utf-8", errors="replace")


@contextlib.contextmanager
def environment_lock(ws: Workspace, name: str, *, say: Say) -> Iterator[None]:
    """One `up` of an environment at a time (per workspace): a second one waits for the first, then finds
    it running. The lock is an flock on `.nbenv/run/NAME/lock`, released by the kernel if nbenv dies."""
    path = run_dir(ws, name, create=True) / "lock"
    read_state_file(path, f"{STATE_DIR}/run/{name}/lock")  # refuses a symlink or a special file, one line
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise RunError(
            f"{ws.rel(path)}: cannot open the lock file: {exc.strerror}", "remove it and run again"
        ) from None
    with os.fdopen(fd, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"{name}: another `nbenv up {name}` is in progress; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


BUSY_PORT_MARKERS = ("port is already allocated", "address already in use")


def is_busy_port(message: str) -> bool:
    """Whether a failed `compose up` lost its port to another process (a race the pre-check cannot close)."""
    return any(marker in message.lower() for marker in BUSY_PORT_MARKERS)


def compose_for(ws: Workspace, name: str, *, compose_file: Path, engine: EngineAPI) -> Compose:
    env_file = run_dir(ws, name) / "compose.env"
    present = read_state_file(env_file, f"{STATE_DIR}/run/{name}/compose.env") is not None
    return Compose(
        engine=engine,
        project=compose_project(ws.config, name),
        compose_file=compose_file,
        env_file=env_file if present else None,
    )


def write_token(ws: Workspace, name: str, identity: Identity) -> str:
    """A fresh random token (32 bytes) in a 0600 file of the user the container runs as (it reads the
    file through a bind mount), inside nbenv's 0700 state directory."""
    path = run_dir(ws, name, create=True) / posixpath.basename(token_file(name))
    os.chmod(path.parent, 0o700)  # the directory (owned: no symlink on its path) guards the file on the host
    token = secrets.token_urlsafe(32)
    atomic_write(path, token, mode=0o600)
    hand_over(path, identity)  # atomic_write renamed it into place: never a link
    return token


def read_token(ws: Workspace, name: str) -> str | None:
    text = read_state_file(run_dir(ws, name) / posixpath.basename(token_file(name)), token_file(name))
    return (text or "").strip() or None


def compose_env(*, image: str, port: int, identity: Identity) -> str:
    """What compose interpolates into the generated file: image tag, host port, who runs it. None of
    it is secret, and none of it is in the committed file, so that file is the same for every user."""
    values = {"NBENV_IMAGE": image, "NBENV_PORT": str(port), **identity.compose_env()}
    return "".join(f"{key}={value}\n" for key, value in values.items())


def write_compose_env(ws: Workspace, name: str, text: str) -> None:
    atomic_write(run_dir(ws, name, create=True) / "compose.env", text)


def port_problem(bind: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like a server would: connections of a stopped environment in TIME_WAIT don't count,
        # a live listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {bind} is already in use"
            return f"cannot use port {port} on {bind}: {exc.strerror}"
    return None


def probe_host(bind: str) -> str:
    """Where nbenv reaches Jupyter published on host address `bind`: that address itself, or the loopback
    of the same family for a wildcard (0.0.0.0 -> 127.0.0.1, :: -> ::1). Never another address: the
    token goes only to the server nbenv started (127.0.0.1 may be someone else's when Jupyter binds ::1)."""
    address = ipaddress.ip_address(bind)
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return str(address)


def netloc(host: str, port: int) -> str:
    """host:port for a URL: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def jupyter_url(host: str, port: int, token: str | None, default_url: str) -> str:
    """The URL `up` prints: `default_url` on the probed address with nbenv's token in its query. A query
    of `default_url` is kept (a `token` in it is dropped: it must not shadow nbenv's), a fragment stays last."""
    parts = urllib.parse.urlsplit(default_url)
    kept = [q for q in parts.query.split("&") if q and q.partition("=")[0] != "token"]
    query = "&".join([*kept, *([urllib.parse.urlencode({"token": token})] if token else [])])
    return urllib.parse.urlunsplit(("http", netloc(host, port), parts.path, query, parts.fragment))


def status_code(port: int, token: str | None, *, host: str) -> int | None:
    """HTTP status of Jupyter's /api/status on host:port (None when nothing answers)."""
    request = urllib.request.Request(f"http://{netloc(host, port)}/api/status")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with _NO_PROXY.open(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


# The probe goes straight to the address Jupyter is published on: never through an HTTP proxy from the
# environment (which would receive the token), never following a redirect elsewhere.
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def wait_ready(compose: Compose, *, host: str, port: int, token: str | None, timeout: float, say: Say) -> ServiceState:
    """Until /api/status on host:port answers 200 with the token (without one under `jupyter.token =
    false`); fail fast if the container stops."""
    deadline = time.monotonic() + timeout
    states = compose.ps()
    if not states:
        raise RunError(f"{compose.project}: compose started no container")
    container, next_state_check, said_waiting = states[0].container, 0.0, False
    while status_code(port, token, host=host) != 200:
        now = time.monotonic()
        if now >= next_state_check:  # the container's state costs a docker call: once a second
            state = compose.state(container)
            if state not in ("running", "created", "restarting"):
                raise RunError(
                    f"{compose.project}: the container stopped ({state or 'removed'}) before Jupyter answered",
                    "its last log lines are above",
                )
            next_state_check = now + 1.0
        if now > deadline:
            raise RunError(
                f"{compose.project}: Jupyter did not answer on {netloc(host, port)} within {timeout:g} s",
                "its last log lines are above; a slow machine may need `--timeout` (in seconds)",
            )
        if not said_waiting:
            say("waiting for Jupyter to answer ...")
            said_waiting = True
        time.sleep(0.1)
    return compose.ps()[0]
