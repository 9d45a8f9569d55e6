"""`nbenv run`'s pure parts: parameters, the injected cell, failing cells, the docker run argv."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from nbenv import inimage
from nbenv.errors import NbenvError, UsageError
from nbenv.plan import Mount
from nbenv.running.headless import DRIVER_SCRIPT, ContainerRun, docker_run_argv, host_mounts
from nbenv.running.notebook import (
    cell_at,
    default_output,
    failing_cell,
    inject_parameters,
    parse_parameters,
    parse_value,
    read_notebook,
)
from nbenv.spec.models import Resources
from tests.conftest import run_cli


def cell(source: str | list[str], *, tags: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": tags} if tags else {},
        "outputs": [],
        "source": source,
        **extra,
    }


def notebook(*cells: dict[str, Any], minor: int = 5) -> dict[str, Any]:
    return {
        "cells": list(cells),
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": minor,
    }


# --- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("True", True),
        ("False", False),
        ("None", None),
        ("'quoted'", "quoted"),
        ('"double"', "double"),
        ("plain words", "plain words"),
        ("true", "true"),  # not Python: kept as a string, like papermill
        ("[1, 2]", "[1, 2]"),  # containers are not parsed (papermill's -p does not either)
        ("", ""),
        ("1 +", "1 +"),
        ("__import__('os')", "__import__('os')"),  # never evaluated
    ],
)
def test_values_parse_as_python_literals_else_stay_strings(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_parameters_are_name_value_pairs_and_a_later_one_wins() -> None:
    assert parse_parameters(["top_n=5", "district=None", "label=a=b", "top_n=7"]) == {
        "top_n": 7,
        "district": None,
        "label": "a=b",
    }


@pytest.mark.badinput
@pytest.mark.parametrize("item", ["top_n", "=5", "2x=1", "class=1", "a b=1", "top-n=1"])
def test_bad_parameter_syntax_is_a_usage_error(item: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_parameters([item])
    assert caught.value.message == f"-p {item!r}: expected NAME=VALUE with NAME a Python identifier"
    assert caught.value.exit_code == 2


# --- injection ----------------------------------------------------------------------------------


def test_the_injected_cell_follows_the_parameters_cell() -> None:
    nb = notebook(
        cell("import x", id="a"),
        cell(["district = None\n", "top_n = 10"], tags=["parameters"], id="p"),
        cell("run()", id="b"),
    )
    out = inject_parameters(nb, {"district": 4, "top_n": 3, "label": "it's"}, where="nb.ipynb")
    assert [c["id"] for c in out["cells"]] == ["a", "p", "injected-parameters", "b"]
    injected = out["cells"][2]
    assert injected == {
        "cell_type": "code",
        "execution_count": None,
        "id": "injected-parameters",
        "metadata": {"tags": ["injected-parameters"]},
        "outputs": [],
        "source": ["# Parameters\n", "district = 4\n", "top_n = 3\n", 'label = "it\'s"'],
    }
    assert (out["nbformat"], out["nbformat_minor"]) == (4, 5)
    assert nb["cells"][2]["id"] == "b", "the input is not modified"


def test_nbformat_4_4_gets_no_cell_ids() -> None:
    nb = notebook(cell("x = 1", tags=["parameters"]), cell("y = 2"), minor=4)
    out = inject_parameters(nb, {"x": 2}, where="nb.ipynb")
    assert (out["nbformat"], out["nbformat_minor"]) == (4, 4)
    assert all("id" not in c for c in out["cells"])
    assert "".join(out["cells"][1]["source"]) == "# Parameters\nx = 2"


def test_missing_ids_in_4_5_are_filled_deterministically() -> None:
    nb = notebook(cell("x = 1", tags=["parameters"]), cell("y = 2", id="kept"))
    out = inject_parameters(nb, {}, where="nb.ipynb")
    assert [c["id"] for c in out["cells"]] == ["nbenv-0", "kept"]
    assert inject_parameters(nb, {}, where="nb.ipynb") == out


def test_only_the_first_parameters_cell_counts_and_earlier_injections_are_replaced() -> None:
    nb = notebook(
        cell("a = 1", tags=["parameters"], id="p1"),
        cell("# Parameters\na = 5", tags=["injected-parameters"], id="injected-parameters"),
        cell("b = 1", tags=["parameters"], id="p2"),
    )
    out = inject_parameters(nb, {"a": 7}, where="nb.ipynb")
    assert [c["id"] for c in out["cells"]] == ["p1", "injected-parameters", "p2"]
    assert "".join(out["cells"][1]["source"]) == "# Parameters\na = 7"


def test_an_id_taken_by_another_cell_is_not_reused() -> None:
    nb = notebook(cell("a = 1", tags=["parameters"], id="p"), cell("x", id="injected-parameters"))
    out = inject_parameters(nb, {"a": 2}, where="nb.ipynb")
    assert [c["id"] for c in out["cells"]] == ["p", "injected-parameters-1", "injected-parameters"]


def test_no_values_means_no_injected_cell() -> None:
    nb = notebook(cell("a = 1", id="a"))
    assert inject_parameters(nb, {}, where="nb.ipynb") == nb


@pytest.mark.badinput
def test_values_without_a_parameters_cell_are_one_line_error() -> None:
    with pytest.raises(UsageError) as caught:
        inject_parameters(notebook(cell("a = 1", id="a")), {"a": 2}, where="notebooks/x.ipynb")
    assert caught.value.message == "notebooks/x.ipynb: -p given, but no cell is tagged 'parameters'"
    assert "\n" not in caught.value.message


def test_reading_a_notebook(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^x.ipynb: no such notebook$"):
        read_notebook(tmp_path / "missing.ipynb", where="x.ipynb")
    (tmp_path / "bad.ipynb").write_text('{\n  "cells": [,]\n}')
    with pytest.raises(NbenvError, match=r"^x.ipynb:2: not a notebook: invalid JSON: "):
        read_notebook(tmp_path / "bad.ipynb", where="x.ipynb")
    (tmp_path / "v3.ipynb").write_text(json.dumps({"cells": [], "nbformat": 3}))
    with pytest.raises(NbenvError, match=r"^x.ipynb: nbformat 3 is not supported"):
        read_notebook(tmp_path / "v3.ipynb", where="x.ipynb")


# --- results ------------------------------------------------------------------------------------


def error(ename: str, evalue: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": ["..."]}


def test_the_failing_cell_is_named_by_position_first_line_and_error() -> None:
    nb = notebook(
        {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
        cell("x = 1", outputs=[{"output_type": "stream", "name": "stdout", "text": "ok\n"}]),
        cell(["\n", "import math\n", "math.sqrt(-1)"], outputs=[error("ValueError", "math domain error\nmore")]),
        cell("never()"),
    )
    failure = failing_cell(nb)
    assert failure is not None
    assert (failure.index, failure.first_line, failure.ename, failure.evalue) == (
        2,
        "import math",
        "ValueError",
        "math domain error",
    )
    assert failure.describe() == "cell 3 (`import math`)"


def test_expected_errors_are_skipped_and_the_reported_index_wins() -> None:
    nb = notebook(
        cell("raise KeyError", tags=["raises-exception"], outputs=[error("KeyError", "")]),
        cell("1/0", outputs=[error("ZeroDivisionError", "division by zero")]),
        cell("2/0", outputs=[error("ZeroDivisionError", "again")]),
    )
    assert failing_cell(nb) == failing_cell(nb, index=1)
    assert failing_cell(nb, index=2).evalue == "again"  # type: ignore[union-attr]
    assert failing_cell(nb, index=99) is not None
    assert failing_cell(notebook(cell("ok"))) is None


def test_long_lines_are_shortened() -> None:
    nb = notebook(cell("x" * 200, outputs=[error("E", "v" * 500)]))
    failure = failing_cell(nb)
    assert failure is not None and len(failure.first_line) == 80 and failure.first_line.endswith("...")
    assert len(failure.evalue) == 200
    assert cell_at(nb, 0).describe() == f"cell 1 (`{'x' * 77}...`)"


def test_the_default_output_sits_beside_the_input() -> None:
    assert default_output(Path("notebooks/traffic.ipynb")) == Path("notebooks/traffic.out.ipynb")
    assert default_output(Path("run")) == Path("run.out.ipynb")


# --- the container ------------------------------------------------------------------------------


def spec(**changes: Any) -> ContainerRun:
    values: dict[str, Any] = {
        "image": "nbenv/traffic-analysis:ck-123",
        "name": "nbenv-traffic-analysis-run-1",
        "labels": {"nbenv.environment": "traffic-analysis", "nbenv.run": "headless"},
        "mounts": (
            Mount("/repo", "/home/jovyan/work", read_only=False),
            Mount("/repo/data/processed/pems", "/home/jovyan/work/data/processed/pems", read_only=True),
        ),
        "workdir": "/home/jovyan/work",
        "environment": {"TZ": "UTC"},
        "resources": Resources(memory="4g", shm_size="1g"),
        "command": ("python", "/run/nbenv/driver.py"),
    }
    return ContainerRun(**{**values, **changes})


@pytest.mark.security
def test_the_container_is_locked_down_and_thrown_away() -> None:
    command = docker_run_argv("docker", spec())
    assert command[:3] == ["docker", "run", "--rm"]
    pairs = list(itertools.pairwise(command))
    for flag in [
        ("--user", "1000:100"),
        ("--network", "none"),
        ("--cap-drop", "ALL"),
        ("--security-opt", "no-new-privileges"),
        ("--pull", "never"),
        ("--name", "nbenv-traffic-analysis-run-1"),
        ("--label", "nbenv.run=headless"),
        ("--label", "nbenv.environment=traffic-analysis"),
        ("--memory", "4g"),
        ("--shm-size", "1g"),
        ("--env", "TZ=UTC"),
        ("--workdir", "/home/jovyan/work"),
    ]:
        assert flag in pairs, flag
    assert "--cpus" not in command and "--privileged" not in command and "-p" not in command
    assert command[-3:] == ["nbenv/traffic-analysis:ck-123", "python", "/run/nbenv/driver.py"]


def test_source_is_mounted_read_write_and_data_read_only() -> None:
    command = docker_run_argv("docker", spec())
    mounts = [value for flag, value in itertools.pairwise(command) if flag == "--mount"]
    assert mounts == [
        "type=bind,source=/repo,target=/home/jovyan/work",
        "type=bind,source=/repo/data/processed/pems,target=/home/jovyan/work/data/processed/pems,readonly",
    ]


def test_mount_fields_with_commas_are_csv_quoted() -> None:
    command = docker_run_argv("docker", spec(mounts=(Mount('/a,b/"x"', "/t", read_only=True),)))
    assert command[command.index("--mount") + 1] == 'type=bind,"source=/a,b/""x""",target=/t,readonly'


def test_compose_mounts_become_absolute_host_paths() -> None:
    mounts = (Mount("../..", "/home/jovyan/work", False), Mount("../../data/processed/pems", "/d", True))
    assert host_mounts(Path("/repo"), "docker/traffic-analysis", mounts) == (
        Mount("/repo", "/home/jovyan/work", False),
        Mount("/repo/data/processed/pems", "/d", True),
    )


def test_the_driver_is_valid_python() -> None:
    compile(inimage.script(DRIVER_SCRIPT), "driver.py", "exec")


# --- CLI: every user error comes before Docker ----------------------------------------------------


def test_cli_errors_come_before_any_docker_call(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBENV_DOCKER", "/nonexistent/docker")  # any engine call would fail with exit 6
    (workspace / "plain.ipynb").write_text(json.dumps(notebook(cell("x = 1", id="a"))))
    missing = run_cli("run", "traffic-analysis", str(workspace / "nope.ipynb"), cwd=workspace)
    bad = run_cli("run", "traffic-analysis", str(workspace / "plain.ipynb"), "-p", "x", cwd=workspace)
    untagged = run_cli("run", "traffic-analysis", str(workspace / "plain.ipynb"), "-p", "x=1", cwd=workspace)
    assert (missing.code, bad.code, untagged.code) == (2, 2, 2)
    assert missing.err_lines[0] == "nope.ipynb: no such notebook"
    assert bad.err_lines[0] == "-p 'x': expected NAME=VALUE with NAME a Python identifier"
    assert untagged.err_lines[0] == "plain.ipynb: -p given, but no cell is tagged 'parameters'"
    for result in (missing, bad, untagged):
        assert len(result.err_lines) == 2 and "Traceback" not in result.err and result.out == ""
