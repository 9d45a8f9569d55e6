"""A real browser (headless Chromium) opens the URL that `nbenv up` printed, and a person's round trip
through JupyterLab (create, run, save, rename a notebook; make a folder) lands on the host as the
workspace owner's files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.browser import CHROMIUM_ARGS, check_on_host, notebook_round_trip
from tests.e2e.conftest import Up, git

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(os.environ.get("NBENV_TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: the README's test command (scripts/test) installs it")
    flags = [
        "--headless",
        *CHROMIUM_ARGS,
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


KERNEL_LABEL = "Python (traffic-analysis)"
LAB_ROOT = "/home/jovyan/work"  # the image's --ServerApp.root_dir


def lab_root_on_host(workspace: Path, environment: str = "traffic-analysis") -> Path:
    """The host directory the compose file mounts at the lab's root directory."""
    compose_file = workspace / "docker" / environment / "compose.yaml"
    service = yaml.safe_load(compose_file.read_text())["services"]["jupyter"]
    assert service["working_dir"] == LAB_ROOT, service["working_dir"]
    (source,) = [v["source"] for v in service["volumes"] if v["type"] == "bind" and v["target"] == LAB_ROOT]
    return (compose_file.parent / str(source)).resolve()


def test_a_notebook_created_run_saved_and_renamed_in_the_browser_is_the_owners_file(demo_up: Up) -> None:
    workspace = demo_up.workspace
    root = lab_root_on_host(workspace)
    assert root == workspace.resolve(), "the lab's root directory is the workspace"
    # What the browser makes is no change to the checkout (other tests expect a clean tree).
    with (workspace / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("/notebooks/round-trip.ipynb\n/notebooks/made-in-browser/\n/notebooks/.ipynb_checkpoints/\n")
    status_before = git("status", "--porcelain", "--untracked-files=all", cwd=workspace)

    trip = notebook_round_trip(
        demo_up.url,
        kernel_label=KERNEL_LABEL,
        screenshot=ARTIFACTS / "jupyterlab-round-trip.png",
        directory="notebooks",
        rename_to="round-trip.ipynb",
        new_folder="made-in-browser",
    )

    owner = os.stat(workspace)
    check_on_host(trip, lab_root=root, uid=owner.st_uid, gid=owner.st_gid)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=workspace) == status_before, (
        "the browser changed nothing else in the checkout"
    )
