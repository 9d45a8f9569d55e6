"""The mapping rule on real rootless and userns-remap Docker engines (issue 14, "Rootless and
remapped engines").

Rootless: the daemon runs as an ordinary host user inside a user namespace. Container UID 0 is that
user, and container UID n >= 1 is the user's subordinate UID (start + n - 1). So nbenv runs as 0:0
there: files it writes in the bind-mounted workspace belong to the workspace's owner, while with
1000:100 they would land with a subordinate UID the owner cannot chown back (or, in a 0755
workspace, not land at all). Root in the container keeps no capability and no way to gain one, so
it can write only where the owner's own permission bits allow.

userns-remap: every container UID n is the remap user's subordinate UID start + n, root included,
so no container UID writes as the workspace's owner; `--userns=host` (compose `userns_mode: host`)
turns the remapping off for one container, and the owner's UID then works as on a rootful engine.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.rootless import (
    OBSERVED_ROOTFUL_SECURITY_OPTIONS,
    OBSERVED_ROOTLESS_SECURITY_OPTIONS,
    OBSERVED_USERNS_REMAP_SECURITY_OPTIONS,
    Engine,
    RemappedEngine,
    RootlessEngine,
    security_option_names,
    security_options,
)

pytestmark = [pytest.mark.e2e, pytest.mark.security]

# What the container does in each bind-mounted directory, one line per directory.
PROBE = r"""
grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status
for d in owned shared rootowned; do
    if (mkdir /mnt/$d/made && echo saved > /mnt/$d/made/notebook.ipynb) 2>/dev/null; then
        echo "$d: written"
    else
        echo "$d: denied"
    fi
done
if touch /probe 2>/dev/null; then echo "rootfs: written"; else echo "rootfs: denied"; fi
"""
DIRS = {"owned": 0o755, "shared": 0o777, "rootowned": 0o755}  # 0777: the usual workaround


@dataclass(frozen=True)
class Probe:
    status: dict[str, str]
    base: Path

    def owner_of(self, directory: str) -> tuple[int, int]:
        made = self.base / directory / "made" / "notebook.ipynb"
        assert made.read_text() == "saved\n"
        assert (made.parent.stat().st_uid, made.parent.stat().st_gid) == (made.stat().st_uid, made.stat().st_gid)
        return made.stat().st_uid, made.stat().st_gid


def probe(engine: Engine, image: str, under: Path, owner: tuple[int, int], user: str, *extra: str) -> Probe:
    """Run PROBE as `user` (all capabilities dropped, no-new-privileges, read-only root) with three
    bind-mounted directories: `owned` (0755, the workspace owner's), `shared` (0777, the owner's)
    and `rootowned` (0755, host root's). They go with the engine's directory at the session's end."""
    base = under / f"case-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    os.chown(base, *owner)
    for name, mode in DIRS.items():
        (base / name).mkdir()
        os.chmod(base / name, mode)
        if name != "rootowned":
            os.chown(base / name, *owner)
    mounts = [arg for name in DIRS for arg in ("--volume", f"{base / name}:/mnt/{name}")]
    result = engine.docker(
        "run", "--rm", "--network", "none", "--user", user, "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--read-only", *extra, *mounts, image, "sh", "-c", PROBE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = {key: value.strip() for key, value in (line.split(":", 1) for line in result.stdout.splitlines())}
    # No more rights than the owner: no capability at all, none to gain, read-only root, and host
    # root's directory stays closed (in the namespace it belongs to nobody).
    for capability in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capability], 16) == 0, f"{capability} = {status[capability]}"
    assert status["NoNewPrivs"] == "1"
    assert status["rootfs"] == "denied"
    assert status["rootowned"] == "denied"
    assert not (base / "rootowned" / "made").exists()
    assert status["shared"] == "written"
    return Probe(status, base)


@pytest.mark.parametrize(
    ("container_user", "owner_can_be_written"),
    [
        ("0:0", True),  # what nbenv uses on a rootless engine: the host user itself
        ("1000:100", False),  # what a pinned `user: 1000:100` would be: a subordinate UID
        ("4321:4321", False),  # any other non-zero UID: another subordinate UID
    ],
)
def test_rootless_container_uid_maps_to_the_host_user_only_for_uid_0(
    rootless_engine: RootlessEngine, rootless_base_image: str, container_user: str, owner_can_be_written: bool
) -> None:
    engine = rootless_engine
    uid, gid = (int(part) for part in container_user.split(":"))
    result = probe(engine, rootless_base_image, engine.home, (engine.uid, engine.gid), container_user)
    try:
        owner = result.owner_of("shared")
        assert owner == (engine.host_uid(uid), engine.host_gid(gid))
        subordinate = range(engine.subuid_start, engine.subuid_start + 65536)
        if uid == 0:
            assert owner == (engine.uid, engine.gid), "container root is the engine's user on the host"
        else:
            assert owner[0] in subordinate and owner[0] not in (0, engine.uid), owner
        # The owner's own 0755 workspace: only container UID 0 (= the owner) can save into it.
        assert result.status["owned"] == ("written" if owner_can_be_written else "denied")
        if owner_can_be_written:
            assert result.owner_of("owned") == (engine.uid, engine.gid)
    finally:
        shutil.rmtree(result.base, ignore_errors=True)


OWNER = (4321, 4321)  # the workspace's owner for the userns-remap cases (an ordinary host UID)


@pytest.mark.parametrize(
    ("container_user", "userns_host"),
    [
        ("0:0", False),  # remapped root: start + 0, not the owner, not root
        ("1000:100", False),  # remapped: start + 1000
        (f"{OWNER[0]}:{OWNER[1]}", False),  # even the owner's own UID is remapped: start + 4321
        (f"{OWNER[0]}:{OWNER[1]}", True),  # --userns=host: the owner's UID, as on a rootful engine
    ],
)
def test_userns_remap_maps_every_uid_unless_userns_host(
    remapped_engine: RemappedEngine, remapped_base_image: str, container_user: str, userns_host: bool
) -> None:
    engine = remapped_engine
    uid, gid = (int(part) for part in container_user.split(":"))
    extra = ("--userns=host",) if userns_host else ()
    result = probe(engine, remapped_base_image, engine.base, OWNER, container_user, *extra)
    try:
        owner = result.owner_of("shared")
        if userns_host:
            assert owner == OWNER
            assert result.status["owned"] == "written" and result.owner_of("owned") == OWNER
        else:
            assert owner == (engine.host_uid(uid), engine.host_gid(gid)) and owner[0] not in (0, OWNER[0])
            assert result.status["owned"] == "denied", "no remapped UID is the owner"
    finally:
        shutil.rmtree(result.base, ignore_errors=True)


def test_engines_report_rootless_or_userns_in_security_options(
    rootless_engine: RootlessEngine, remapped_engine: RemappedEngine
) -> None:
    """What `docker info` shows is how nbenv tells the three kinds of engine apart."""
    rootless = security_options(rootless_engine.docker_host)
    remapped = security_options(remapped_engine.docker_host)
    rootful = security_options()
    print(f"SecurityOptions\n  rootless: {rootless}\n  userns-remap: {remapped}\n  rootful: {rootful}")
    assert {"rootless", "userns"} & security_option_names(rootless) == {"rootless"}, rootless
    assert {"rootless", "userns"} & security_option_names(remapped) == {"userns"}, remapped
    assert not {"rootless", "userns"} & security_option_names(rootful), rootful
    # The strings recorded from this machine's engines (for identity.py's unit tests) parse alike.
    assert "rootless" in security_option_names(OBSERVED_ROOTLESS_SECURITY_OPTIONS)
    assert "userns" in security_option_names(OBSERVED_USERNS_REMAP_SECURITY_OPTIONS)
    assert not {"rootless", "userns"} & security_option_names(OBSERVED_ROOTFUL_SECURITY_OPTIONS)
    assert security_option_names("null") == frozenset()
