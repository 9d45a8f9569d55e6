"""`nbenv new` in an existing project (issue 15: found adopting the fixture projects of tests/e2e/test_adopt.py).

- `--data PATH` (repeatable) declares DVC-tracked data in the spec it writes: before, the user had to
  edit the new spec by hand to add `[[data]]`, the one hand edit every adoption needed.
- A root environment whose groups leave out `main` gets a note: the project's package (importable =
  true) then imports without its own dependencies, and `from PKG import ...` fails only in the notebook.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli, snapshot
from tests.e2e.adopt_projects import FIXTURES

NOTE = "note: the groups leave out main, the project's own dependencies"


def project(root: Path, fixture: str = "poetry-groups") -> Path:
    """A fixture project with DVC-tracked data: a .dvc file (data/raw) and a dvc.yaml stage output."""
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(FIXTURES / fixture / name, root / name)
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "a.csv").write_text("x\n1\n")
    (root / "data" / "raw.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: raw\n")
    (root / "dvc.yaml").write_text("stages:\n  clean:\n    cmd: python clean.py\n    outs:\n    - data/clean\n")
    return root


def spec_data(root: Path, env: str) -> list[str]:
    return [entry["path"] for entry in tomllib.loads((root / f"environments/{env}.toml").read_text()).get("data", [])]


@pytest.mark.parametrize(
    ("given", "written"),
    [
        (["data/raw"], ["data/raw"]),
        (["./data/raw/"], ["data/raw"]),
        (["data/raw/a.csv"], ["data/raw/a.csv"]),  # inside a tracked directory
        (["data/clean"], ["data/clean"]),  # a dvc.yaml stage output (not pulled yet: fine)
        (["data/raw", "data/clean", "data/raw"], ["data/raw", "data/clean"]),
    ],
)
def test_new_declares_the_data_it_is_given(tmp_path: Path, given: list[str], written: list[str]) -> None:
    root = project(tmp_path)
    args = [arg for path in given for arg in ("--data", path)]
    result = run_cli("new", "weather", "--groups", "main,notebook", *args, cwd=root)
    assert result.code == 0, result.err
    assert spec_data(root, "weather") == written
    validated = run_cli("validate", cwd=root)
    assert validated.code == 0, validated.err


def test_without_data_the_specs_commented_examples_name_what_dvc_tracks(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run_cli("new", "weather", "--groups", "main,notebook", cwd=root).code == 0
    text = (root / "environments/weather.toml").read_text()
    assert spec_data(root, "weather") == [] and '# path = "data/raw"' in text
    assert "data/processed/example" not in text


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("data/other", "--data: 'data/other' is not tracked by DVC (no .dvc file or dvc.yaml output covers it)"),
        ("data", "--data: 'data' is not tracked by DVC (no .dvc file or dvc.yaml output covers it)"),
        ("data/rawer", "--data: 'data/rawer' is not tracked by DVC (no .dvc file or dvc.yaml output covers it)"),
        ("/etc", "--data: '/etc' must be a path relative to the repository root"),
        ("../outside", "--data: '../outside' points outside the repository"),
        ("data/raw/../../..", "--data: 'data/raw/../../..' points outside the repository"),
        ("", "--data: '' must be a path relative to the repository root"),
    ],
)
def test_a_bad_data_path_is_one_line_and_writes_nothing(tmp_path: Path, value: str, message: str) -> None:
    root = project(tmp_path)
    before = snapshot(root)
    result = run_cli("new", "weather", "--groups", "main", "--data", value, cwd=root)
    assert result.code == 2
    assert result.err_lines[0] == message
    assert len(result.err_lines) <= 2 and all(line.startswith("  hint: ") for line in result.err_lines[1:])
    assert "Traceback" not in result.err
    assert snapshot(root) == before, "nothing written"


@pytest.mark.badinput
def test_a_control_character_in_a_data_path_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = snapshot(root)
    result = run_cli("new", "weather", "--groups", "main", "--data", "data/raw\n[jupyter]", cwd=root)
    assert result.code == 2 and len(result.err_lines) <= 2 and result.err_lines[0].startswith("--data: ")
    assert snapshot(root) == before


@pytest.mark.badinput
def test_the_hint_lists_what_dvc_tracks(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run_cli("new", "weather", "--groups", "main", "--data", "data/other", cwd=root)
    assert result.err_lines[1] == "  hint: DVC tracks here: data/clean, data/raw"


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("fixture", "groups", "extends", "deps"),
    [
        ("poetry-groups", "notebook,analysis", None, "attrs"),  # [project].dependencies
        ("pep735", "report", None, "python-dateutil"),  # PEP 621 + PEP 735
        ("ipykernel-only", "dev", None, "attrs, tabulate"),  # [tool.poetry.dependencies], python left out
        ("poetry-groups", "main,notebook", None, None),
        ("poetry-groups", "notebook", "parent", None),  # the parent may install main
    ],
)
def test_groups_without_main_get_a_note(
    tmp_path: Path, fixture: str, groups: str, extends: str | None, deps: str | None
) -> None:
    root = project(tmp_path, fixture)
    if extends:
        assert run_cli("new", extends, "--groups", "main", cwd=root).code == 0
    result = run_cli("new", "child", "--groups", groups, *(["--extends", extends] if extends else []), cwd=root)
    assert result.code == 0, result.err
    notes = [line for line in result.err_lines if line.startswith("note: ")]
    if deps is None:
        assert notes == []
    else:
        assert notes == [
            f"{NOTE} ({deps}); the project's package (importable = true) may not import without them: "
            "add main to --groups unless no notebook imports it"
        ]
