"""poetry.lock selection: groups, per-group markers, hashes, layers, and the checks on the lock itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nbenv.errors import LockError
from nbenv.lock import Lock, LockedPackage, canonical, content_hash, read_lock, requirements_text
from tests.conftest import REPO


def package(name: str, groups: set[str], markers: dict[str, str] | str = "*", optional: bool = False) -> LockedPackage:
    per_group = {g: markers for g in groups} if isinstance(markers, str) else markers
    return LockedPackage(name, "1.0", frozenset(groups), per_group, (f"sha256:{name}",), optional)


def test_marker_is_dropped_when_any_selected_group_needs_the_package_always() -> None:
    pkg = package("colorama", {"dev", "notebook"}, {"dev": 'sys_platform == "win32"'})
    assert pkg.marker_for(["dev"]) == 'sys_platform == "win32"'
    assert pkg.marker_for(["notebook"]) is None
    assert pkg.marker_for(["dev", "notebook"]) is None


def test_markers_of_several_groups_are_or_ed() -> None:
    pkg = package("x", {"a", "b"}, {"a": 'python_version < "3.12"', "b": 'sys_platform == "linux"'})
    assert pkg.marker_for(["a", "b"]) == '(python_version < "3.12") or (sys_platform == "linux")'


def test_pins_follow_groups_layers_and_skip_parent_and_optional_packages() -> None:
    lock = Lock(
        "poetry.lock",
        "2.1",
        "h",
        (
            package("jupyterlab", {"notebook"}),
            package("numpy", {"notebook", "models"}),
            package("scikit-learn", {"models"}),
            package("pytest", {"dev"}),
            package("extra-only", {"main"}, optional=True),
        ),
    )
    pins = lock.pins(["notebook", "models"])
    assert [(p.name, p.layer) for p in pins] == [
        ("jupyterlab", "notebook"),
        ("numpy", "notebook"),
        ("scikit-learn", "models"),
    ]
    child = lock.pins(["notebook", "models"], exclude_groups=["notebook"])
    assert [p.name for p in child] == ["scikit-learn"]
    assert lock.pins(["main"]) == []


def test_requirement_lines_carry_version_marker_and_every_hash() -> None:
    pkg = LockedPackage(
        "Foo_Bar", "2.0", frozenset({"main"}), {"main": 'os_name == "posix"'}, ("sha256:a", "sha256:b"), False
    )
    lock = Lock("poetry.lock", "2.1", "h", (pkg,))
    text = requirements_text(lock.pins(["main"]), header="hello")
    assert text == '# hello\nFoo_Bar==2.0 ; os_name == "posix" \\\n    --hash=sha256:a \\\n    --hash=sha256:b\n'


def test_canonical_names() -> None:
    assert canonical("Foo_Bar.baz") == "foo-bar-baz"


def test_content_hash_matches_the_one_poetry_wrote_for_this_repo() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    lock = tomllib.loads((REPO / "poetry.lock").read_text())
    assert content_hash(pyproject) == lock["metadata"]["content-hash"]


def test_the_repo_lock_is_fresh_and_pins_the_notebook_stack() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    lock = read_lock(REPO / "poetry.lock", pyproject)
    notebook = {canonical(p.name) for p in lock.pins(["notebook"])}
    assert {"jupyterlab", "ipykernel", "pandas", "pyarrow"} <= notebook
    assert "scikit-learn" not in notebook
    assert "pytest" not in notebook
    assert all(p.hashes for p in lock.pins(["notebook", "models"]))


@pytest.mark.badinput
def test_a_package_from_a_git_source_is_refused(tmp_path: Path) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    text = (REPO / "poetry.lock").read_text()
    first = text.index("[[package]]")
    git_entry = (
        '[[package]]\nname = "homemade"\nversion = "0.1"\ndescription = ""\noptional = false\n'
        'python-versions = "*"\ngroups = ["main"]\nfiles = []\n\n'
        '[package.source]\ntype = "git"\nurl = "https://git.invalid/homemade.git"\nreference = "HEAD"\n'
        'resolved_reference = "abc"\n\n'
    )
    (tmp_path / "poetry.lock").write_text(text[:first] + git_entry + text[first:])
    with pytest.raises(LockError, match=r"^poetry\.lock:\d+: package\.source: homemade comes from a git source"):
        read_lock(tmp_path / "poetry.lock", pyproject)
