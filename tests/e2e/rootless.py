"""A real rootless Docker engine for the e2e tests: Debian's `dockerd-rootless.sh` (RootlessKit,
slirp4netns, newuidmap/newgidmap) run by an ordinary user created for the session.

The user gets a free UID (4401 or the next free one), its own subordinate UID/GID range, and the
daemon's XDG_RUNTIME_DIR, data root and socket under its home. Teardown stops the daemon, removes
its data and the user (`userdel -r`, which also drops the subordinate ranges), and restores the
device permissions it granted, even when tests fail.

Where rootless cannot run (not root, user namespaces off, no /dev/net/tun, the daemon does not
answer) the fixture skips with the exact reason; NBENV_REQUIRE_ROOTLESS=1 turns that into a failure.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

# `dockerd-rootless.sh` as Debian's docker.io ships it, or on the PATH (Docker's own packages).
ROOTLESS_SCRIPTS = ("/usr/share/docker.io/contrib/dockerd-rootless.sh", "dockerd-rootless.sh")
# command -> the Debian package that has it (scripts/test installs them through scripts/host-tools)
ROOTLESS_TOOLS = {
    "rootlesskit": "rootlesskit",
    "newuidmap": "uidmap",
    "newgidmap": "uidmap",
    "slirp4netns": "slirp4netns",
}
FIRST_UID = 4401
SUBORDINATE_COUNT = 65536
TOOL_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
START_TIMEOUT = 60.0

# `docker info --format '{{json .SecurityOptions}}'` as observed on the test machine (Debian
# docker.io 20.10.24, cgroup v1, kernel 6.18): the rootless daemon of this module, and the
# ordinary rootful one. A rootless engine is recognised by the `name=rootless` entry.
OBSERVED_ROOTLESS_SECURITY_OPTIONS = '["name=seccomp,profile=default","name=rootless"]'
OBSERVED_ROOTFUL_SECURITY_OPTIONS = '["name=seccomp,profile=default"]'


def security_option_names(security_options_json: str) -> frozenset[str]:
    """The `name=` value of each entry of `docker info`'s SecurityOptions, a JSON list of strings
    such as "name=seccomp,profile=default" (pure; "null" and entries without a name give nothing)."""
    entries = json.loads(security_options_json) or []
    names = set()
    for entry in entries:
        for field in str(entry).split(","):
            key, _, value = field.partition("=")
            if key == "name" and value:
                names.add(value)
    return frozenset(names)


def security_options(docker_host: str | None = None) -> str:
    """`docker info --format '{{json .SecurityOptions}}'` of the engine at `docker_host` (default: the
    one the environment selects), exactly as printed."""
    env = dict(os.environ)
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    result = subprocess.run(
        ["docker", "info", "--format", "{{json .SecurityOptions}}"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@dataclass(frozen=True)
class Engine:
    """A Docker engine other than the default one, reached through its own socket."""

    docker_host: str  # unix:///...

    def docker(self, *args: str, stdin: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The docker CLI (run by the test's own user) talking to this engine."""
        return subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            stdin=stdin,
            timeout=timeout,
            env={**os.environ, "DOCKER_HOST": self.docker_host},
        )

    def load_image(self, tag: str) -> float:
        """`docker save TAG | DOCKER_HOST=... docker load` from the default engine; returns seconds."""
        began = time.monotonic()
        with tempfile.TemporaryFile() as errors:
            saver = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, stderr=errors)
            assert saver.stdout is not None
            with saver.stdout:
                loaded = self.docker("load", "--quiet", stdin=saver.stdout.fileno())
            saver.wait(timeout=60)
            errors.seek(0)
            assert saver.returncode == 0, f"docker save {tag}: {errors.read().decode(errors='replace')}"
        assert loaded.returncode == 0, f"docker load into {self.docker_host}: {loaded.stderr}"
        return time.monotonic() - began


@dataclass(frozen=True, kw_only=True)
class RootlessEngine(Engine):
    user: str
    uid: int
    gid: int
    home: Path
    subuid_start: int  # container UID n (n >= 1) is host UID subuid_start + n - 1
    subgid_start: int
    log: Path  # the daemon's log (kept after teardown, in pytest's tmp dir)
    started_in: float  # seconds from launch until `docker info` answered
    storage_driver: str

    def host_uid(self, container_uid: int) -> int:
        """The host UID a file written by `container_uid` gets: 0 is the user itself, the rest its range."""
        return self.uid if container_uid == 0 else self.subuid_start + container_uid - 1

    def host_gid(self, container_gid: int) -> int:
        return self.gid if container_gid == 0 else self.subgid_start + container_gid - 1


def _skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("NBENV_REQUIRE_ROOTLESS") == "1":
        pytest.fail(f"rootless Docker cannot run here (NBENV_REQUIRE_ROOTLESS=1): {reason}")
    pytest.skip(f"rootless Docker cannot run here: {reason}")


def _rootless_script() -> str | None:
    for candidate in ROOTLESS_SCRIPTS:
        found = candidate if os.access(candidate, os.X_OK) else shutil.which(candidate, path=TOOL_PATH)
        if found:
            return found
    return None


def _preflight() -> str:
    """The rootless script, after checking what rootless needs from this host (skip/fail if absent)."""
    if os.geteuid() != 0:
        _skip_or_fail(
            f"creating the engine's user (useradd, /etc/subuid) needs root; the tests run as UID {os.geteuid()}"
        )
    missing = sorted({package for tool, package in ROOTLESS_TOOLS.items() if not shutil.which(tool, path=TOOL_PATH)})
    if missing:
        pytest.fail(
            f"missing Debian packages {', '.join(missing)}: the README's test command (scripts/test) installs them"
        )
    script = _rootless_script()
    if script is None:
        pytest.fail("dockerd-rootless.sh not found (Debian's docker.io ships it in /usr/share/docker.io/contrib)")
    for knob, off in (("/proc/sys/user/max_user_namespaces", "0"), ("/proc/sys/kernel/unprivileged_userns_clone", "0")):
        with contextlib.suppress(OSError):
            if Path(knob).read_text().strip() == off:
                _skip_or_fail(f"user namespaces are disabled ({knob} = {off})")
    if not Path("/dev/net/tun").exists():
        _skip_or_fail("/dev/net/tun does not exist (slirp4netns needs a TAP device)")
    return script


def _free_id() -> int:
    uid = FIRST_UID
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            try:
                grp.getgrgid(uid)
            except KeyError:
                return uid
        uid += 1


def _free_subordinate_start() -> int:
    """A start above every range in /etc/subuid and /etc/subgid (100000 at least, 65536-aligned)."""
    end = 100000
    for table in (Path("/etc/subuid"), Path("/etc/subgid")):
        with contextlib.suppress(FileNotFoundError):
            for line in table.read_text().splitlines():
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                    end = max(end, int(fields[1]) + int(fields[2]))
    return -(-end // SUBORDINATE_COUNT) * SUBORDINATE_COUNT


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stderr.strip()}"


# POSIX ACL as the kernel stores it in system.posix_acl_access: version 2, then (tag, perm, id) entries.
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF


def _acl_granting(mode: int, uid: int) -> bytes:
    """An access ACL keeping `mode`'s owner/group/other bits and giving `uid` read+write."""
    entries = [
        (_ACL_USER_OBJ, (mode >> 6) & 7, _ACL_UNDEFINED_ID),
        (_ACL_USER, 6, uid),
        (_ACL_GROUP_OBJ, (mode >> 3) & 7, _ACL_UNDEFINED_ID),
        (_ACL_MASK, 6 | ((mode >> 3) & 7), _ACL_UNDEFINED_ID),
        (_ACL_OTHER, mode & 7, _ACL_UNDEFINED_ID),
    ]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


@contextlib.contextmanager
def _device_access(device: Path, uid: int) -> Iterator[None]:
    """Let `uid` open `device` read-write for the duration (udev makes /dev/net/tun and /dev/fuse
    0666 on a usual Debian; a machine without udev leaves them 0600 root, which rootless cannot
    open). Granted to this one user by an ACL; the device's mode and ACL are restored after."""
    status = device.stat()
    if status.st_mode & 0o006 == 0o006:
        yield
        return
    attribute = "system.posix_acl_access"
    try:
        before: bytes | None = os.getxattr(device, attribute)
    except OSError:
        before = None
    try:
        os.setxattr(device, attribute, _acl_granting(status.st_mode, uid))
    except OSError as error:
        _skip_or_fail(f"{device} is mode {oct(status.st_mode & 0o777)} and takes no ACL for the engine's user: {error}")
    try:
        yield
    finally:
        if before is None:
            with contextlib.suppress(OSError):
                os.removexattr(device, attribute)
        else:
            os.setxattr(device, attribute, before)
        os.chmod(device, status.st_mode & 0o7777)


def _processes(belongs: Callable[[int, str], bool]) -> list[int]:
    """PIDs of the processes `belongs(uid, command line)` picks."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if belongs(entry.stat().st_uid, command):
                    pids.append(int(entry.name))
    return pids


def _stop(daemon: subprocess.Popen[bytes], belongs: Callable[[int, str], bool]) -> None:
    """SIGTERM to the daemon's process group (rootlesskit or unshare, dockerd), then to what else of
    the engine still runs, by PID (containerd sits in a session of its own, container processes run
    as subordinate UIDs); SIGKILL what is left after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.wait(timeout=30)
    deadline = time.monotonic() + 30
    sent: set[int] = set()
    while (left := _processes(belongs)) and time.monotonic() < deadline:
        for pid in left:
            if pid not in sent:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                sent.add(pid)
        time.sleep(0.1)
    for pid in _processes(belongs):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.wait(timeout=10)


def _remove_user(user: str, subordinate: str) -> None:
    # userdel -r removes the home (data root included) and, with shadow >= 4.2, the user's
    # /etc/subuid and /etc/subgid lines; dropped explicitly first for an older userdel.
    subprocess.run(
        ["usermod", "--del-subuids", subordinate, "--del-subgids", subordinate, user], capture_output=True, timeout=60
    )
    result = subprocess.run(["userdel", "--remove", user], capture_output=True, text=True, timeout=60)
    if result.returncode not in (0, 12):  # 12: the home could not be removed entirely (handled below)
        subprocess.run(["userdel", "--force", "--remove", user], capture_output=True, timeout=60)


def _wait_until_answering(engine_host: str, daemon: subprocess.Popen[bytes], log: Path, what: str) -> float:
    began = time.monotonic()
    while time.monotonic() - began < START_TIMEOUT:
        if daemon.poll() is not None:
            break
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            env={**os.environ, "DOCKER_HOST": engine_host},
            timeout=30,
        )
        if probe.returncode == 0:
            return time.monotonic() - began
        time.sleep(0.1)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    # the errors, not dockerd's info chatter or the script's `set -x` trace
    errors = [
        line for line in lines if "level=error" in line or "level=fatal" in line or not line.startswith(("time=", "+ "))
    ]
    tail = " | ".join((errors or lines)[-4:])
    how = (
        f"exited with {daemon.returncode}"
        if daemon.poll() is not None
        else f"did not answer within {START_TIMEOUT:.0f} s"
    )
    _skip_or_fail(f"{what} {how}; its log ({log}) ends: {tail}")


@contextlib.contextmanager
def rootless_docker(log_dir: Path, *, dockerd_args: tuple[str, ...] = ()) -> Iterator[RootlessEngine]:
    """Create the user, start `dockerd-rootless.sh` as that user, yield the engine; undo it all after."""
    script = _preflight()
    user = f"nbrl{uuid.uuid4().hex[:8]}"  # 12 characters, a new account each session
    home = Path("/home") / user
    log = log_dir / "dockerd-rootless.log"
    for attempt in range(5):  # another session may take the same free UID at the same moment
        uid = _free_id()
        created = subprocess.run(
            [
                "useradd", "--create-home", "--home-dir", str(home), "--uid", str(uid), "--user-group",
                "--shell", "/usr/sbin/nologin", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", user,
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if created.returncode == 0:
            break
        assert created.returncode == 4 and attempt < 4, f"useradd {user}: {created.stderr.strip()}"  # 4: UID taken
    start = _free_subordinate_start()
    subordinate = f"{start}-{start + SUBORDINATE_COUNT - 1}"
    try:
        gid = pwd.getpwnam(user).pw_gid
        _run("usermod", "--add-subuids", subordinate, "--add-subgids", subordinate, user)
        runtime = home / "run"
        runtime.mkdir(mode=0o700)
        os.chown(runtime, uid, gid)
        docker_host = f"unix://{runtime}/docker.sock"
        with contextlib.ExitStack() as devices:
            for device in (Path("/dev/net/tun"), Path("/dev/fuse")):  # fuse: the fuse-overlayfs fallback
                if device.exists():
                    devices.enter_context(_device_access(device, uid))
            env = {
                "HOME": str(home),
                "USER": user,
                "LOGNAME": user,
                "PATH": TOOL_PATH,
                "XDG_RUNTIME_DIR": str(runtime),
            }
            with log.open("wb") as log_file:
                daemon = subprocess.Popen(
                    [
                        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--",
                        script, "--data-root", str(home / "docker-data"), "--host", docker_host, *dockerd_args,
                    ],
                    cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            try:
                started_in = _wait_until_answering(docker_host, daemon, log, "dockerd-rootless.sh")
                driver = subprocess.run(
                    ["docker", "info", "--format", "{{.Driver}}"],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "DOCKER_HOST": docker_host},
                    timeout=30,
                ).stdout.strip()
                yield RootlessEngine(
                    docker_host=docker_host, user=user, uid=uid, gid=gid, home=home, subuid_start=start,
                    subgid_start=start, log=log, started_in=started_in, storage_driver=driver,
                )  # fmt: skip
            finally:
                subordinate_uids = range(start, start + SUBORDINATE_COUNT)
                _stop(daemon, lambda owner, _command: owner == uid or owner in subordinate_uids)
    finally:
        _remove_user(user, subordinate)
        if home.exists():
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def rootless_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RootlessEngine]:
    """A real rootless Docker engine for the session (see the module's docstring)."""
    with rootless_docker(tmp_path_factory.mktemp("rootless")) as engine:
        yield engine


@pytest.fixture(scope="session")
def rootless_base_image(rootless_engine: RootlessEngine, base_image: str) -> str:
    """The session's base image, moved into the rootless engine (no registry: save | load)."""
    seconds = rootless_engine.load_image(base_image)
    print(f"rootless: engine answered after {rootless_engine.started_in:.2f} s, image loaded in {seconds:.2f} s")
    return base_image


# ---------------------------------------------------------------------------------------------
# A `userns-remap` engine: a second rootful dockerd with --userns-remap, in a network namespace
# of its own. Never with --bridge=none on the host's network: dockerd then deletes the host's
# docker0 (libnetwork's removeDefaultBridgeInterface), which breaks the main engine's bridge.

OBSERVED_USERNS_REMAP_SECURITY_OPTIONS = '["name=seccomp,profile=default","name=userns"]'


@dataclass(frozen=True, kw_only=True)
class RemappedEngine(Engine):
    remap_user: str  # the --userns-remap user, whose subordinate range the containers use
    subuid_start: int  # container UID n (n >= 0) is host UID subuid_start + n
    subgid_start: int
    base: Path  # 0711 directory of this engine: data root, socket, log; workspaces of the tests
    log: Path
    started_in: float

    def host_uid(self, container_uid: int) -> int:
        return self.subuid_start + container_uid

    def host_gid(self, container_gid: int) -> int:
        return self.subgid_start + container_gid


def _unmount_under(*roots: Path) -> None:
    """Lazily unmount whatever is still mounted below `roots` (deepest first), before removing them."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(root) or point.startswith(f"{root}/") for root in roots):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=60)


@contextlib.contextmanager
def userns_remap_docker() -> Iterator[RemappedEngine]:
    """A system user with its own subordinate range, `dockerd --userns-remap=USER` (own data root,
    exec root, pid file, socket, cgroup parent and network namespace); all undone after."""
    if os.geteuid() != 0:
        _skip_or_fail(f"a userns-remap dockerd needs root; the tests run as UID {os.geteuid()}")
    dockerd, unshare = shutil.which("dockerd", path=TOOL_PATH), shutil.which("unshare", path=TOOL_PATH)
    if dockerd is None or unshare is None:
        pytest.fail("dockerd (docker.io) and unshare (util-linux) are needed for the userns-remap engine")
    name = f"nbrm{uuid.uuid4().hex[:8]}"
    base = Path("/var/tmp") / name  # not under pytest's 0700 tmp: the remapped root must traverse it
    exec_root = Path("/run") / name
    start = _free_subordinate_start()
    subordinate = f"{start}-{start + SUBORDINATE_COUNT - 1}"
    _run(
        "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
        "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name,
    )  # fmt: skip
    try:
        _run("usermod", "--add-subuids", subordinate, "--add-subgids", subordinate, name)
        base.mkdir(mode=0o711)
        (base / "daemon.json").write_text("{}\n")  # not the host's /etc/docker/daemon.json
        log = base / "dockerd.log"
        docker_host = f"unix://{base}/docker.sock"
        with log.open("wb") as log_file:
            daemon = subprocess.Popen(
                [
                    unshare, "--net", "--", dockerd, "--config-file", str(base / "daemon.json"),
                    f"--userns-remap={name}", "--data-root", str(base / "data"), "--exec-root", str(exec_root),
                    "--pidfile", str(base / "docker.pid"), "--host", docker_host, f"--cgroup-parent=/{name}",
                ],
                env={"PATH": TOOL_PATH, "HOME": "/root"}, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            started_in = _wait_until_answering(docker_host, daemon, log, "dockerd --userns-remap")
            yield RemappedEngine(
                docker_host=docker_host, remap_user=name, subuid_start=start, subgid_start=start, base=base,
                log=log, started_in=started_in,
            )  # fmt: skip
        finally:
            subordinate_uids = range(start, start + SUBORDINATE_COUNT)
            _stop(daemon, lambda owner, command: str(exec_root) in command or owner in subordinate_uids)
            _unmount_under(base, exec_root, Path(f"{exec_root}.{start}.{start}"))
            # --cgroup-parent=/NAME: /sys/fs/cgroup/CONTROLLER/NAME (v1) or /sys/fs/cgroup/NAME (v2)
            parents = [*Path("/sys/fs/cgroup").glob(f"*/{name}"), Path("/sys/fs/cgroup") / name]
            for cgroup in [child for parent in parents for child in parent.glob("*/")] + parents:
                with contextlib.suppress(OSError):
                    cgroup.rmdir()  # empty once the containers are gone; a cgroup's files go with it
    finally:
        shutil.rmtree(exec_root, ignore_errors=True)
        shutil.rmtree(f"{exec_root}.{start}.{start}", ignore_errors=True)  # the remapped root's exec root
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(
            ["usermod", "--del-subuids", subordinate, "--del-subgids", subordinate, name], capture_output=True
        )
        subprocess.run(["userdel", name], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def remapped_engine() -> Iterator[RemappedEngine]:
    """A real `userns-remap` Docker engine for the session (see userns_remap_docker)."""
    with userns_remap_docker() as engine:
        yield engine


@pytest.fixture(scope="session")
def remapped_base_image(remapped_engine: RemappedEngine, base_image: str) -> str:
    seconds = remapped_engine.load_image(base_image)
    print(f"userns-remap: engine answered after {remapped_engine.started_in:.2f} s, image loaded in {seconds:.2f} s")
    return base_image
