"""A real base image from Debian packages (mmdebstrap + docker import), built once under a test tag.

Needs root (or subordinate IDs), mmdebstrap, a Docker engine and a reachable Debian mirror.
Everything created carries the label nbenv.test=1 and is removed at the end, even on failure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nbenv.adapters.engine import Engine
from nbenv.base_image import BaseImagePlan, base_image_plan, build_base_image
from nbenv.errors import BuildError, EngineUnavailable
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

TEST_LABEL = "nbenv.test"
MAX_SIZE = 150e6  # about 125 MB; with perl (usrmerge) back in it would be about 175 MB


@dataclass(frozen=True)
class Built:
    plan: BaseImagePlan
    image_id: str
    log: list[str]
    tmp: Path  # the temp directory the build used: empty afterwards


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def new_tag() -> str:
    return f"nbenv-test/debian-python:{secrets.token_hex(6)}"


def remove_image(tag: str) -> None:
    docker("image", "rm", "--force", tag, check=False)


def labelled(plan: BaseImagePlan) -> BaseImagePlan:
    """The plan plus the test label, so that a left-over image can be found and removed."""
    return dataclasses.replace(plan, import_changes=(*plan.import_changes, f'LABEL {TEST_LABEL}="1"'))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    if docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine answers: run scripts/engine")
    plan = labelled(base_image_plan(tag=new_tag()))
    tmp = tmp_path_factory.mktemp("base-image-tmp")
    lines: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tempfile, "tempdir", str(tmp))
            image_id = build_base_image(plan, log=lines.append)
        yield Built(plan, image_id, lines, tmp)
    finally:
        remove_image(plan.tag)


def run(built: Built, *command: str, user: str | None = None) -> str:
    """`docker run --rm` a labelled container from the image; its stdout (fails the test on exit != 0)."""
    options = ["--user", user] if user else []
    result = docker("run", "--rm", "--label", f"{TEST_LABEL}=1", *options, built.plan.tag, *command, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


def inspect(built: Built) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(docker("image", "inspect", built.image_id).stdout)
    return data[0]


def test_build_returns_the_id_of_the_tagged_image(built: Built) -> None:
    assert built.image_id.startswith("sha256:")
    assert inspect(built)["Id"] == built.image_id
    assert built.plan.tag in inspect(built)["RepoTags"]


def test_the_log_shows_progress_without_a_flood(built: Built) -> None:
    log = built.log
    assert log[0].startswith(f"building the root filesystem of {built.plan.tag}")
    assert "I: downloading packages with apt..." in log
    assert any(line.startswith("I: success in") for line in log)
    assert log[-1].startswith(f"built {built.plan.tag} (sha256:") and " MB) in " in log[-1]
    assert all(line[:3] in {"I: ", "W: "} for line in log[1:-2]), "only mmdebstrap's status lines"
    assert len(log) < 40


def test_the_temporary_tarball_is_removed(built: Built) -> None:
    assert list(built.tmp.iterdir()) == []


def test_python_311_with_venv_and_pip(built: Built) -> None:
    assert run(built, "python3", "--version").startswith("Python 3.11.")
    pip = run(built, "bash", "-c", "python3 -m venv /tmp/v && /tmp/v/bin/python -m pip --version")
    assert pip.startswith("pip ") and "/tmp/v/" in pip


def test_tini_bash_and_ca_certificates(built: Built) -> None:
    assert run(built, "tini", "--version").startswith("tini version")
    assert run(built, "bash", "-c", "command -v tini") == "/usr/bin/tini"
    assert run(built, "bash", "-c", "test -s /etc/ssl/certs/ca-certificates.crt && echo ok") == "ok"


def test_the_jovyan_user(built: Built) -> None:
    assert run(built, "id", "jovyan") == "uid=1000(jovyan) gid=100(users) groups=100(users)"
    assert run(built, "getent", "passwd", "jovyan") == "jovyan:x:1000:100::/home/jovyan:/bin/bash"
    assert run(built, "stat", "-c", "%u:%g", "/home/jovyan") == "1000:100"
    assert run(built, "bash", "-c", "touch ~/probe && echo $HOME", user="1000:100") == "/home/jovyan"


def test_it_stays_small(built: Built) -> None:
    assert run(built, "bash", "-c", "dpkg -s perl >/dev/null 2>&1 || echo absent") == "absent"
    docs = "find /usr/share/doc /usr/share/man -type f ! -name copyright"
    apt_lists = "ls /var/lib/apt/lists | grep -v -x -e lock -e partial"
    assert run(built, "bash", "-c", f"{docs}; {apt_lists}; true") == ""
    assert inspect(built)["Size"] < MAX_SIZE
    assert run(built, "apt-config", "dump", "APT::Keep-Downloaded-Packages") == 'APT::Keep-Downloaded-Packages "false";'


def test_image_config_and_labels(built: Built) -> None:
    config = inspect(built)["Config"]
    assert config["Cmd"] == ["/bin/bash"]
    assert "LANG=C.UTF-8" in config["Env"]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in config["Env"]
    found = config["Labels"]
    assert found["nbenv.base.suite"] == "bookworm"
    assert found["nbenv.base.python"] == "3.11", "read from the root filesystem: the Python every check assumes"
    assert found["nbenv.base.packages"] == "ca-certificates,python3,python3-venv,tini"
    assert found["org.opencontainers.image.title"]
    assert "jovyan" in found["org.opencontainers.image.description"]
    assert found["org.opencontainers.image.created"].endswith("Z")
    assert found[TEST_LABEL] == "1"


@pytest.mark.fault
def test_a_failing_mmdebstrap_is_a_build_error_and_leaves_nothing(tmp_path: Path) -> None:
    plan = labelled(base_image_plan(tag=new_tag(), suite="nbenv-no-such-suite"))
    lines: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as patch, pytest.raises(BuildError) as caught:
            patch.setattr(tempfile, "tempdir", str(tmp_path))
            build_base_image(plan, log=lines.append)
    finally:
        remove_image(plan.tag)
    assert caught.value.message.startswith("mmdebstrap failed (exit ")
    assert "nbenv-no-such-suite" in caught.value.message, "the cause, not the last consequence"
    assert "\n" not in caught.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.fault
def test_no_engine_is_reported_before_mmdebstrap_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/nbenv-test.sock")  # the CLI's and the SDK's engine
    with pytest.raises(EngineUnavailable) as caught:
        build_base_image(base_image_plan(tag=new_tag()), engine=Engine(), log=lines.append)
    assert caught.value.message.startswith("no Docker engine answers")
    assert "unix:///nonexistent/nbenv-test.sock" in caught.value.message
    assert lines == []


INTERRUPTED = """
import sys, tempfile
from nbenv.base_image import base_image_plan, build_base_image
tempfile.tempdir = sys.argv[1]
try:
    build_base_image(base_image_plan(tag=sys.argv[2]), log=lambda line: print(line, flush=True))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def mmdebstrap_mounts() -> set[str]:
    return {line for line in Path("/proc/mounts").read_text().splitlines() if "/mmdebstrap." in line}


def group_is_gone(pgid: int, timeout: float = 10) -> bool:
    """Whether every process of the group has exited (orphans may take a moment to be reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def group_processes(pgid: int) -> str:
    return subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(pgid)], capture_output=True, text=True).stdout


def interrupt_at_download(process: subprocess.Popen[str]) -> list[str]:
    """Read the build's output; SIGINT its whole process group (as Ctrl-C does) once apt downloads."""
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("I: downloading packages"):
            os.killpg(process.pid, signal.SIGINT)
    return output


@pytest.mark.fault
def test_ctrl_c_stops_mmdebstrap_and_removes_the_tarball(tmp_path: Path) -> None:
    tag = new_tag()
    mounts_before = mmdebstrap_mounts()
    with subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(tmp_path), tag],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, which gets the SIGINT as from a terminal
    ) as process:
        try:
            output = interrupt_at_download(process)
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            remove_image(tag)
    assert "I: downloading packages with apt...\n" in output
    assert code == 130, "".join(output)
    assert output[-1] == "interrupted\n"
    assert not any("Traceback" in line for line in output)
    assert list(tmp_path.iterdir()) == []
    (own_tmp,) = [line.split()[2] for line in output if line.startswith("I: using ") and "as tempdir" in line]
    assert not Path(own_tmp).exists(), "mmdebstrap removed its own temporary root filesystem"
    assert group_is_gone(process.pid), "no mmdebstrap, apt or dpkg left running:\n" + group_processes(process.pid)
    assert mmdebstrap_mounts() == mounts_before
