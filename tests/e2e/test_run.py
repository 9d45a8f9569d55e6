"""`nbenv run` on a real engine: the demo notebook over the real Parquet data, parameters,
failures, timeouts, Ctrl-C, and the container's confinement."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pytest

from tests.e2e.conftest import PREFIX, docker, nbenv, nbenv_bin, project
from tests.e2e.faults import interrupt, reap

pytestmark = pytest.mark.e2e
PROJECT = project("traffic-analysis")


@pytest.fixture
def scratch(run_ready_workspace: Path) -> Iterator[Path]:
    """A directory for this test's notebooks and outputs inside the workspace (so inside the source
    mount), removed afterwards."""
    path = run_ready_workspace / "notebooks" / f"scratch-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    if os.geteuid() == 0:  # like the rest of the workspace: writable by the container's user
        os.chown(path, 1000, 100)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    cells = [{"source": parameters, "tags": ["parameters"]}] if parameters is not None else []
    cells += [{"source": source, "tags": []} for source in sources]
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "execution_count": None,
                        "id": f"c{index}",
                        "metadata": {"tags": c["tags"]},
                        "outputs": [],
                        "source": c["source"],
                    }
                    for index, c in enumerate(cells)
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    return path


def text_of(cell: dict[str, Any]) -> str:
    parts = []
    for output in cell.get("outputs", []):
        text = output.get("text") or output.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def tagged(nb: dict[str, Any], tag: str) -> dict[str, Any]:
    return next(c for c in nb["cells"] if tag in c["metadata"].get("tags", []))


def headless_containers() -> list[str]:
    found = docker("ps", "-aq", "--filter", "label=nbenv.run=headless", "--filter", f"label=nbenv.project={PROJECT}")
    return found.stdout.split()


def expected_summary(root: Path, *, district: int | None, top_n: int) -> list[tuple[Any, ...]]:
    """The notebook's summary table, computed independently with pyarrow from the same Parquet files:
    (district, freeway, direction, stations, mean flow, mean speed, peak hour) of the busiest rows."""
    table = ds.dataset(root / "data/processed/pems", format="parquet").to_table(
        columns=["timestamp", "station", "district", "freeway", "direction", "total_flow", "avg_speed"]
    )
    if district is not None:
        table = table.filter(pc.equal(table["district"], district))
    keys = ["district", "freeway", "direction"]
    totals = table.group_by(keys).aggregate(
        [("station", "count_distinct"), ("total_flow", "mean"), ("avg_speed", "mean")]
    )
    table = table.append_column("hour", pc.hour(table["timestamp"]))
    hourly = table.group_by([*keys, "hour"]).aggregate([("total_flow", "mean")]).to_pylist()
    peak: dict[tuple[Any, ...], tuple[float, int]] = {}
    for row in hourly:
        key, candidate = tuple(row[k] for k in keys), (row["total_flow_mean"], -row["hour"])
        peak[key] = max(peak.get(key, candidate), candidate)
    rows = [
        (
            r["district"],
            r["freeway"],
            r["direction"],
            r["station_count_distinct"],
            r["total_flow_mean"],
            r["avg_speed_mean"],
            -peak[(r["district"], r["freeway"], r["direction"])][1],
        )
        for r in totals.to_pylist()
    ]
    rows.sort(key=lambda r: (-r[4], r[0], r[1], r[2]))
    return rows[:top_n]


def parse_summary(text: str) -> list[tuple[str, ...]]:
    """pandas' text of the summary table: a header line, then `index district freeway ...` rows."""
    lines = text.strip().splitlines()
    assert lines[0].split() == [
        "district",
        "freeway",
        "direction",
        "stations",
        "mean_flow",
        "mean_speed",
        "peak_hour",
    ]
    return [tuple(line.split()[1:]) for line in lines[1:]]


def assert_summary_matches(text: str, expected: list[tuple[Any, ...]]) -> None:
    shown = parse_summary(text)
    assert len(shown) == len(expected)
    for row, want in zip(shown, expected, strict=True):
        assert (int(row[0]), int(row[1]), row[2], int(row[3])) == want[:4]
        assert float(row[4]) == pytest.approx(want[4], abs=0.051)
        if want[5] is None:
            assert row[5] == "NaN"
        else:
            assert float(row[5]) == pytest.approx(want[5], abs=0.051)
        assert int(row[6]) == want[6]


@pytest.fixture(scope="module")
def demo_run(run_ready_workspace: Path) -> Iterator[subprocess.CompletedProcess[str]]:
    """`nbenv run traffic-analysis notebooks/traffic.ipynb`, once for this module. Bytecode a Jupyter
    kernel of another test (`up`, which does not suppress it) left in the shared workspace goes first."""
    for cache in list(run_ready_workspace.rglob("__pycache__")):
        shutil.rmtree(cache)
    result = nbenv("run", "traffic-analysis", "notebooks/traffic.ipynb", cwd=run_ready_workspace, timeout=600)
    yield result
    (run_ready_workspace / "notebooks/traffic.out.ipynb").unlink(missing_ok=True)


def test_the_demo_notebook_runs_over_the_real_data(
    demo_run: subprocess.CompletedProcess[str], run_ready_workspace: Path
) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-4000:]
    assert demo_run.stdout == "notebooks/traffic.out.ipynb\n", "stdout carries only the output path"
    assert re.search(
        rf"^running notebooks/traffic.ipynb in {re.escape(PREFIX)}/traffic-analysis:ck-[0-9a-f]{{12}}$",
        demo_run.stderr,
        re.M,
    )
    assert re.search(r"^  \[7/7\] cell 11: climate = ", demo_run.stderr, re.M), "per-cell progress"
    output = run_ready_workspace / "notebooks/traffic.out.ipynb"
    nb = json.loads(output.read_text())
    source = json.loads((run_ready_workspace / "notebooks/traffic.ipynb").read_text())
    assert (nb["nbformat"], nb["nbformat_minor"]) == (source["nbformat"], source["nbformat_minor"])
    assert [c["id"] for c in nb["cells"]] == [c["id"] for c in source["cells"]], "no cell injected without -p"
    assert all(c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code")
    assert not any(o["output_type"] == "error" for c in nb["cells"] for o in c.get("outputs", []))
    assert_summary_matches(
        text_of(tagged(nb, "summary")), expected_summary(run_ready_workspace, district=None, top_n=10)
    )
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1, "one chart, as a PNG"
    weather = text_of(tagged(nb, "weather"))
    assert {"clear", "rain", "fog"} <= set(weather.split())
    if os.geteuid() == 0:
        assert output.stat().st_uid == (run_ready_workspace / "notebooks").stat().st_uid, "not root-owned"
    assert not list(run_ready_workspace.rglob("__pycache__")), "no bytecode written into the source tree"
    assert headless_containers() == [], "the container is removed"


def normalized(path: Path) -> dict[str, Any]:
    nb: dict[str, Any] = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell["metadata"].pop("execution", None)
    return nb


def test_two_runs_give_identical_outputs(
    demo_run: subprocess.CompletedProcess[str], run_ready_workspace: Path, scratch: Path
) -> None:
    """The issue asks for two fresh builds of the same commit; building twice is slow, so this runs
    the same image twice. Compared: the whole executed notebook (every cell's source, outputs,
    execution counts, the PNG's bytes, the notebook metadata) except each cell's
    `metadata.execution`, which holds nbclient's timestamps."""
    assert demo_run.returncode == 0
    again = nbenv(
        "run",
        "traffic-analysis",
        "notebooks/traffic.ipynb",
        "-o",
        str(scratch / "again.ipynb"),
        "--no-pull",
        cwd=run_ready_workspace,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.stdout.strip() == str(scratch / "again.ipynb")
    first = normalized(run_ready_workspace / "notebooks/traffic.out.ipynb")
    assert normalized(scratch / "again.ipynb") == first
    assert "up to date" in again.stderr, "the image was not rebuilt"


def _image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def test_two_fresh_builds_of_the_same_commit_give_identical_outputs(
    demo_run: subprocess.CompletedProcess[str], run_ready_workspace: Path, scratch: Path
) -> None:
    """The session's images are rebuilt from scratch (`--no-cache`: every layer again, same commit),
    the notebook runs in the new image, and the executed notebook equals the first one except for
    nbclient's per-cell timestamps. The session's original images are put back afterwards, so the
    tests that follow see what they saw before."""
    assert demo_run.returncode == 0
    names = ("base", "traffic-analysis")
    original = {name: _image_id(f"{PREFIX}/{name}:latest") for name in names}
    tags = {
        name: json.loads(docker("image", "inspect", "--format", "{{json .RepoTags}}", image).stdout)
        for name, image in original.items()
    }
    keep = {name: f"{PREFIX}/keep-{name}:original" for name in names}  # so the rebuild removes nothing
    for name in names:
        docker("tag", original[name], keep[name])
    try:
        fresh = nbenv("image", "build", "traffic-analysis", "--no-cache", cwd=run_ready_workspace, timeout=1800)
        assert fresh.returncode == 0, fresh.stderr[-4000:]
        rebuilt = {name: _image_id(f"{PREFIX}/{name}:latest") for name in names}
        assert all(rebuilt[name] != original[name] for name in names), "both images were built again"
        again = nbenv(
            "run",
            "traffic-analysis",
            "notebooks/traffic.ipynb",
            "-o",
            str(scratch / "fresh.ipynb"),
            "--no-pull",
            "--no-build",
            cwd=run_ready_workspace,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr[-4000:]
        assert normalized(scratch / "fresh.ipynb") == normalized(run_ready_workspace / "notebooks/traffic.out.ipynb")
    finally:
        current = {name: _image_id(f"{PREFIX}/{name}:latest") for name in names}
        for name in names:
            for tag in tags[name]:
                docker("tag", original[name], tag, check=False)
            docker("rmi", keep[name], check=False)
            if current[name] and current[name] != original[name]:
                docker("rmi", current[name], check=False)


def test_parameters_override_the_defaults(run_ready_workspace: Path, scratch: Path) -> None:
    output = scratch / "district-4.ipynb"
    result = nbenv(
        "run",
        "traffic-analysis",
        "notebooks/traffic.ipynb",
        "-p",
        "district=4",
        "-p",
        "top_n=3",
        "-o",
        str(output),
        "--no-pull",
        cwd=run_ready_workspace,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    nb = json.loads(output.read_text())
    ids = [c["id"] for c in nb["cells"]]
    assert ids[ids.index("parameters") + 1] == "injected-parameters"
    injected = tagged(nb, "injected-parameters")
    assert "".join(injected["source"]) == "# Parameters\ndistrict = 4\ntop_n = 3"
    summary = text_of(tagged(nb, "summary"))
    assert_summary_matches(summary, expected_summary(run_ready_workspace, district=4, top_n=3))
    assert {row[0] for row in parse_summary(summary)} == {"4"}


def test_a_failing_cell_is_one_line_and_the_partial_notebook_is_written(
    run_ready_workspace: Path, scratch: Path
) -> None:
    notebook = write_notebook(
        scratch / "fail.ipynb",
        "print('before the failure')",
        "import pandas as pd\npd.read_parquet('../../data/processed/pems').loc[:, 'no_such_column']",
        "print('never')",
    )
    result = nbenv("run", "traffic-analysis", str(notebook), "--no-pull", cwd=run_ready_workspace, timeout=600)
    where = notebook.relative_to(run_ready_workspace).as_posix()
    output = scratch / "fail.out.ipynb"
    assert result.returncode == 9, result.stderr[-4000:]
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"  hint: the partially executed notebook is in {output}, with the error and its traceback"
    )
    line = result.stderr.splitlines()[-2]
    assert line.startswith(f"{where}: cell 2 (`import pandas as pd`) failed: KeyError: ")
    assert "no_such_column" in line and "Traceback" not in result.stderr
    nb = json.loads(output.read_text())
    assert text_of(nb["cells"][0]) == "before the failure\n"
    assert [o["output_type"] for o in nb["cells"][1]["outputs"]] == ["error"]
    assert nb["cells"][2]["outputs"] == [] and nb["cells"][2]["execution_count"] is None
    assert headless_containers() == []


@pytest.mark.fault
def test_a_successful_run_with_joblib_workers_prints_no_traceback(run_ready_workspace: Path, scratch: Path) -> None:
    """Issue 15: jupyter_client's shutdown interrupts the kernel's whole process group, and loky's idle
    workers printed KeyboardInterrupt tracebacks into a run that succeeded. The driver now asks the
    kernel to exit, and holds back what the kernel writes from its shutdown on unless the run failed."""
    notebook = write_notebook(
        scratch / "workers.ipynb",
        "from joblib import Parallel, delayed\nimport math\n"
        "print(sum(Parallel(n_jobs=2, backend='loky')(delayed(math.sqrt)(i) for i in range(100))))",
    )
    result = nbenv("run", "traffic-analysis", str(notebook), "--no-pull", cwd=run_ready_workspace, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "[1/1] cell 1: from joblib import Parallel, delayed" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "KeyboardInterrupt" not in result.stdout + result.stderr, result.stderr
    executed = json.loads((scratch / "workers.out.ipynb").read_text())
    assert float(text_of(executed["cells"][0])) == pytest.approx(sum(i**0.5 for i in range(100)))
    assert headless_containers() == []


@pytest.mark.fault
def test_a_timeout_is_one_clear_line(run_ready_workspace: Path, scratch: Path) -> None:
    notebook = write_notebook(scratch / "slow.ipynb", "import time", "time.sleep(120)")
    started = time.monotonic()
    result = nbenv("run", "traffic-analysis", str(notebook), "--no-pull", "--timeout", "3", cwd=run_ready_workspace)
    assert time.monotonic() - started < 60
    where = notebook.relative_to(run_ready_workspace).as_posix()
    assert result.returncode == 9
    assert result.stderr.splitlines()[-2:] == [
        f"{where}: cell 2 (`time.sleep(120)`) did not finish within --timeout 3 s",
        f"  hint: the partially executed notebook is in {scratch / 'slow.out.ipynb'}",
    ]
    assert headless_containers() == []


@pytest.mark.security
def test_the_container_is_confined(run_ready_workspace: Path, scratch: Path) -> None:
    """The workspace owner (UID 1000), no capabilities, a read-only root filesystem, no privilege
    escalation, loopback only, data read-only, source writable."""
    notebook = write_notebook(
        scratch / "probe.ipynb",
        "import os, pathlib\nprint('uid', os.getuid(), os.getgid())",
        "status = pathlib.Path('/proc/self/status').read_text()\n"
        "print([l.split()[1] for l in status.splitlines() if l.startswith(('CapEff', 'NoNewPrivs'))])",
        "print('net', sorted(os.listdir('/sys/class/net')))",
        "try:\n    open('../../data/processed/pems/x', 'w')\nexcept OSError as e:\n    print('data', e.strerror)",
        "try:\n    open('/etc/x', 'w')\nexcept OSError as e:\n    print('etc', e.strerror)",
        "print('home', os.stat(os.environ['HOME']).st_uid, oct(os.stat(os.environ['HOME']).st_mode & 0o777))",
        "pathlib.Path('written.txt').write_text('ok')\nprint('cwd', os.getcwd())",
    )
    result = nbenv("run", "traffic-analysis", str(notebook), "--no-pull", cwd=run_ready_workspace, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    text = "".join(text_of(c) for c in json.loads((scratch / "probe.out.ipynb").read_text())["cells"])
    assert "uid 1000 100" in text
    assert "['0000000000000000', '1']" in text
    assert "net ['lo']" in text
    assert "data Read-only file system" in text
    assert "etc Read-only file system" in text, "a read-only root filesystem, as in `up`"
    assert "home 1000 0o700" in text, "HOME is a tmpfs of the run UID"
    assert f"cwd /home/jovyan/work/notebooks/{scratch.name}" in text, "the kernel runs in the notebook's directory"
    assert (scratch / "written.txt").read_text() == "ok"


@pytest.mark.badinput
def test_user_errors_are_one_line_and_start_no_container(run_ready_workspace: Path, scratch: Path) -> None:
    no_engine = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # a Docker call would fail with exit 6
    plain = write_notebook(scratch / "plain.ipynb", "x = 1")
    cases = {
        "-p top_n": (["notebooks/traffic.ipynb", "-p", "top_n"], "-p 'top_n': expected NAME=VALUE"),
        "missing": (["notebooks/nope.ipynb"], "notebooks/nope.ipynb: no such notebook"),
        "untagged": ([str(plain), "-p", "x=2"], "no cell is tagged 'parameters'"),
    }
    for label, (args, message) in cases.items():
        result = nbenv("run", "traffic-analysis", *args, cwd=run_ready_workspace, env=no_engine)
        assert result.returncode == 2, (label, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and message in lines[0] and lines[1].startswith("  hint: "), (label, lines)
        assert result.stdout == "" and "Traceback" not in result.stderr
    assert not list(scratch.glob("*.out.ipynb"))


@pytest.mark.fault
def test_ctrl_c_removes_the_container(run_ready_workspace: Path, scratch: Path) -> None:
    notebook = write_notebook(scratch / "sleepy.ipynb", "import time\ntime.sleep(300)")
    process = subprocess.Popen(
        [nbenv_bin(), "run", "traffic-analysis", str(notebook), "--no-pull"],
        cwd=run_ready_workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not headless_containers() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert headless_containers(), "the run started a container"
        time.sleep(2)  # let the kernel start
        out, _ = interrupt(process, timeout=60)
    finally:
        reap(process)
    assert out == "", "no output path: the run did not finish"
    assert headless_containers() == []
    assert not (scratch / "sleepy.out.ipynb").exists()
