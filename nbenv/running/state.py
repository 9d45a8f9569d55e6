"""What nbenv keeps for a running environment under `.nbenv/run/NAME` (owned: no symlink on its path): the
Jupyter token, compose.env (what compose interpolates: image, port, user) and the lock that makes one
`up` of an environment wait for another."""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import secrets
from collections.abc import Iterator
from pathlib import Path

from nbenv.adapters.compose import Compose
from nbenv.adapters.engine import EngineAPI
from nbenv.errors import RunError
from nbenv.fs import atomic_write
from nbenv.identity import Identity, hand_over
from nbenv.plan import compose_project, token_file
from nbenv.safepath import existing_non_link, owned_dir, read_regular
from nbenv.ui import Say
from nbenv.workspace import STATE_DIR, Workspace

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


def current_env(ws: Workspace, name: str) -> str:
    return read_state_file(run_dir(ws, name) / "compose.env", f".nbenv/run/{name}/compose.env") or ""


def current_port(ws: Workspace, name: str) -> int:
    """The port the running container was started on (its compose.env), for an `up` without --port."""
    text = current_env(ws, name)
    for line in text.splitlines():
        value = line.removeprefix("NBENV_PORT=")
        if value != line and value.isascii() and value.isdigit() and 0 < int(value) < 65536:
            return int(value)
    return 8888
