"""Lock-field fuzzer (issue 13, items 6 and 17): hypothesis over every field of a `[[package]]` entry.

Whatever a poetry.lock entry holds (hostile strings with newlines, `--` options, `#`, `${VAR}`,
unicode line separators, control characters, wrong types, missing keys), reading it gives either one
LockError line (exit 4 through the CLI) or requirements whose every line matches a strict whitelist
grammar: no injected option line, no line break inside a field. Derandomized, no example database.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbenv.errors import LockError
from nbenv.lock import content_hash, main, read_lock, requirements_text
from tests.conftest import run_cli

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
PYPROJECT: dict[str, Any] = {"tool": {"poetry": {"dependencies": {"python": "^3.11"}}}}
SHA = "sha256:" + "ab" * 32

INJECTIONS = [
    "\n--extra-index-url http://127.0.0.1:9/simple",
    "\n-r /etc/shadow",
    "\r-r /etc/shadow",
    "\u2028-r /etc/shadow",
    "\u2029--index-url http://127.0.0.1:9/",
    "\x85-e .",
    "\x0b--trusted-host x",
    "\x0c-c /etc/passwd",
    " \\\n--extra-index-url http://127.0.0.1:9/",
    " #",
    " # comment",
    "${HOME}",
    "\\",
    "\x00",
    "\t",
    "--hash=sha256:" + "0" * 64,
    " ; ",
    "@ file:///etc/passwd",
    "[extra]",
    "\u202e",
    "\u212a",  # the Kelvin sign: [a-z] with re.IGNORECASE alone matches it
    "\u0131",  # a dotless i
    "\u0661",  # an Arabic-Indic digit: \d alone matches it
]
GOOD = {
    "name": ["pkg", "Foo_Bar", "a", "zope.interface", "x-1"],
    "version": ["1.0", "2024.1.1", "1.0rc1", "1.0.post2", "1.0.dev3", "1!2.0", "1.0+local.7", "v1.0"],
    "marker": [
        'python_version < "3.12"',
        'sys_platform == "win32" or sys_platform == "emscripten"',
        "(os_name == 'nt') and platform_machine != \"x86_64\"",
        'extra == "socks"',
        '"linux" in sys_platform',
        'platform_release not in "5.10"',
    ],
    "group": ["main", "dev", "notebook", "a.b_c-d"],
    "hash": [SHA, "sha384:" + "c" * 96, "sha512:" + "d" * 128],
}
characters = st.characters(blacklist_categories=("Cs",))


def hostile(kind: str) -> st.SearchStrategy[str]:
    """A valid value of `kind`, with an injection spliced in somewhere, or random text."""
    good = st.sampled_from(GOOD[kind])
    spliced = st.tuples(good, st.sampled_from(INJECTIONS), st.integers(0, 40)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    )
    return weighted((5, good), (3, spliced), (1, st.text(characters, max_size=30)), (1, st.sampled_from(INJECTIONS)))


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of `choices`, each as often as its weight (st.one_of would pick uniformly)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda n: pool[n])


wrong_type = st.one_of(
    st.integers(-5, 10**30),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.text(characters, max_size=5), max_size=3),
    st.dictionaries(st.text(characters, min_size=1, max_size=5), st.text(characters, max_size=5), max_size=3),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return weighted((4, strategy), (1, wrong_type))


file_entry = st.one_of(
    st.fixed_dictionaries({"file": st.just("pkg-1.0.tar.gz"), "hash": maybe(hostile("hash"))}),
    st.fixed_dictionaries({"file": st.text(characters, max_size=10)}),  # no hash
    st.text(characters, max_size=10),  # a string, not a table (item 17)
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": maybe(hostile("name")),
    "version": maybe(hostile("version")),
    "groups": st.one_of(st.lists(maybe(hostile("group")), max_size=3), wrong_type),
    "markers": st.one_of(
        maybe(hostile("marker")),
        st.dictionaries(hostile("group"), maybe(hostile("marker")), max_size=3),
    ),
    "files": st.one_of(st.lists(file_entry, max_size=3), wrong_type),
    "source": st.one_of(
        st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["legacy", "git", "url", "file"]), wrong_type)}),
        st.just({}),
        st.text(characters, max_size=10),  # a string, not a table (item 17)
    ),
    "optional": maybe(st.booleans()),
}


@st.composite
def package_entries(draw: st.DrawFn) -> dict[str, Any]:
    """A valid entry with some fields replaced by hostile values, and maybe some removed."""
    entry: dict[str, Any] = {
        "name": "pkg",
        "version": "1.0",
        "description": "",
        "optional": False,
        "python-versions": "*",
        "groups": ["main", "dev"],
        "files": [{"file": "pkg-1.0.tar.gz", "hash": SHA}],
    }
    for field in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=3, unique=True)):
        entry[field] = draw(FIELDS[field])
    missing = draw(st.sampled_from([None] * 8 + ["name", "version", "groups", "files"]))
    entry.pop(missing or "-", None)
    return entry


def lock_text(*entries: dict[str, Any], metadata: Any = None) -> str:
    doc = tomlkit.document()
    doc.add(tomlkit.comment("This file is automatically @generated by Poetry 2.5.1 and should not be changed by hand."))
    packages = tomlkit.aot()
    for entry in entries:
        packages.append(tomlkit.item(entry))
    doc.add("package", packages)
    doc.add(
        "metadata",
        metadata
        if metadata is not None
        else {"lock-version": "2.1", "python-versions": "^3.11", "content-hash": content_hash(PYPROJECT)},
    )
    return tomlkit.dumps(doc)


HASH_LINE = r"    --hash=(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})"
REQUIREMENT_LINES = [
    re.compile(r"# [ -~]*"),  # a header comment, printable ASCII only
    re.compile(
        r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?==v?[0-9][0-9A-Za-z.!+_-]*"
        r"(?: ; [ !\"%-\[\]-~]+)? \\"  # the marker: printable ASCII without # $ and backslash
    ),
    re.compile(HASH_LINE + r" \\"),
    re.compile(HASH_LINE),
]
BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def assert_clean_requirements(text: str) -> None:
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert lines == text.splitlines(), "a line break other than \\n (pip splits at U+2028, U+0085, \\r, ...)"
    for line in lines:
        assert any(rule.fullmatch(line) for rule in REQUIREMENT_LINES), f"not a whitelisted line: {line!r}"
        assert not line.startswith("-"), f"an option line: {line!r}"


def assert_one_line(error: LockError) -> None:
    assert not BREAKS.search(error.message), repr(error.message)
    assert error.message.startswith("poetry.lock"), error.message
    assert error.hint is None or not BREAKS.search(error.hint)


def check(tmp_path: Path, text: str) -> None:
    (tmp_path / "poetry.lock").write_text(text, encoding="utf-8")
    try:
        lock = read_lock(tmp_path / "poetry.lock", PYPROJECT, cache_root=tmp_path)
    except LockError as exc:
        assert_one_line(exc)
        return
    groups = sorted({g for p in lock.packages for g in p.groups}) or ["main"]
    for group in groups:
        assert_clean_requirements(requirements_text(lock.pins([group]), header=f"group '{group}'"))
    assert_clean_requirements(requirements_text(lock.pins(groups), header="all"))


@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.hostile("poetry.lock fields (fuzzer)")
@FUZZ
@given(entry=package_entries())
def test_a_hostile_package_entry_is_one_lock_error_or_clean_requirements(tmp_path: Path, entry: dict[str, Any]) -> None:
    check(tmp_path, lock_text(entry))


@pytest.mark.badinput
@pytest.mark.hostile("poetry.lock fields (fuzzer)")
@FUZZ
@given(
    metadata=st.one_of(
        wrong_type,
        st.fixed_dictionaries(
            {"lock-version": st.one_of(st.sampled_from(["2.1", "2.0", "1" * 5000, "2.1\n-r x"]), wrong_type)}
        ),
    )
)
def test_a_hostile_metadata_table_is_one_lock_error(tmp_path: Path, metadata: Any) -> None:
    (tmp_path / "poetry.lock").write_text(lock_text(metadata=metadata))
    with pytest.raises(LockError) as caught:
        read_lock(tmp_path / "poetry.lock", PYPROJECT)
    assert_one_line(caught.value)


GOOD_ENTRY = {
    "name": "pkg",
    "version": "1.0",
    "optional": False,
    "groups": ["main"],
    "files": [{"file": "pkg-1.0.tar.gz", "hash": SHA}],
}


def test_the_fuzzer_s_base_entry_is_valid(tmp_path: Path) -> None:
    """The fuzzer starts from a lock nbenv accepts, so a refusal is caused by the hostile field."""
    (tmp_path / "poetry.lock").write_text(lock_text(GOOD_ENTRY))
    lock = read_lock(tmp_path / "poetry.lock", PYPROJECT)
    assert requirements_text(lock.pins(["main"]), header="h") == f"# h\npkg==1.0 \\\n    --hash={SHA}\n"


# Item 6's reproduction, field by field, and item 17's wrong types: each is refused with one line.
ITEM_6_AND_17 = {
    "version-newline-index": ({"version": "1.0\n--extra-index-url http://127.0.0.1:9/simple"}, "version"),
    "version-newline-r": ({"version": "1.0\n-r /etc/shadow"}, "version"),
    "name-newline-index": ({"name": "pkg\n--extra-index-url http://127.0.0.1:9/simple"}, "name"),
    "name-trailing-newline": ({"name": "pkg\n"}, "name"),
    "markers-newline-r": ({"markers": 'python_version >= "3"\n-r /etc/shadow'}, "markers"),
    "markers-table-newline": ({"markers": {"main": 'os_name == "nt"\n-r /etc/shadow'}}, "markers"),
    "markers-comment": ({"markers": 'os_name == "x #" and os_name != "y"'}, "markers"),
    "hash-newline-index": (
        {"files": [{"file": "f", "hash": f"{SHA}\n--extra-index-url http://127.0.0.1:9/"}]},
        r"files\[0\]\.hash",
    ),
    "hash-md5": ({"files": [{"file": "f", "hash": "md5:" + "0" * 32}]}, r"files\[0\]\.hash"),
    "hash-short": ({"files": [{"file": "f", "hash": "sha256:abc"}]}, r"files\[0\]\.hash"),
    "source-string": ({"source": "legacy"}, "source"),
    "files-strings": ({"files": ["sha256:abc"]}, r"files\[0\]"),
    "markers-list": ({"markers": ['os_name == "nt"']}, "markers"),
    "no-version": ({"version": None}, "version"),
    "groups-string": ({"groups": "main"}, "groups"),
    "group-traversal": ({"groups": ["../../x"]}, "groups"),
    "optional-string": ({"optional": "no"}, "optional"),
}


@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.hostile("poetry.lock fields")
@pytest.mark.parametrize("change,field", ITEM_6_AND_17.values(), ids=list(ITEM_6_AND_17))
def test_item_6_and_17_reproductions_are_one_lock_error(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    entry = {**GOOD_ENTRY, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    (tmp_path / "poetry.lock").write_text(lock_text(entry))
    with pytest.raises(LockError) as caught:
        read_lock(tmp_path / "poetry.lock", PYPROJECT)
    assert_one_line(caught.value)
    assert re.match(rf"^poetry\.lock:\d+: package\.{field}: ", caught.value.message), caught.value.message


@pytest.mark.badinput
@pytest.mark.hostile("poetry.lock fields")
def test_metadata_as_a_string_is_one_lock_error(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text('metadata = "2.1"\n')
    with pytest.raises(LockError, match=r"^poetry\.lock:1: metadata: must be a table$"):
        read_lock(tmp_path / "poetry.lock", PYPROJECT)


@pytest.mark.badinput
@pytest.mark.hostile("malformed, deep or special files (lock, specs)")
@pytest.mark.parametrize(
    "raw,expect",
    [
        (b"\xff\xfe[[package]]\n", r"^poetry\.lock: not UTF-8 text \(byte 0\)$"),
        (b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", r"^poetry\.lock: invalid TOML: nested too deeply$"),
        (
            b"x = " + b"{a = " * 50_000 + b"1" + b"}" * 50_000 + b"\n",
            r"^poetry\.lock: invalid TOML: nested too deeply$",
        ),
    ],
    ids=["not-utf8", "nested-arrays-100k", "nested-tables-50k"],
)
def test_an_unreadable_lock_is_one_lock_error(tmp_path: Path, raw: bytes, expect: str) -> None:
    (tmp_path / "poetry.lock").write_bytes(raw)
    with pytest.raises(LockError, match=expect):
        read_lock(tmp_path / "poetry.lock", PYPROJECT)


@pytest.mark.badinput
@pytest.mark.hostile("poetry.lock fields")
def test_the_bootstrap_cli_prints_one_lock_error_and_exits_4(tmp_path: Path) -> None:
    """`python -m nbenv.lock` (scripts/bootstrap) on item 6's lock: exit 4, one line + hint, no output."""
    (tmp_path / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.11"\n')
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text()) == PYPROJECT
    (tmp_path / "poetry.lock").write_text(lock_text({**GOOD_ENTRY, "version": "1.0\n-r /etc/shadow"}))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--groups", "main", "--root", str(tmp_path)])
    assert code == 4
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: poetry.lock:") and lines[1].startswith("  hint: ")


CLI_FUZZ = settings(FUZZ, max_examples=60)
NOTEBOOK_STACK = [
    {**GOOD_ENTRY, "name": name, "groups": ["notebook"], "files": [{"file": f"{name}.whl", "hash": SHA}]}
    for name in ("ipykernel", "jupyterlab")
]


@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.hostile("poetry.lock fields through the CLI (fuzzer)")
@CLI_FUZZ
@given(entry=package_entries())
def test_through_the_cli_a_hostile_entry_is_exit_4_with_one_line_or_clean_generated_requirements(
    workspace: Path, entry: dict[str, Any]
) -> None:
    """`nbenv generate base` on a lock holding the hostile entry (in base's group `notebook`)."""
    if isinstance(entry.get("groups"), list) and entry["groups"] == ["main", "dev"]:
        entry["groups"] = ["notebook"]
    pyproject = tomllib.loads((workspace / "pyproject.toml").read_text())
    text = lock_text(*NOTEBOOK_STACK, entry).replace(content_hash(PYPROJECT), content_hash(pyproject))
    (workspace / "poetry.lock").write_text(text)
    shutil.rmtree(workspace / "docker", ignore_errors=True)
    result = run_cli("generate", "base", cwd=workspace)
    if result.code == 0:
        generated = sorted((workspace / "docker" / "base" / "requirements").glob("*.txt"))
        assert generated, result.out
        for path in generated:
            assert_clean_requirements(path.read_text(encoding="utf-8"))
        return
    assert result.code == 4, result.err
    lines = result.err_lines
    assert 1 <= len(lines) <= 2 and lines[0].startswith("poetry.lock:"), result.err
    assert len(lines) == 1 or lines[1].startswith("  hint: ")
    assert not (workspace / "docker").exists(), "a refused lock writes nothing"
