"""The project's Python (issue 15, item 1): its constraint from requires-python, Poetry's python and the
lock's python-versions; the Debian suite nbenv picks for it; one line for every constraint nbenv cannot
read and for every base whose Python does not fit."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv import base_image, constants
from nbenv.base_image import BaseRecipe, checked_python, nbenv_recipe, split_ref, tarball_python
from nbenv.errors import BuildError, LockError
from nbenv.pyversion import (
    ProjectPython,
    PythonSource,
    allows_minor,
    choose_suite,
    lock_python_versions,
    parse_pep440,
    parse_poetry,
    read_project_python,
)
from nbenv.tomlio import TomlDocument
from tests.conftest import run_cli, snapshot
from tests.python_project import set_python

PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")

# constraint -> the Pythons (of PYTHONS) it allows
POETRY = {
    "^3.12": {"3.12", "3.13", "3.14"},
    ">=3.12": {"3.12", "3.13", "3.14"},
    "~3.11": {"3.11"},
    "3.11.*": {"3.11"},
    "==3.11.*": {"3.11"},
    ">=3.8,<3.11": {"3.8", "3.9", "3.10"},
    ">=3.8, <3.11": {"3.8", "3.9", "3.10"},
    ">=3.11 <3.13": {"3.11", "3.12"},
    "^3.9 || ^3.12": set(PYTHONS) - {"3.8"},
    "~3.9 || ~3.13": {"3.9", "3.13"},
    "<3.11 || >=3.12": set(PYTHONS) - {"3.11"},
    "!=3.11.*": set(PYTHONS) - {"3.11"},
    ">=3.11.4,<3.12": {"3.11"},
    "*": set(PYTHONS),
    "3.11": {"3.11"},
}
PEP440 = {
    ">=3.12": {"3.12", "3.13", "3.14"},
    ">=3.11,<3.14": {"3.11", "3.12", "3.13"},
    "~=3.11": {"3.11", "3.12", "3.13", "3.14"},
    "~=3.11.0": {"3.11"},
    "==3.11.*": {"3.11"},
    "!=3.12.*,>=3.11": {"3.11", "3.13", "3.14"},
    ">=3.8,<3.11": {"3.8", "3.9", "3.10"},
    "<3.10": {"3.8", "3.9"},
}
SUITE = {  # the Poetry constraint -> the suite nbenv picks (bookworm 3.11 first, then trixie 3.13)
    "^3.12": "trixie",
    ">=3.12": "trixie",
    "~3.11": "bookworm",
    "3.11.*": "bookworm",
    ">=3.8,<3.11": None,
    "^3.9 || ^3.12": "bookworm",
    "~3.9 || ~3.13": "trixie",
    "<3.11 || >=3.12": "trixie",
    "~3.12": None,
    "*": "bookworm",
}


@pytest.mark.parametrize(("text", "allowed"), POETRY.items(), ids=list(POETRY))
def test_poetry_constraints(text: str, allowed: set[str]) -> None:
    constraint = parse_poetry(text)
    assert {python for python in PYTHONS if allows_minor(constraint, python)} == allowed


@pytest.mark.parametrize(("text", "allowed"), PEP440.items(), ids=list(PEP440))
def test_pep440_constraints(text: str, allowed: set[str]) -> None:
    constraint = parse_pep440(text)
    assert {python for python in PYTHONS if allows_minor(constraint, python)} == allowed


@pytest.mark.parametrize(("text", "suite"), SUITE.items(), ids=list(SUITE))
def test_the_first_suite_whose_python_fits(text: str, suite: str | None) -> None:
    project = ProjectPython((PythonSource("pyproject.toml:1: x", "python", text, parse_poetry(text)),))
    assert choose_suite(project) == suite


def test_no_constraint_fits_the_first_suite() -> None:
    assert choose_suite(ProjectPython()) == "bookworm"


def test_constraints_intersect() -> None:
    sources = tuple(
        PythonSource(f"f:{i}: x", "python", text, parse_poetry(text)) for i, text in enumerate(("^3.9", "<3.12"))
    )
    project = ProjectPython(sources)
    assert [p for p in PYTHONS if project.allows(p)] == ["3.9", "3.10", "3.11"]
    assert project.refusing("3.12") is sources[1]
    assert choose_suite(project) == "bookworm"


def test_the_suites_and_their_pythons() -> None:
    assert constants.SUITE_PYTHON == {"bookworm": "3.11", "trixie": "3.13"}
    assert constants.AUTO_SUITES == ("bookworm", "trixie")


HOSTILE = [
    "",
    "   ",
    "^3.12",  # Poetry syntax is no PEP 440 (for requires-python)
    "~3.11",
    ">=3.11; rm -rf /",
    ">=3.11\n<3.12",
    "$(id)",
    "===3.11",
    ">=3.11.x",
    "3.11.*.*",
    ">=" * 100,
    "x" * 10_000,
    "||",
    ">=3.11 ||| <3",
    "${{ secrets.X }}",
    "\x00",
]


@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.badinput
@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t[:20]) for t in HOSTILE])
def test_a_hostile_requires_python_is_one_value_error(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_pep440(text)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300


@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.badinput
@pytest.mark.parametrize("text", [t for t in HOSTILE if not t.startswith(("^", "~", "3.11.*"))], ids=repr)
def test_a_hostile_poetry_constraint_is_one_value_error(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_poetry(text)
    assert "\n" not in str(caught.value)


@pytest.mark.badinput
@pytest.mark.parametrize("value", [3.12, 3, True, ["3.12"], {"version": "^3.12"}], ids=repr)
def test_a_constraint_that_is_no_string(value: object) -> None:
    for parse in (parse_pep440, parse_poetry):
        with pytest.raises(ValueError, match="must be a string"):
            parse(value)


ALPHABET = st.sampled_from([*"0123456789.,*<>=!~^| ", "3.", ">=3.1", "||", "~=", "a", "rc1", "post", "dev"])


@pytest.mark.badinput
@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=30).map("".join) | st.text(max_size=60))
def test_any_text_parses_or_is_one_value_error(text: str) -> None:
    """Whatever a pyproject.toml or a lock says, the parsers answer a constraint or one ValueError line."""
    for parse in (parse_pep440, parse_poetry):
        try:
            constraint = parse(text)
        except ValueError as exc:
            assert "\n" not in str(exc)
        else:
            for python in PYTHONS:
                allows_minor(constraint, python)


def _doc(text: str) -> TomlDocument:
    import tomllib

    return TomlDocument("pyproject.toml", text, tomllib.loads(text))


def test_the_three_places_are_read_with_their_lines() -> None:
    pyproject = '[project]\nname = "x"\nrequires-python = ">=3.11"\n\n[tool.poetry.dependencies]\npython = "^3.12"\n'
    lock = (
        '[[package]]\nname = "a"\n\n[metadata]\nlock-version = "2.1"\npython-versions = "^3.12"\ncontent-hash = "0"\n'
    )
    project = read_project_python(_doc(pyproject), lock)
    assert [(s.where, s.text) for s in project.sources] == [
        ("pyproject.toml:3: project.requires-python", ">=3.11"),
        ("pyproject.toml:6: tool.poetry.dependencies.python", "^3.12"),
        ("poetry.lock:6: metadata.python-versions", "^3.12"),
    ]
    assert choose_suite(project) == "trixie"


def test_the_lock_python_versions_in_any_table_layout() -> None:
    assert lock_python_versions('[metadata]\npython-versions = ">=3.12"\n') == (">=3.12", 2)
    assert lock_python_versions('metadata = { python-versions = "~3.11" }\n') == ("~3.11", None)
    assert lock_python_versions('[metadata]\nlock-version = "2.1"\n') is None
    assert lock_python_versions("not toml [") is None  # the lock reader reports it


@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.badinput
@pytest.mark.parametrize("value", ['"^3.11 ||| x"', '"$(id)"', "3.12", '""'], ids=repr)
def test_a_bad_lock_python_versions_is_one_lock_error(value: str) -> None:
    lock = f'[metadata]\nlock-version = "2.1"\npython-versions = {value}\n'
    with pytest.raises(LockError) as caught:
        read_project_python(_doc('[project]\nname = "x"\n'), lock)
    assert caught.value.message.startswith("poetry.lock:3: metadata.python-versions: ")
    assert "\n" not in caught.value.message


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("toml", "start"),
    [
        (
            '[project]\nrequires-python = "^3.12"\n',
            "pyproject.toml:2: project.requires-python: '^3.12' is not a PEP 440",
        ),
        ("[project]\nrequires-python = 3.12\n", "pyproject.toml:2: project.requires-python: must be a string"),
        ('[tool.poetry.dependencies]\npython = "3.x"\n', "pyproject.toml:2: tool.poetry.dependencies.python: '3.x'"),
        ('[tool.poetry.dependencies]\npython = { version = "^3.12" }\n', "pyproject.toml:2: tool.poetry.dependencies"),
    ],
)
def test_a_bad_project_constraint_is_one_spec_error_at_its_line(toml: str, start: str) -> None:
    from nbenv.errors import SpecError

    with pytest.raises(SpecError) as caught:
        read_project_python(_doc(toml), None)
    assert caught.value.message.startswith(start), caught.value.message
    assert caught.value.exit_code == 3 and "\n" not in caught.value.message


# --- base images: recipes, the Python label -------------------------------------------------------


def test_image_references_split_at_the_tag() -> None:
    assert split_ref("nbenv/debian-python:trixie") == ("nbenv/debian-python", "trixie")
    assert split_ref("host:5000/team/python") == ("host:5000/team/python", None)
    assert split_ref("host:5000/team/python:3.12") == ("host:5000/team/python", "3.12")
    assert split_ref("python@sha256:" + "0" * 64) == ("python@sha256:" + "0" * 64, None)


def test_nbenv_bases_name_their_suite() -> None:
    assert nbenv_recipe("nbenv/debian-python:trixie") == BaseRecipe("trixie")
    assert nbenv_recipe("nbenv/debian-python") == BaseRecipe("bookworm")
    assert nbenv_recipe("nbenv/debian-python:sid") == BaseRecipe("sid")
    assert BaseRecipe("sid").python is None, "a suite not in the table: its Python is checked at build time"
    assert nbenv_recipe("python:3.12-slim") is None
    assert nbenv_recipe("registry:5000/nbenv/debian-python:trixie") is None


def _tarball(path: Path, link: str | None) -> Path:
    with tarfile.open(path, "w") as archive:
        for name in ("./", "./usr/", "./usr/bin/"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        if link is not None:
            info = tarfile.TarInfo("./usr/bin/python3")
            info.type, info.linkname = tarfile.SYMTYPE, link
            archive.addfile(info)
        archive.addfile(tarfile.TarInfo("./etc-file"), io.BytesIO(b""))
    return path


def test_the_python_label_comes_from_the_root_filesystem(tmp_path: Path) -> None:
    assert tarball_python(_tarball(tmp_path / "a.tar", "python3.13")) == "3.13"
    assert tarball_python(_tarball(tmp_path / "b.tar", None)) is None
    assert tarball_python(_tarball(tmp_path / "c.tar", "../../evil")) is None
    assert checked_python("trixie", "3.13") == "3.13"
    assert checked_python("forky", "3.14") == "3.14", "a suite nbenv has no entry for: what it holds"


@pytest.mark.fault
def test_a_suite_whose_python_is_not_the_tables_is_a_build_error() -> None:
    with pytest.raises(
        BuildError, match=re.escape("Debian bookworm's python3 is 3.12, but nbenv's table of suites says 3.11")
    ):
        checked_python("bookworm", "3.12")
    with pytest.raises(BuildError, match="no /usr/bin/python3"):
        checked_python("trixie", None)


# --- the loader: the automatic base, and every misfit as one line ----------------------------------


def _show_base(root: Path, name: str = "base") -> str:
    result = run_cli("show", name, cwd=root)
    assert result.code == 0, result.err
    found = re.search(r'(?m)^base_image = "(.*)"$', result.out)
    assert found, result.out
    return found.group(1)


def test_the_demo_keeps_its_explicit_bookworm_base(workspace: Path) -> None:
    assert _show_base(workspace) == "nbenv/debian-python:bookworm"
    assert run_cli("validate", cwd=workspace).code == 0


@pytest.mark.parametrize(
    ("kwargs", "base"),
    [
        ({}, "nbenv/debian-python:bookworm"),
        ({"requires_python": ">=3.11,<3.14"}, "nbenv/debian-python:bookworm"),
        ({"requires_python": ">=3.12"}, "nbenv/debian-python:trixie"),
        ({"requires_python": ">=3.12,<3.14"}, "nbenv/debian-python:trixie"),
        ({"poetry_python": "^3.12"}, "nbenv/debian-python:trixie"),
        ({"requires_python": ">=3.10", "poetry_python": "~3.13"}, "nbenv/debian-python:trixie"),
        ({"lock_python": ">=3.12"}, "nbenv/debian-python:trixie"),
        ({"requires_python": ">=3.9", "lock_python": "^3.9 || ^3.12"}, "nbenv/debian-python:bookworm"),
    ],
    ids=str,
)
def test_without_a_named_base_nbenv_picks_the_suite_whose_python_fits(
    workspace: Path, kwargs: dict[str, str], base: str
) -> None:
    set_python(workspace, **kwargs)
    assert _show_base(workspace) == base
    assert _show_base(workspace, "traffic-analysis") == base, "a child is built FROM its root's chain"
    assert run_cli("validate", cwd=workspace).code == 0
    assert run_cli("generate", cwd=workspace).code == 0
    dockerfile = (workspace / "docker" / "base" / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={base}\n" in dockerfile
    assert run_cli("generate", "--check", cwd=workspace).code == 0


def test_the_automatic_base_reaches_the_ci_workflow(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.12")
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 0, result.err
    workflow = yaml.safe_load((workspace / ".github/workflows/nbenv.yml").read_text())
    matrix = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert {(m["base_image"], m["base_suite"]) for m in matrix} == {("nbenv/debian-python:trixie", "trixie")}


def _one_line(root: Path, *args: str, code: int = 3) -> tuple[str, str]:
    """Run a command that must fail with one line and at most one hint, writing nothing."""
    before = snapshot(root)
    result = run_cli(*args, cwd=root)
    assert result.code == code, result.err
    lines = result.err_lines
    assert 1 <= len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("  hint: ")), result.err
    assert "Traceback" not in result.err
    assert snapshot(root) == before, "nothing written"
    return lines[0], lines[1][len("  hint: ") :] if len(lines) == 2 else ""


COMMANDS = [("validate",), ("generate",), ("show", "base"), ("ci", "github")]


@pytest.mark.badinput
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("kwargs", "start", "hint"),
    [
        (
            {"requires_python": ">=3.8,<3.11"},
            "pyproject.toml:6: project.requires-python: '>=3.8,<3.11' fits none of the Pythons of the base images "
            "nbenv makes (bookworm: Python 3.11, trixie: Python 3.13)",
            'relax it to include one of them, or name a base image whose Python fits: base_image = "python:3.10-slim"',
        ),
        (
            {"requires_python": ">=3.12,<3.13"},
            "pyproject.toml:6: project.requires-python: '>=3.12,<3.13' fits none",
            'base_image = "python:3.12-slim"',
        ),
        (
            {"requires_python": ">=3.11", "poetry_python": "~3.12"},
            "pyproject.toml:{N}: tool.poetry.dependencies.python: '~3.12' fits none",
            "python:3.12-slim",
        ),
        (
            {"requires_python": ">=3.12", "lock_python": "~3.11"},
            "pyproject.toml:6: project.requires-python: '>=3.12' with python-versions '~3.11' (poetry.lock:",
            "the constraints exclude each other: make them agree, then run `poetry lock`",
        ),
    ],
    ids=["below", "between", "poetry", "contradict"],
)
def test_no_suite_fits(
    workspace: Path, command: tuple[str, ...], kwargs: dict[str, str], start: str, hint: str
) -> None:
    set_python(workspace, **kwargs)
    line, shown_hint = _one_line(workspace, *command)
    assert re.match(re.escape(start).replace(re.escape("{N}"), r"\d+"), line), line
    assert hint in shown_hint, shown_hint


BOOKWORM_SPEC = 'base_image = "nbenv/debian-python:bookworm"\n'


@pytest.mark.badinput
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_named_nbenv_base_whose_python_does_not_fit_in_the_spec(workspace: Path, command: tuple[str, ...]) -> None:
    set_python(workspace, requires_python=">=3.12")
    spec = workspace / "environments" / "base.toml"
    spec.write_text(spec.read_text() + BOOKWORM_SPEC)
    line, hint = _one_line(workspace, *command)
    number = spec.read_text().splitlines().index(BOOKWORM_SPEC.strip()) + 1
    assert line == (
        f"environments/base.toml:{number}: base_image: nbenv/debian-python:bookworm has Python 3.11, "
        "but requires-python '>=3.12' (pyproject.toml:6) excludes it"
    )
    assert hint == (
        'base_image = "nbenv/debian-python:trixie" (Python 3.13), or remove base_image: '
        "nbenv then picks the Debian suite whose Python fits"
    )


@pytest.mark.badinput
def test_a_named_nbenv_base_whose_python_does_not_fit_in_the_repo_settings(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.12", default_base_image="nbenv/debian-python:bookworm")
    line, hint = _one_line(workspace, "validate")
    assert re.fullmatch(
        r"pyproject\.toml:\d+: tool\.nbenv\.default_base_image: nbenv/debian-python:bookworm has Python 3\.11, "
        r"but requires-python '>=3\.12' \(pyproject\.toml:6\) excludes it",
        line,
    ), line
    assert hint.startswith('default_base_image = "nbenv/debian-python:trixie" (Python 3.13), or remove')


@pytest.mark.badinput
def test_a_named_nbenv_base_when_no_suite_fits_says_to_relax_or_name_another(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.14", default_base_image="nbenv/debian-python:trixie")
    line, hint = _one_line(workspace, "validate")
    assert "nbenv/debian-python:trixie has Python 3.13, but requires-python '>=3.14'" in line
    assert hint == (
        "relax the project's Python constraint, or name a base image whose Python fits "
        '(e.g. default_base_image = "python:3.20-slim")'
    )


def test_a_foreign_base_is_checked_at_build_time_not_before(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.12", default_base_image="python:3.11-slim")
    assert run_cli("validate", cwd=workspace).code == 0
    assert _show_base(workspace) == "python:3.11-slim"


def test_a_suite_nbenv_has_no_table_entry_for_is_checked_at_build_time(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.12", default_base_image="nbenv/debian-python:forky")
    assert run_cli("validate", cwd=workspace).code == 0


# --- declared bases: [tool.nbenv.base_images."TAG"] -----------------------------------------------

TEAM = "registry.example:5000/team/python:3"


def _declared(suite: str, packages: str = "") -> str:
    return f'\n[tool.nbenv.base_images."{TEAM}"]\nsuite = "{suite}"\n{packages}'


def test_a_declared_base_is_made_by_nbenv_in_ci_too(workspace: Path) -> None:
    set_python(
        workspace,
        requires_python=">=3.12",
        default_base_image=TEAM,
        config=_declared("trixie", 'packages = ["graphviz"]\n'),
    )
    assert run_cli("validate", cwd=workspace).code == 0
    assert _show_base(workspace) == TEAM
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 0, result.err
    workflow = yaml.safe_load((workspace / ".github/workflows/nbenv.yml").read_text())
    build = workflow["jobs"]["build"]
    assert {(m["base_image"], m["base_suite"]) for m in build["strategy"]["matrix"]["include"]} == {(TEAM, "trixie")}
    step = next(s for s in build["steps"] if s.get("name") == "Build the nbenv base image from Debian packages")
    assert step["if"] == "${{ matrix.base_image != '' }}"
    assert 'image base --tag "$NBENV_BASE_IMAGE" --suite "$NBENV_BASE_SUITE"' in step["run"]


def test_a_foreign_base_in_ci_is_left_to_the_build_which_pulls_it(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.11", default_base_image="python:3.12-slim")
    assert run_cli("ci", "github", cwd=workspace).code == 0
    workflow = yaml.safe_load((workspace / ".github/workflows/nbenv.yml").read_text())
    build = workflow["jobs"]["build"]
    assert {(m["base_image"], m["base_suite"]) for m in build["strategy"]["matrix"]["include"]} == {("", "")}
    step = next(s for s in build["steps"] if s.get("name") == "Build the nbenv base image from Debian packages")
    assert step["if"] == "${{ matrix.base_image != '' }}", "skipped: no empty tag reaches `nbenv image base`"


@pytest.mark.badinput
def test_a_declared_base_whose_python_does_not_fit(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.12", default_base_image=TEAM, config=_declared("bookworm"))
    line, hint = _one_line(workspace, "validate")
    assert f"tool.nbenv.default_base_image: {TEAM} has Python 3.11, but requires-python '>=3.12'" in line
    assert hint == (
        'default_base_image = "nbenv/debian-python:trixie" (Python 3.13), '
        f'or suite = "trixie" in [tool.nbenv.base_images."{TEAM}"]'
    )


@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.badinput
@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (_declared("Trixie"), "suite: 'Trixie' is not a Debian suite"),
        (_declared("trixie; rm"), "is not a Debian suite"),
        (_declared("trixie", 'packages = ["graphviz=2.42"]\n'), "packages[0]: 'graphviz=2.42' is not a Debian package"),
        (_declared("trixie", 'packages = ["-oAPT::x"]\n'), "is not a Debian package name"),
        (_declared("trixie", 'mirror = "http://x"\n'), "mirror: "),
        ('\n[tool.nbenv.base_images."Team/Python"]\nsuite = "trixie"\n', "is not a valid image reference"),
        (f'\n[tool.nbenv.base_images."team/python@sha256:{"0" * 64}"]\nsuite = "trixie"\n', "by digest"),
        (
            '\n[tool.nbenv.base_images."nbenv/debian-python:bookworm"]\nsuite = "trixie"\n',
            "is nbenv's own base of Debian bookworm (the tag names the suite)",
        ),
        ('\n[tool.nbenv.base_images."team/python"]\npackages = []\n', "suite: "),
    ],
    ids=["case", "shell", "pinned", "option", "unknown", "ref", "digest", "own", "nosuite"],
)
def test_a_bad_declared_base_is_one_line(workspace: Path, table: str, problem: str) -> None:
    set_python(workspace, requires_python=">=3.11", config=table)
    line, _hint = _one_line(workspace, "validate")
    assert line.startswith("pyproject.toml:") and "tool.nbenv.base_images." in line, line
    assert problem in line, line


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--tag", "nbenv/debian-python:bookworm", "--suite", "trixie"), "nbenv's base of Debian bookworm"),
        (("--tag", TEAM, "--suite", "bookworm"), "declared in [tool.nbenv.base_images] as Debian trixie"),
    ],
)
def test_image_base_refuses_a_suite_its_tag_contradicts(
    workspace: Path, args: tuple[str, ...], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBENV_DOCKER", "/nonexistent/docker")  # refused before any engine is asked
    set_python(workspace, requires_python=">=3.11", config=_declared("trixie"))
    line, hint = _one_line(workspace, "image", "base", *args, code=2)
    assert problem in line, line
    assert hint.startswith("drop --suite")


@pytest.mark.parametrize(
    ("tag", "suite", "expected"),
    [
        (None, None, ("nbenv/debian-python:bookworm", "bookworm", ())),
        (None, "trixie", ("nbenv/debian-python:trixie", "trixie", ())),
        ("nbenv/debian-python:trixie", None, ("nbenv/debian-python:trixie", "trixie", ())),
        (TEAM, None, (TEAM, "trixie", ("graphviz",))),
        (TEAM, "trixie", (TEAM, "trixie", ("graphviz",))),
        ("team/other:1", None, ("team/other:1", "bookworm", ())),
        ("team/other:1", "trixie", ("team/other:1", "trixie", ())),
    ],
)
def test_image_base_takes_the_suite_from_the_tag_or_its_declaration(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tag: str | None, suite: str | None, expected: tuple[object, ...]
) -> None:
    """`nbenv image base` (and the CI step that runs it): what it would build, the build itself replaced."""
    from nbenv import api

    set_python(workspace, requires_python=">=3.11", config=_declared("trixie", 'packages = ["graphviz"]\n'))
    plans: list[base_image.BaseImagePlan] = []
    monkeypatch.setattr(api, "real_engine", lambda: type("E", (), {"docker": "docker"})())
    monkeypatch.setattr(base_image, "build_base_image", lambda plan, **_: plans.append(plan) or "sha256:0")
    assert api.image_base(repo=workspace, tag=tag, suite=suite) == (expected[0], "sha256:0")
    (plan,) = plans
    assert (plan.tag, plan.suite) == expected[:2]
    assert set(expected[2]) <= set(plan.packages) and len(plan.packages) == len(base_image.BASE_PACKAGES) + len(
        expected[2]
    )
