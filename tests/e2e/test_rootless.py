"""The mapping rule on a real rootless Docker engine (issue 14, "Rootless and remapped engines").

In rootless mode the daemon runs as an ordinary host user inside a user namespace: container UID 0
is that user, and container UID n >= 1 is the user's subordinate UID (start + n - 1). So nbenv runs
as 0:0 there: files it writes in the bind-mounted workspace belong to the workspace's owner, while
with 1000:100 they would land with a subordinate UID the owner cannot even chown back (or, in a
0755 workspace, not land at all). Root in the container keeps no capability and no way to gain one,
so it can write only where the owner's own permission bits allow.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.rootless import (
    OBSERVED_ROOTFUL_SECURITY_OPTIONS,
    OBSERVED_ROOTLESS_SECURITY_OPTIONS,
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


def _status(output: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in output.splitlines() if ":" in line)


@pytest.mark.parametrize(
    ("container_user", "owner_can_be_written"),
    [
        ("0:0", True),  # what nbenv uses on a rootless engine: the host user itself
        ("1000:100", False),  # what a pinned `user: 1000:100` would be: a subordinate UID
        ("4321:4321", False),  # any other non-zero UID: another subordinate UID
    ],
)
def test_rootless_container_uid_maps_to_the_host_user_only_for_uid_0(
    rootless_engine: RootlessEngine,
    rootless_base_image: str,
    tmp_path: Path,
    container_user: str,
    owner_can_be_written: bool,
) -> None:
    engine = rootless_engine
    uid, gid = (int(part) for part in container_user.split(":"))
    base = engine.home / f"case-{tmp_path.name}"
    dirs = {"owned": 0o755, "shared": 0o777, "rootowned": 0o755}
    try:
        base.mkdir(mode=0o755)
        os.chown(base, engine.uid, engine.gid)
        for name, mode in dirs.items():
            (base / name).mkdir()
            os.chmod(base / name, mode)  # 0777: the usual workaround when the container cannot save
            if name != "rootowned":
                os.chown(base / name, engine.uid, engine.gid)
        mounts = [arg for name in dirs for arg in ("--volume", f"{base / name}:/mnt/{name}")]
        result = engine.docker(
            "run", "--rm", "--network", "none", "--user", container_user, "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--read-only", *mounts,
            rootless_base_image, "sh", "-c", PROBE,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        status = {key: value.strip() for key, value in _status(result.stdout).items()}

        # No more rights than the owner: no capability at all, none to gain, read-only root.
        for capability in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[capability], 16) == 0, f"{capability} = {status[capability]}"
        assert status["NoNewPrivs"] == "1"
        assert status["rootfs"] == "denied"
        # Host root's directory is nobody's in the namespace: even container root cannot write it.
        assert status["rootowned"] == "denied"
        assert not (base / "rootowned" / "made").exists()

        # Writable by everyone: the file lands, owned by the user only for container UID 0.
        assert status["shared"] == "written"
        made = base / "shared" / "made" / "notebook.ipynb"
        assert made.read_text() == "saved\n"
        owner = (made.stat().st_uid, made.stat().st_gid)
        assert owner == (engine.host_uid(uid), engine.host_gid(gid))
        subordinate = range(engine.subuid_start, engine.subuid_start + 65536)
        if uid == 0:
            assert owner == (engine.uid, engine.gid), "container root is the engine's user on the host"
            assert made.stat().st_uid not in subordinate
        else:
            assert owner[0] in subordinate and owner[0] not in (0, engine.uid), owner

        # The owner's own 0755 workspace: only container UID 0 (= the owner) can save into it.
        assert status["owned"] == ("written" if owner_can_be_written else "denied")
        if owner_can_be_written:
            saved = base / "owned" / "made" / "notebook.ipynb"
            assert (saved.stat().st_uid, saved.stat().st_gid) == (engine.uid, engine.gid)
            assert ((base / "owned" / "made").stat().st_uid, (base / "owned" / "made").stat().st_gid) == (
                engine.uid,
                engine.gid,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_rootless_engine_reports_rootless_in_security_options(rootless_engine: RootlessEngine) -> None:
    """What `docker info` shows is how nbenv tells a rootless engine from a rootful one."""
    rootless = security_options(rootless_engine.docker_host)
    rootful = security_options()
    print(f"rootless SecurityOptions: {rootless}\nrootful SecurityOptions: {rootful}")
    assert "rootless" in security_option_names(rootless), rootless
    assert "rootless" not in security_option_names(rootful), rootful
    # The strings recorded from this machine's engines (used by identity.py's unit tests) parse alike.
    assert "rootless" in security_option_names(OBSERVED_ROOTLESS_SECURITY_OPTIONS)
    assert "rootless" not in security_option_names(OBSERVED_ROOTFUL_SECURITY_OPTIONS)
    assert security_option_names("null") == frozenset()
    # The engine really is one of this session's user: its daemon runs as that UID.
    assert rootless_engine.uid != 0 and rootless_engine.docker_host.startswith(f"unix://{rootless_engine.home}/")
