"""The grammars every untrusted field is checked against (issue 13): PEP 508 names and markers, PEP 440
versions, `algo:hex` hashes, group names; the variant directory; the extends depth; one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.errors import LockError, SpecError
from nbenv.lock import (
    Lock,
    LockedPackage,
    Pin,
    hash_problem,
    marker_problem,
    name_problem,
    requirements_text,
    version_problem,
)
from nbenv.plan import build_plan
from nbenv.spec.load import MAX_EXTENDS_DEPTH, Loader, poetry_groups, project_source_dirs
from nbenv.spec.locate import format_loc
from nbenv.ui import one_line
from nbenv.workspace import Workspace

SHA = "sha256:" + "0" * 64

VALID_NAMES = ["a", "A", "pkg", "Foo_Bar", "zope.interface", "x-1", "a" * 200, "nbenv-builder", "1"]
INVALID_NAMES = [
    "",
    "-a",
    "a-",
    ".a",
    "a b",
    "a/b",
    "..",
    "../../x",
    "a\n",  # `$` would accept the trailing newline
    "a\nb",
    "a\u2028b",
    "a\x85",
    "\u212a",  # the Kelvin sign: [A-Z] under re.IGNORECASE alone matches it
    "\u0131",  # a dotless i
    "ä",
    "a" * 201,
    "a;b",
    "a$b",
]


@pytest.mark.parametrize("value", VALID_NAMES)
def test_valid_names(value: str) -> None:
    assert name_problem(value) is None


@pytest.mark.badinput
@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.parametrize("value", [*INVALID_NAMES, 5, None, ["a"]])
def test_invalid_names(value: object) -> None:
    problem = name_problem(value, "group name")
    assert problem is not None and "\n" not in problem


VALID_VERSIONS = ["1", "1.0", "2024.01.01", "1.0rc1", "1.0.post2", "1.0.dev3", "1!2.0", "1.0+local.7", "v1.0", "1.0-1"]
INVALID_VERSIONS = ["", "1.0\n", "1.0\n-r /etc/shadow", "1.0 ", " 1.0", "latest", "1.0;x", "1.0+", "*", "1" * 200]
INVALID_VERSIONS += ["\u0661"]  # an Arabic-Indic digit: \d alone matches it


@pytest.mark.parametrize("value", VALID_VERSIONS)
def test_valid_versions(value: str) -> None:
    assert version_problem(value) is None


@pytest.mark.badinput
@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.parametrize("value", [*INVALID_VERSIONS, 1.0, None])
def test_invalid_versions(value: object) -> None:
    assert version_problem(value) is not None


VALID_MARKERS = [
    'python_version < "3.12"',
    'sys_platform == "win32" or sys_platform == "emscripten"',
    'platform_python_implementation != "PyPy" and implementation_name != "PyPy" or implementation_name == "pypy"',
    "(os_name == 'nt') and (platform_machine != \"x86_64\" or python_full_version >= '3.11.1')",
    'extra == "socks"',
    '"linux" in sys_platform',
    'platform_release not in "5.10"',
    'python_version ~= "3.11"',
    'python_version === "3.11"',
    'os_name == ""',
]
INVALID_MARKERS = [
    "",
    'python_version < "3.12"\n-r /etc/shadow',
    'python_version < "3.12"\n',
    'os_name == "nt" \\',
    'os_name == "x #y"',
    'os_name == "${HOME}"',
    'os_name == "a\\"b"',
    'os_name == "a\u2028b"',
    'os_name == "ä"',
    'os_name == "nt" --extra-index-url http://x',
    "os_name == nt",
    'unknown_variable == "x"',
    'os_name = "nt"',
    '(os_name == "nt"',
    'os_name == "nt")',
    'os_name == "nt" and',
    'or os_name == "nt"',
    "(" * 40 + 'os_name == "nt"' + ")" * 40,  # nested deeper than the parser goes
    'os_name == "nt"' + " and os_name == 'nt'" * 300,  # longer than 4096 characters
]


@pytest.mark.parametrize("value", VALID_MARKERS)
def test_valid_markers(value: str) -> None:
    assert marker_problem(value) is None


@pytest.mark.badinput
@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.parametrize("value", [*INVALID_MARKERS, ["os_name"], None])
def test_invalid_markers(value: object) -> None:
    problem = marker_problem(value)
    assert problem is not None and one_line(problem) == problem


@pytest.mark.parametrize("value", [SHA, "sha384:" + "a" * 96, "sha512:" + "f" * 128])
def test_valid_hashes(value: str) -> None:
    assert hash_problem(value) is None


@pytest.mark.badinput
@pytest.mark.hostile("grammars (names, versions, markers, hashes)")
@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha256:" + "A" * 64,  # pip compares lowercase hex
        "md5:" + "0" * 32,
        "sha1:" + "0" * 40,
        SHA + "\n",
        SHA + "\n--extra-index-url http://x/",
        "sha256 " + "0" * 64,
        "",
        256,
    ],
)
def test_invalid_hashes(value: object) -> None:
    assert hash_problem(value) is not None


@pytest.mark.security
@pytest.mark.hostile("poetry.lock fields")
@pytest.mark.parametrize(
    "pin",
    [
        Pin("pkg\n-r /etc/shadow", "1.0", None, (SHA,), "main"),
        Pin("pkg", "1.0\n--extra-index-url http://x/", None, (SHA,), "main"),
        Pin("pkg", "1.0", 'os_name == "nt"\n-r /etc/shadow', (SHA,), "main"),
        Pin("pkg", "1.0", 'os_name == "nt" # ', (SHA,), "main"),
        Pin("pkg", "1.0", None, (SHA + "\n-r x",), "main"),
        Pin("pkg", "1.0", None, ("--hash=x",), "main"),
        Pin("-e", "1.0", None, (SHA,), "main"),
    ],
)
def test_a_pin_that_would_break_the_requirements_file_is_refused_when_rendered(pin: Pin) -> None:
    """Defence in depth: Pin.requirement refuses what read_lock already refused, should a Pin ever be built
    from unchecked values."""
    with pytest.raises(LockError, match=r"a field would break the requirements file$") as caught:
        pin.requirement()
    assert one_line(caught.value.message) == caught.value.message


@pytest.mark.security
@pytest.mark.hostile("group names (pyproject, --groups)")
@pytest.mark.parametrize("groups", [["notebook", "../../../../../victim"], ["notebook", "x\nRUN id"], ["a/b"]])
def test_a_variant_directory_stays_under_nbenv_variants(workspace: Path, groups: list[str]) -> None:
    """Item 15: build_plan's own check, whatever group names reach it."""
    ws = Workspace(workspace)
    env = Loader(ws).environment("base")
    lock = Lock("poetry.lock", "2.1", "h", (LockedPackage("x", "1.0", frozenset({"notebook"}), {}, (SHA,), False),))
    with pytest.raises(SpecError, match=r"^--groups: "):
        build_plan(env, lock=lock, config=ws.config, python_path=[], parent=None, groups=groups)


def test_a_variant_directory_of_valid_groups(workspace: Path) -> None:
    ws = Workspace(workspace)
    env = Loader(ws).environment("base")
    lock = Lock("poetry.lock", "2.1", "h", ())
    plan = build_plan(env, lock=lock, config=ws.config, python_path=[], parent=None, groups=["notebook", "models"])
    assert plan.out_dir == ".nbenv/variants/base/models-notebook"


@pytest.mark.badinput
@pytest.mark.hostile("malformed, deep or special files (lock, specs)")
def test_extends_chains_up_to_the_limit_resolve_and_longer_ones_are_one_error(workspace: Path) -> None:
    for index in range(MAX_EXTENDS_DEPTH + 2):
        parent = f'extends = "e{index - 1}"' if index else 'groups = ["notebook"]'
        (workspace / f"environments/e{index}.toml").write_text(f'spec_version = 1\nname = "e{index}"\n{parent}\n')
    loader = Loader(Workspace(workspace))
    assert len(loader.environment(f"e{MAX_EXTENDS_DEPTH}").lineage) == MAX_EXTENDS_DEPTH
    with pytest.raises(SpecError, match=rf"extends: e{MAX_EXTENDS_DEPTH + 1} extends a chain of more than"):
        Loader(Workspace(workspace)).environment(f"e{MAX_EXTENDS_DEPTH + 1}")


@pytest.mark.parametrize(
    "text,shown",
    [
        ("plain ä ☃", "plain ä ☃"),
        ("a\nb", "a\\nb"),
        ("a\x85b", "a\\x85b"),
        ("a\u2028b", "a\\u2028b"),
        ("a\udc85b", "a\\udc85b"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
    ],
)
def test_an_error_line_escapes_what_would_break_it(text: str, shown: str) -> None:
    assert one_line(text) == shown
    assert len(one_line(text).splitlines()) == 1


def test_a_key_with_a_trailing_newline_is_shown_quoted() -> None:
    assert format_loc(("env", "TZ\n")) == 'env."TZ\\n"'
    assert format_loc(("env", "TZ")) == "env.TZ"


@pytest.mark.security
def test_a_requirements_header_is_printable_ascii_comment_lines() -> None:
    text = requirements_text([], header="group 'a'\nRUN id\u2028-r /etc/shadow\x85\x1b[2J\u00e4")
    assert text == "# group 'a'\n# RUN id\n# -r /etc/shadow\n# \\x1b[2J\\xe4\n"


HOSTILE_TEXT = st.one_of(
    st.sampled_from(["../../../../../victim", "x\nRUN id", "a\u2028b", "/etc", "a/../..", "", "a\x85", "src\n"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
GOOD_TEXT = st.sampled_from(["notebook", "dev", "models", "src", "lib", "pkg", "a.b_c-d"])
WRONG_TYPE = st.one_of(st.integers(), st.booleans(), st.lists(HOSTILE_TEXT, max_size=2))


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` nine times in ten (st.one_of would pick each flattened branch equally often)."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 0 else good)


PYPROJECT_TEXT = mostly(GOOD_TEXT, HOSTILE_TEXT)
PYPROJECT_VALUE = mostly(PYPROJECT_TEXT, WRONG_TYPE)


@pytest.mark.badinput
@pytest.mark.hostile("group names (pyproject, --groups)")
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    poetry_groups_table=mostly(st.dictionaries(PYPROJECT_TEXT, st.just({}), max_size=3), WRONG_TYPE),
    dependency_groups=mostly(st.dictionaries(PYPROJECT_TEXT, st.just([]), max_size=2), WRONG_TYPE),
    packages=mostly(
        st.lists(
            mostly(
                st.dictionaries(st.sampled_from(["include", "from", "format"]), PYPROJECT_VALUE, max_size=3), WRONG_TYPE
            ),
            max_size=2,
        ),
        WRONG_TYPE,
    ),
)
def test_pyproject_group_names_and_package_dirs_are_valid_or_one_spec_error(
    tmp_path_factory: pytest.TempPathFactory, poetry_groups_table: Any, dependency_groups: Any, packages: Any
) -> None:
    """Whatever pyproject.toml holds in [tool.poetry.group], [dependency-groups] and [tool.poetry]
    packages: the group names nbenv uses are valid names and the source dirs relative paths inside the
    repository without control characters, or reading them is one SpecError line."""
    root = tmp_path_factory.mktemp("repo")
    doc = {
        "tool": {"poetry": {"group": poetry_groups_table, "packages": packages}},
        "dependency-groups": dependency_groups,
    }
    (root / "pyproject.toml").write_text(tomlkit.dumps(doc))
    ws = Workspace(root)
    try:
        groups = poetry_groups(ws)
        dirs = project_source_dirs(ws)
    except SpecError as exc:
        assert one_line(exc.message) == exc.message and exc.message.startswith("pyproject.toml"), exc.message
        return
    assert all(name_problem(g) is None for g in groups)
    for directory in dirs:
        assert one_line(directory) == directory and not directory.startswith(("/", "..")), directory
