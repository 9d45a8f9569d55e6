"""Jupyter is always there (issue 15, item 5), on the real engine: a project whose groups hold no Jupyter
at all, or only ipykernel, gets nbenv's JupyterLab with the project's environment as its only kernel.

The project is tests/fixtures/server-env (a real Poetry 2 lock): group `lib` holds tabulate, group
`kernel` ipykernel. The two images share the tools and server stages (one server build per session).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import BASE_TAG, PREFIX, commit_all, docker, free_port, git, nbenv, project
from tests.e2e.conftest import jupyter_api as call

pytestmark = pytest.mark.e2e

FIXTURE = REPO / "tests" / "fixtures" / "server-env"
SPECS = {
    "plain": '"Groups without any Jupyter"\ngroups = ["lib"]',
    "kernel": '"Groups with ipykernel only"\ngroups = ["lib", "kernel"]',
}
# Runs in the kernel: the project's own package (mounted source), its group's package, and no Jupyter
# server in the kernel's environment (the server lives in /opt/nbenv/server).
PROBE = (
    "import importlib.util, sys, tabulate, tinyproj\n"
    "print('probe', tinyproj.GREETING, tabulate.__version__, sys.prefix,"
    " importlib.util.find_spec('jupyterlab') is None, importlib.util.find_spec('nbclient') is None)"
)

EXPECTED = ["probe", "hello-from-tinyproj", "0.9.0", "/opt/venv", "True", "True"]


@pytest.fixture(scope="module")
def tinyproj(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("server-env") / "tinyproj"
    root.mkdir()
    shutil.copy2(FIXTURE / "poetry.lock", root / "poetry.lock")
    pyproject = (FIXTURE / "pyproject.toml").read_text()
    pyproject = pyproject.replace(
        'image_prefix = "nbenv-e2e-server"', f'image_prefix = "{PREFIX}"\ndefault_base_image = "{BASE_TAG}"'
    )
    assert BASE_TAG in pyproject
    (root / "pyproject.toml").write_text(pyproject)
    (root / "tinyproj").mkdir()
    (root / "tinyproj/__init__.py").write_text('GREETING = "hello-from-tinyproj"\n')
    (root / "environments").mkdir()
    for name, body in SPECS.items():
        (root / f"environments/{name}.toml").write_text(
            f'spec_version = 1\nname = "{name}"\ndescription = {body}\nimportable = true\n'
        )
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": PROBE}]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks").mkdir()
    (root / "notebooks/probe.ipynb").write_text(json.dumps(notebook))
    git("init", "-q", cwd=root)
    generated = nbenv("generate", cwd=root)
    assert generated.returncode == 0, generated.stderr
    commit_all(root, "tinyproj")
    if os.geteuid() == 0:  # the container's user (UID 1000) writes the executed notebook
        for path in [root, *root.rglob("*")]:
            os.chown(path, 1000, 100)
    yield root
    for name in SPECS:
        nbenv("down", name, cwd=root, timeout=120)


def processes(container: str) -> list[str]:
    """The command lines of the processes in a container."""
    return [line.split(None, 1)[1] for line in docker("top", container, "-eo", "pid,args").stdout.splitlines()[1:]]


def probe_output(root: Path, name: str) -> str:
    result = nbenv("run", name, "notebooks/probe.ipynb", "-o", f"notebooks/{name}.out.ipynb", cwd=root)
    assert result.returncode == 0, result.stderr[-4000:]
    executed = json.loads((root / f"notebooks/{name}.out.ipynb").read_text())
    return "".join(text for out in executed["cells"][0]["outputs"] for text in out.get("text", []))


@pytest.mark.security
def test_a_project_without_jupyter_gets_nbenvs_jupyterlab_with_its_own_kernel(tinyproj: Path) -> None:
    """`up` of an environment whose groups hold only tabulate: JupyterLab answers (with the token only),
    offers exactly the project's kernel, starts it, and `nbenv run` executes in it."""
    port = free_port()
    up = nbenv("up", "plain", "--port", str(port), cwd=tinyproj)
    assert up.returncode == 0, up.stderr[-4000:]
    token = up.stdout.strip().rsplit("token=", 1)[-1]
    base = f"http://127.0.0.1:{port}"
    assert call(f"{base}/api/status", token)[0] == 200
    assert call(f"{base}/api/status")[0] == 403
    status, body = call(f"{base}/api/kernelspecs", token)
    specs = json.loads(body)
    assert status == 200 and set(specs["kernelspecs"]) == {"plain"} and specs["default"] == "plain"
    assert specs["kernelspecs"]["plain"]["spec"]["argv"][0] == "/opt/venv/bin/python"
    # The labconfig (announcements off) reaches nbenv's server.
    status, page = call(f"{base}/lab", token)
    config = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert status == 200 and config is not None
    disabled = json.loads(html.unescape(config.group(1))).get("disabledExtensions", [])
    assert "@jupyterlab/apputils-extension:announcements" in disabled
    # The server (from /opt/nbenv/server) starts the project's kernel (/opt/venv's python).
    status, body = call(f"{base}/api/kernels", token, "POST", {"name": "plain"})
    assert status == 201, body
    kernel = json.loads(body)["id"]
    container = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project('plain')}").stdout.strip()
    deadline = time.monotonic() + 90
    while not any("ipykernel_launcher" in line for line in processes(container)):
        assert time.monotonic() < deadline, f"no kernel process: {processes(container)}"
        time.sleep(0.5)
    commands = processes(container)
    assert any(line.split()[:2] == ["/opt/venv/bin/python", "-Xfrozen_modules=off"] for line in commands), commands
    assert any("/opt/nbenv/server/bin/jupyter-lab" in line for line in commands), commands
    assert call(f"{base}/api/kernels/{kernel}", token)[0] == 200
    # The server venv holds no kernel of its own (no ipykernel, IPython or jedi: nbenv.server_env).
    check = "import importlib.util as u; print([m for m in ('ipykernel', 'IPython', 'jedi') if u.find_spec(m)])"
    assert docker("exec", container, "/opt/nbenv/server/bin/python", "-c", check).stdout.strip() == "[]"
    assert call(f"{base}/api/kernels/{kernel}", token, "DELETE")[0] == 204
    # `nbenv run` (its driver runs on the server's python): the kernel is the project's environment.
    assert probe_output(tinyproj, "plain").split() == EXPECTED
    assert git("status", "--porcelain", "--untracked-files=no", cwd=tinyproj) == ""


def test_an_ipykernel_only_project_runs_in_its_own_kernel(tinyproj: Path) -> None:
    """Groups with ipykernel (the project's pins) and no server: nbenv's server, the project's ipykernel."""
    assert probe_output(tinyproj, "kernel").split() == EXPECTED
