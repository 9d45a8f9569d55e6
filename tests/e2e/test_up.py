"""`nbenv up` on a real engine: Jupyter answers, security defaults hold, mounts behave."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PREFIX, Up, docker, free_port, nbenv, project
from tests.e2e.conftest import jupyter_api as get

pytestmark = pytest.mark.e2e


def container_id(up: Up) -> str:
    return up.compose("ps", "-q", "jupyter").stdout.strip()


@pytest.mark.security
def test_up_prints_exactly_one_url_with_a_long_random_token(demo_up: Up) -> None:
    assert demo_up.stdout.splitlines() == [demo_up.url]
    assert re.fullmatch(rf"http://127\.0\.0\.1:{demo_up.port}/lab\?token=[A-Za-z0-9_-]{{43}}", demo_up.url)
    assert "builder:" in demo_up.stderr, "the builder used is named"
    assert "owned by UID" not in demo_up.stderr, "the container runs as the workspace owner: no ownership warning"


@pytest.mark.security
def test_jupyter_needs_the_token(demo_up: Up) -> None:
    base = f"http://127.0.0.1:{demo_up.port}"
    assert get(f"{base}/api/status", demo_up.token)[0] == 200
    assert get(f"{base}/api/status")[0] == 403
    assert get(f"{base}/api/status", "wrong-token")[0] == 403


def test_the_kernel_is_named_after_the_environment(demo_up: Up) -> None:
    status, body = get(f"http://127.0.0.1:{demo_up.port}/api/kernelspecs", demo_up.token)
    specs = json.loads(body)
    assert status == 200
    assert set(specs["kernelspecs"]) == {"traffic-analysis"}
    assert specs["default"] == "traffic-analysis"
    assert specs["kernelspecs"]["traffic-analysis"]["spec"]["display_name"] == "Python (traffic-analysis)"


def test_the_kernel_imports_selected_groups_only(demo_up: Up) -> None:
    """Code runs in the environment's kernel (jupyter execute, the kernel protocol), inside the container."""
    probe = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": source}
            for source in [
                "import sklearn, pandas, pyarrow; print('selected-ok', sklearn.__version__)",
                "import importlib.util as u; print('unselected', [m for m in ('pytest', 'hypothesis') if u.find_spec(m)])",  # noqa: E501
                "import sys, nbenv; print('importable', nbenv.__file__)",
                "import pandas as pd; df = pd.read_parquet('/home/jovyan/work/data/processed/pems');"
                " print('pems-rows', len(df), sorted(df.columns)[:3])",
            ]
        ],
        "metadata": {"kernelspec": {"name": "traffic-analysis", "display_name": "x", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (demo_up.workspace / "notebooks/probe.ipynb").write_text(json.dumps(probe))
    result = demo_up.exec(
        "jupyter",
        "execute",
        "--kernel_name=traffic-analysis",
        "--output=probe-out",
        "/home/jovyan/work/notebooks/probe.ipynb",
    )
    assert result.returncode == 0, result.stderr
    executed = json.loads((demo_up.workspace / "notebooks/probe-out.ipynb").read_text())
    texts = [o.get("text", "") for cell in executed["cells"] for o in cell["outputs"]]
    text = "".join(t if isinstance(t, str) else "".join(t) for t in texts)
    assert "selected-ok" in text
    assert "unselected []" in text, "packages of unselected groups (dev) must be absent"
    assert "importable /home/jovyan/work/nbenv/__init__.py" in text, "the project's package imports from the mount"
    rows = re.search(r"pems-rows (\d+) \['avg_occupancy', 'avg_speed', 'direction'\]", text)
    assert rows and int(rows.group(1)) > 1000, "the mounted Parquet data reads in the kernel"


def test_packages_have_bytecode_and_no_test_suites_in_both_layers(demo_up: Up) -> None:
    """Bytecode is compiled at build time (the venv is read-only at run time), after test suites are dropped."""
    script = (
        "import importlib.util as u, pathlib, sys\n"
        "for name in ('pandas', 'IPython', 'sklearn'):\n"
        "    spec = u.find_spec(name); init = pathlib.Path(spec.origin)\n"
        "    cached = pathlib.Path(u.cache_from_source(str(init)))\n"
        "    tests = [p for p in init.parent.rglob('tests') if p.is_dir()]\n"
        "    print(name, init.parent.parent, cached.is_file(), len(tests))\n"
    )
    lines = demo_up.exec("python", "-c", script).stdout.split("\n")
    found = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    assert found["pandas"] == ["/opt/venv/lib/python3.11/site-packages", "True", "0"], found
    assert found["IPython"][1:] == ["True", "0"], found
    assert found["sklearn"] == ["/opt/nbenv/layers/traffic-analysis", "True", "0"], found  # the child's layer


def test_a_child_build_reuses_its_parents_tools_stage(demo_up: Up) -> None:
    """traffic-analysis's Dockerfile opens with base's tools stage (venv, uv): a cache hit, not a second fetch."""
    child_build = demo_up.stderr.split("traffic-analysis: building", 1)[1]
    assert "fetch_uv.py" in demo_up.stderr.split("base: built")[0]
    uv_step = re.search(r"#(\d+) \[tools \d+/\d+\] RUN (?:--mount=\S+\s+)*echo", child_build)
    assert uv_step, child_build[:3000]
    assert f"#{uv_step.group(1)} CACHED" in child_build


@pytest.mark.security
def test_the_container_runs_as_the_workspace_owner_with_no_capabilities(demo_up: Up) -> None:
    """The e2e workspace belongs to 1000:100 and root runs nbenv: the container runs as that owner,
    with no capability at all (not just none effective) and a read-only root filesystem."""
    owner = demo_up.workspace.stat()
    assert demo_up.exec("id", "-u").stdout.strip() == str(owner.st_uid) == "1000"
    assert demo_up.exec("id", "-g").stdout.strip() == str(owner.st_gid) == "100"
    status = demo_up.exec("cat", "/proc/1/status").stdout + demo_up.exec("cat", "/proc/self/status").stdout
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert len(re.findall(rf"^{key}:\s+0{{16}}$", status, re.M)) == 2, f"{key}: cap_drop: ALL"
    assert len(re.findall(r"^NoNewPrivs:\s+1$", status, re.M)) == 2
    inspect = json.loads(docker("inspect", container_id(demo_up)).stdout)[0]
    assert inspect["Config"]["User"] == "1000:100"
    assert inspect["HostConfig"]["Init"] is True and inspect["HostConfig"]["ReadonlyRootfs"] is True
    for path in ("/etc/nbenv-probe", "/opt/venv/nbenv-probe", "/opt/nbenv/jupyter/config/nbenv-probe", "/usr/probe"):
        denied = demo_up.exec("touch", path)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, (path, denied.stderr)
    home = demo_up.exec("stat", "-c", "%u %a", "/home/jovyan").stdout.split()
    assert home == ["1000", "700"], "HOME is a tmpfs of the run UID"


@pytest.mark.security
def test_data_is_read_only_and_source_is_read_write(demo_up: Up) -> None:
    for target in ("/home/jovyan/work/data/processed/pems", "/home/jovyan/work/data/processed/climate"):
        assert demo_up.exec("sh", "-c", f"ls {target}/*.parquet").returncode == 0
        denied = demo_up.exec("touch", f"{target}/written-by-container")
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert demo_up.exec("sh", "-c", "echo hello > /home/jovyan/work/notebooks/from-container.txt").returncode == 0
    assert (demo_up.workspace / "notebooks/from-container.txt").read_text() == "hello\n"
    assert not (demo_up.workspace / "data/processed/pems/written-by-container").exists()


@pytest.mark.security
def test_the_token_is_nowhere_but_its_file(demo_up: Up) -> None:
    inspect = docker("inspect", container_id(demo_up)).stdout
    assert demo_up.token not in inspect
    config = demo_up.compose("config")
    assert config.returncode == 0 and demo_up.token not in config.stdout
    for path in (demo_up.workspace / "docker").rglob("*"):
        if path.is_file():
            assert demo_up.token not in path.read_text(), path
    logs = demo_up.compose("logs").stdout
    assert demo_up.token not in logs
    assert demo_up.token not in demo_up.stderr
    token_file = demo_up.workspace / ".nbenv/run/traffic-analysis/jupyter_token"
    assert token_file.read_text() == demo_up.token and (token_file.stat().st_mode & 0o077) == 0


def test_a_second_up_prints_the_same_url_and_changes_nothing(demo_up: Up) -> None:
    before = container_id(demo_up)
    started = json.loads(docker("inspect", before).stdout)[0]["State"]["StartedAt"]
    again = nbenv("up", "traffic-analysis", "--port", str(demo_up.port), cwd=demo_up.workspace)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == demo_up.url
    assert "up to date" in again.stderr and "already running" in again.stderr
    assert container_id(demo_up) == before
    assert json.loads(docker("inspect", before).stdout)[0]["State"]["StartedAt"] == started


def test_editing_source_or_notebooks_never_rebuilds(demo_up: Up) -> None:
    (demo_up.workspace / "notebooks/new.ipynb").write_text("{}")
    (demo_up.workspace / "nbenv").mkdir(exist_ok=True)
    (demo_up.workspace / "nbenv/edited.py").write_text("X = 1\n")
    result = nbenv("image", "build", "traffic-analysis", cwd=demo_up.workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("up to date") == 1 and "built" not in result.stdout


@pytest.mark.fault
def test_a_busy_port_is_one_clear_error(demo_up: Up) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = nbenv("up", "base", "--port", str(port), cwd=demo_up.workspace)
    assert result.returncode == 9
    assert result.stderr.splitlines()[-2:] == [
        f"port {port} on 127.0.0.1 is already in use",
        f"  hint: choose another: `nbenv up base --port {port + 1}`",
    ]
    assert docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project('base')}").stdout.strip() == ""


@pytest.mark.fault
def test_no_engine_is_one_clear_line(e2e_workspace: Path) -> None:
    result = nbenv("up", "traffic-analysis", cwd=e2e_workspace, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 6
    lines = result.stderr.splitlines()
    assert lines[0].startswith("no Docker engine answers:") and lines[1].startswith("  hint: start Docker")
    assert len(lines) == 2 and "Traceback" not in result.stderr


def test_down_then_up_again_at_once_reuses_the_port(e2e_workspace: Path, base_image: str) -> None:
    """Connections of the stopped container linger in TIME_WAIT: they must not block the port."""
    port = free_port()
    try:
        for _ in range(2):
            result = nbenv("up", "base", "--port", str(port), cwd=e2e_workspace)
            assert result.returncode == 0, result.stderr[-2000:]
            assert nbenv("down", "base", cwd=e2e_workspace).returncode == 0
            assert project_containers("base") == [], "down leaves no container"
    finally:
        nbenv("down", "base", cwd=e2e_workspace)


def project_containers(name: str) -> list[str]:
    found = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project(name)}")
    return found.stdout.split()


@pytest.mark.fault
@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_a_timeout_shows_the_last_log_lines_and_fails(e2e_workspace: Path, base_image: str) -> None:
    try:
        result = nbenv("up", "base", "--port", str(free_port()), "--timeout", "0.2", cwd=e2e_workspace)
        assert result.returncode == 9
        lines = result.stderr.splitlines()
        assert re.fullmatch(rf"{project('base')}: Jupyter did not answer on 127\.0\.0\.1:\d+ within 0\.2 s", lines[-2])
        assert lines[-1] == "  hint: its last log lines are above; a slow machine may need `--timeout` (in seconds)"
        assert any(line.startswith("  ") and "jupyter" in line.lower() for line in lines[:-2]), "log lines shown"
        assert project_containers("base") == [], "the failed `up` removed the container it started itself"
    finally:
        nbenv("down", "base", cwd=e2e_workspace)
    assert project_containers("base") == []


@pytest.mark.fault
@pytest.mark.hostile("up --port on a running environment")
def test_up_on_another_port_restarts_there_and_old_projects_are_found(
    e2e_workspace: Path, base_image: str, tmp_path: Path
) -> None:
    """Issue 13 item 14: `up --port P` on an environment running on another port printed a URL on P where
    nothing answered; now it restarts there. Item 11: a container an older nbenv started under the legacy
    project name (`PREFIX-NAME`, shared by prefixes like `team.a`/`team-a`) is found by `ps` and removed by
    `down`, while another workspace's container of that same legacy project is left alone."""
    from nbenv.plan import legacy_compose_project
    from nbenv.running.jupyter import status_code
    from nbenv.spec.models import RepoConfig

    first, second = free_port(), free_port()
    legacy = legacy_compose_project(RepoConfig(image_prefix=PREFIX), "base")
    other = tmp_path / "other-workspace" / "compose.yaml"
    other.parent.mkdir()
    other.write_text(f"services:\n  sidecar:\n    image: {base_image}\n    command: [sleep, '600']\n    init: true\n")
    try:
        assert nbenv("up", "base", "--port", str(first), cwd=e2e_workspace).returncode == 0
        moved = nbenv("up", "base", "--port", str(second), cwd=e2e_workspace)
        assert moved.returncode == 0, moved.stderr[-2000:]
        assert f"base: was running on port {first}; restarting it on {second}" in moved.stderr
        url = moved.stdout.strip()
        token = url.rsplit("token=", 1)[-1]
        assert url.startswith(f"http://127.0.0.1:{second}/lab?token=")
        assert get(f"http://127.0.0.1:{second}/api/status", token)[0] == 200, "the printed URL's port answers"
        assert status_code(first, None, host="127.0.0.1") is None, "nothing is left on the old port"
        again = nbenv("up", "base", cwd=e2e_workspace)
        assert again.returncode == 0 and again.stdout.strip() == url, "without --port: where it runs"
        assert "base is already running" in again.stderr
        assert nbenv("down", "base", cwd=e2e_workspace).returncode == 0

        # Another workspace's container under the same legacy project (a service of another name: with the
        # same one, compose itself would replace one by the other), then ours as an older nbenv started it.
        foreign = ["docker", "compose", "-p", legacy, "-f", str(other)]
        started = subprocess.run([*foreign, "up", "-d"], capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
        compose = ["docker", "compose", "-p", legacy, "-f", str(e2e_workspace / "docker/base/compose.yaml")]
        compose += ["--env-file", str(e2e_workspace / ".nbenv/run/base/compose.env")]
        started = subprocess.run([*compose, "up", "-d"], capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
        listed = nbenv("ps", cwd=e2e_workspace)
        assert len([line for line in listed.stdout.splitlines() if line.split()[0] == "base"]) == 1, listed.stdout
        down = nbenv("down", "base", cwd=e2e_workspace)
        assert down.returncode == 0, down.stderr
        assert f"compose project {legacy}" in down.stderr
        left = docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={legacy}")
        theirs = subprocess.run([*foreign, "ps", "-q"], capture_output=True, text=True).stdout.split()
        assert len(theirs) == 1 and left.stdout.split() == theirs, "only the other workspace's is left"
    finally:
        nbenv("down", "base", cwd=e2e_workspace)
        subprocess.run(["docker", "compose", "-p", legacy, "-f", str(other), "down", "-t", "0"], capture_output=True)
        subprocess.run(
            ["docker", "compose", "-p", legacy, "-f", str(e2e_workspace / "docker/base/compose.yaml"), "down"],
            capture_output=True,
        )
    assert project_containers("base") == []
