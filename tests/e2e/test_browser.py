"""A real browser (headless Chromium) opens the URL that `nbenv up` printed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Up

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(os.environ.get("NBENV_TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: the README's test command (scripts/test) installs it")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--window-size=1280,800",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=180)


def test_jupyterlab_renders_the_launcher_with_the_environment_kernel(demo_up: Up, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", demo_up.url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "jp-LabShell" in dom.stdout, "JupyterLab's shell did not render"
    assert "Python (traffic-analysis)" in dom.stdout, "the launcher shows the environment's kernel"
    assert "official Jupyter news" not in dom.stdout, "no news/update prompt: Jupyter makes no outbound calls"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "jupyterlab-traffic-analysis.png"
    shot = chromium(f"--screenshot={screenshot}", demo_up.url, profile=tmp_path / "profile-shot")
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
