"""The devcontainer and GPUs on the real engine: `devcontainer up` (npm @devcontainers/cli, no features) starts
the demo environment from the generated devcontainer.json, and `nbenv up`/`nbenv run` of a GPU spec on this
engine (no NVIDIA runtime) fail with one line and leave nothing running.

Both work in a copy of the session's workspace (same image prefix, so the images are the session's), so the
shared checkout stays clean; the editor's compose project gets its own name (COMPOSE_PROJECT_NAME, which the
devcontainer CLI and compose honour), so it never meets `demo_up`'s container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import GIT_ENV, SESSION, commit_all, docker, free_port, nbenv, nbenv_bin, project
from tests.unit.test_devcontainer import devcontainer_bin

pytestmark = pytest.mark.e2e

GPU_SPEC = """\
spec_version = 1
name = "gpu-analysis"
description = "The base environment on a GPU"
extends = "base"

[resources]
gpus = 1
"""
NO_GPU_LINE = (
    "environments/gpu-analysis.toml: resources.gpus: this Docker engine cannot give containers a GPU "
    "(no NVIDIA runtime)"
)


def chown_tree(root: Path) -> None:
    if os.geteuid() == 0:
        for path in [root, *root.rglob("*")]:
            os.chown(path, 1000, 100, follow_symlinks=False)


@pytest.fixture(scope="module")
def editor_workspace(e2e_workspace: Path, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's workspace with a GPU spec and a free Jupyter port, committed, owned by UID 1000."""
    root = tmp_path_factory.mktemp("editor") / "repo"
    shutil.copytree(e2e_workspace, root, symlinks=True, ignore=shutil.ignore_patterns(".nbenv"))
    (root / "environments/gpu-analysis.toml").write_text(GPU_SPEC)
    spec = root / "environments/traffic-analysis.toml"
    spec.write_text(spec.read_text().replace("port = 8888", f"port = {free_port()}"))
    for args in (("generate",), ("devcontainer", "traffic-analysis")):
        result = nbenv(*args, cwd=root)
        assert result.returncode == 0, result.stderr
    commit_all(root, "editor workspace")
    chown_tree(root)
    return root


def containers(label: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()


def test_gpu_spec_on_an_engine_without_nvidia_is_one_line(editor_workspace: Path) -> None:
    compose_project = project("gpu-analysis")
    try:
        result = nbenv("up", "gpu-analysis", "--port", str(free_port()), cwd=editor_workspace)
        assert result.returncode == 9, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert lines[-2:] == [
            NO_GPU_LINE,
            "  hint: install the NVIDIA Container Toolkit on the host and restart Docker "
            "(`nvidia-ctk runtime configure --runtime=docker`), or remove `gpus` from [resources]",
        ], result.stderr[-3000:]
        assert "could not select device driver" not in result.stderr
        assert containers(f"com.docker.compose.project={compose_project}") == []  # nothing left running
        notebook = editor_workspace / "notebooks" / "gpu-check.ipynb"
        notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        chown_tree(notebook.parent)
        ran = nbenv("run", "gpu-analysis", str(notebook), cwd=editor_workspace)
        assert ran.returncode == 9, ran.stderr[-3000:]
        assert ran.stderr.strip().splitlines()[-2] == NO_GPU_LINE, ran.stderr[-3000:]
        assert containers("nbenv.environment=gpu-analysis") == []
    finally:
        for container in containers(f"com.docker.compose.project={compose_project}"):
            docker("rm", "-f", container, check=False)
        docker("network", "rm", f"{compose_project}_default", check=False)


@pytest.fixture
def editor_up(editor_workspace: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """`devcontainer up` of the generated traffic-analysis file; everything of its compose project removed after."""
    cli = devcontainer_bin()
    name = f"nbenv-test-{SESSION}-editor"
    config = editor_workspace / ".devcontainer/traffic-analysis/devcontainer.json"
    base = [cli, "--workspace-folder", str(editor_workspace), "--config", str(config)]
    tools = f"{Path(nbenv_bin()).parent}:{os.environ['PATH']}"  # the initializeCommand runs `nbenv`
    env = {**os.environ, **GIT_ENV, "COMPOSE_PROJECT_NAME": name, "PATH": tools}
    try:
        yield base, env
    finally:
        for container in containers(f"com.docker.compose.project={name}"):
            docker("rm", "-f", container, check=False)
        docker("network", "rm", f"{name}_default", check=False)
        images = docker(
            "images", "-q", "--filter", f"label=devcontainer.local_folder={editor_workspace}", check=False
        ).stdout.split()
        if images:
            docker("rmi", "-f", *images, check=False)


def test_devcontainer_up_starts_the_environment(
    editor_workspace: Path, editor_up: tuple[list[str], dict[str, str]]
) -> None:
    base, env = editor_up
    cli, rest = base[0], base[1:]
    up = subprocess.run([cli, "up", *rest], capture_output=True, text=True, env=env, timeout=1800)
    assert up.returncode == 0, f"devcontainer up:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
    outcome = json.loads(up.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] == "success", outcome
    assert outcome["remoteWorkspaceFolder"] == "/home/jovyan/work"

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, "exec", *rest, *command], capture_output=True, text=True, env=env, timeout=120)

    kernels = run("jupyter", "kernelspec", "list")
    assert kernels.returncode == 0 and "traffic-analysis" in kernels.stdout, kernels.stdout + kernels.stderr
    listed = run("sh", "-c", "ls data/processed/pems | head -1")
    assert listed.returncode == 0 and listed.stdout.strip(), listed.stderr
    denied = run("sh", "-c", "touch data/processed/pems/written-by-editor")
    assert denied.returncode != 0 and "Read-only file system" in denied.stdout + denied.stderr
    assert not (editor_workspace / "data/processed/pems/written-by-editor").exists()
    wrote = run("sh", "-c", "echo saved > notebooks/from-editor.txt && id -u")
    assert wrote.returncode == 0, wrote.stderr
    saved = editor_workspace / "notebooks/from-editor.txt"
    owner = editor_workspace.stat()
    assert (saved.stat().st_uid, saved.read_text()) == (owner.st_uid, "saved\n")

    token = (editor_workspace / ".nbenv/run/traffic-analysis/jupyter_token").read_text().strip()
    spec = (editor_workspace / "environments/traffic-analysis.toml").read_text()
    port = int(spec.split("port = ", 1)[1].split()[0])
    assert _status(f"http://127.0.0.1:{port}/api/status", token) == 200
    assert _status(f"http://127.0.0.1:{port}/api/status", None) == 403


def _status(url: str, token: str | None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    for _ in range(60):
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(1)
    return 0
