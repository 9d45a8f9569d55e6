"""Real-engine fixtures: one workspace, one base image, one running environment per session.

Everything created is tagged with this session's image prefix or compose project and removed
at the end, even when tests fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, WORKSPACE_FILES

SESSION = uuid.uuid4().hex[:8]
PREFIX = f"nbenv-test-{SESSION}"
BASE_TAG = f"{PREFIX}/debian-python:bookworm"


def nbenv_bin() -> str:
    found = shutil.which("nbenv", path=str(Path(sys.executable).parent))
    assert found, "nbenv is installed into the test venv by scripts/bootstrap"
    return found


def nbenv(
    *args: str, cwd: Path, timeout: float = 1800, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user runs it."""
    return subprocess.run(
        [nbenv_bin(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def engine() -> None:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: the README's test command (scripts/test) starts one")


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory: pytest.TempPathFactory, engine: None) -> Iterator[Path]:
    """The demo workspace with this session's image prefix and base, small data, owned by UID 1000."""
    root = tmp_path_factory.mktemp("e2e") / "repo"
    root.mkdir()
    for name in [*WORKSPACE_FILES, "nbenv"]:  # nbenv/ is the project's own package (importable = true)
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        .replace('image_prefix = "nbenv"', f'image_prefix = "{PREFIX}"')
        .replace('default_base_image = "nbenv/debian-python:bookworm"', f'default_base_image = "{BASE_TAG}"')
    )
    shutil.copy2(REPO / "dvc.lock", root / "dvc.lock")
    # A real DVC workspace: the demo pipeline makes the data, a session-local remote keeps it.
    tools = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "remote", "add", "-d", "local", str(root.parent / "dvc-remote")],
        ["dvc", "repro", "--quiet"],
    ):
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, env={**os.environ, **tools})
        assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    pushed = nbenv("data", "push", "traffic-analysis", cwd=root)
    assert pushed.returncode == 0, pushed.stderr
    (root / "notebooks").mkdir()
    if os.geteuid() == 0:  # the container's user (UID 1000) must be able to write the source mount
        for path in [root, *root.rglob("*")]:
            os.chown(path, 1000, 100)
    yield root
    images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    mine = [image for image in images if image.startswith(f"{PREFIX}/")]
    if mine:
        docker("rmi", "--force", *mine, check=False)


@pytest.fixture(scope="session")
def base_image(e2e_workspace: Path) -> str:
    result = nbenv("image", "base", "--tag", BASE_TAG, cwd=e2e_workspace)
    assert result.returncode == 0, result.stderr
    return BASE_TAG


@dataclass(frozen=True)
class Up:
    url: str
    token: str
    port: int
    stdout: str
    stderr: str
    workspace: Path

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        compose_file = self.workspace / "docker/traffic-analysis/compose.yaml"
        env_file = self.workspace / ".nbenv/run/traffic-analysis/compose.env"
        return subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                f"{PREFIX}-traffic-analysis",
                "-f",
                str(compose_file),
                "--env-file",
                str(env_file),
                *args,
            ],
            capture_output=True,
            text=True,
        )

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "jupyter", *command)


@pytest.fixture(scope="session")
def demo_up(e2e_workspace: Path, base_image: str) -> Iterator[Up]:
    """`nbenv up traffic-analysis` once for the session (builds base + traffic-analysis)."""
    port = free_port()
    try:
        result = nbenv("up", "traffic-analysis", "--port", str(port), cwd=e2e_workspace)
        assert result.returncode == 0, f"nbenv up failed:\n{result.stderr[-4000:]}"
        url = result.stdout.strip()
        token = url.rsplit("token=", 1)[-1]
        yield Up(url, token, port, result.stdout, result.stderr, e2e_workspace)
    finally:
        nbenv("down", "traffic-analysis", cwd=e2e_workspace, timeout=120)
