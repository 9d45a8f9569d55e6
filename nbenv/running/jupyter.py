"""The Jupyter server of a running environment as nbenv reaches it: is the port free, the address it
probes, the URL it prints, and waiting until the server answers with the token and refuses without it."""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
import urllib.parse

from nbenv.adapters import localhttp
from nbenv.adapters.compose import Compose, ServiceState
from nbenv.errors import RunError
from nbenv.plan import page_parts
from nbenv.spec.models import Environment
from nbenv.ui import Say

BUSY_PORT_MARKERS = ("port is already allocated", "address already in use")


def is_busy_port(message: str) -> bool:
    """Whether a failed `compose up` lost its port to another process (a race the pre-check cannot close)."""
    return any(marker in message.lower() for marker in BUSY_PORT_MARKERS)


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
    path, kept, fragment = page_parts(default_url)
    query = "&".join([*filter(None, [kept]), *([urllib.parse.urlencode({"token": token})] if token else [])])
    return urllib.parse.urlunsplit(("http", netloc(host, port), path, query, fragment))


def status_code(port: int, token: str | None, *, host: str) -> int | None:
    """HTTP status of Jupyter's /api/status on host:port (None when nothing answers): straight to that
    address, never through a proxy from the environment (which would receive the token)."""
    return localhttp.status(f"http://{netloc(host, port)}/api/status", token=token, timeout=2)


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


def check_token_required(project: str, env: Environment, *, host: str, port: int) -> None:
    """Belt and braces: the server that accepted nbenv's token must refuse a request without one. A
    configuration nbenv did not write (e.g. in a custom base image) may have switched the token off."""
    code = status_code(port, None, host=host)
    if code not in (401, 403):
        answer = f"answered {code}" if code else "did not answer"
        raise RunError(
            f"{project}: Jupyter on {netloc(host, port)} {answer} without the token instead of refusing "
            "(403), so anyone who reaches the port could run code: stopped it",
            f"a Jupyter configuration in the image switches the token off; `[jupyter] token = false` in {env.file} "
            "is the explicit opt-in",
        )
