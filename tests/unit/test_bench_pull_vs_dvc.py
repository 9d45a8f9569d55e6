"""benchmarks/pull_vs_dvc.py empties the cache of exactly what it measures: the targets' objects (each file's
and each directory's manifest), never the rest of the cache of the repository it runs in, which may hold the
only copy of other data. Real git + DVC in a temporary repository, the benchmark's own functions and main."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO
from tests.unit.test_data_messages import _dvc, data_repo

pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")


def _cache(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (root / ".dvc" / "cache").rglob("*")
        if p.is_file()
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Environment x's data (a directory of two files, a file), not pushed yet; beside it data the benchmark
    does not measure: another output, and an older version of it that only the cache holds (never pushed)."""
    root = data_repo(tmp_path)
    (root / "other").mkdir()
    (root / "other" / "only-copy.txt").write_text("an older version nobody pushed\n")
    _dvc("add", "-q", "other/only-copy.txt", cwd=root)
    (root / "other" / "only-copy.txt").write_text("the current version\n")
    _dvc("add", "-q", "other/only-copy.txt", cwd=root)
    return root


def _benchmark(root: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("pull_vs_dvc", REPO / "benchmarks" / "pull_vs_dvc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", root)
    return module


@pytest.mark.fault
def test_the_benchmark_removes_only_the_objects_of_its_targets(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _benchmark(repo, monkeypatch)
    before = _cache(repo)
    assert len(before) == 6, sorted(before)  # 1.txt, 2.txt, data/a's manifest, b.csv, other's two versions
    monkeypatch.setattr(sys, "argv", ["pull_vs_dvc.py", "x", "--runs", "2"])
    # Not capsys: DVC's first import binds its log handlers to the streams of the moment, and capsys closes its own.
    with contextlib.redirect_stdout(io.StringIO()) as out:
        bench.main()
    table = out.getvalue()
    assert "| nbenv data pull x |" in table and "| dvc pull (same targets) |" in table and "x |" in table
    assert "ratio nbenv / dvc" in table
    assert _cache(repo) == before, "every object is back (the pulls fetched them) and nothing else was touched"
    objects = bench.safe_to_wipe(["data/a", "data/b.csv"])
    assert len(objects) == 4 and any(p.name.endswith(".dir") for p in objects), objects
    bench.wipe(["data/a", "data/b.csv"], objects)
    left = _cache(repo)
    assert len(left) == 2 and all(before[k] == v for k, v in left.items()), "other's versions stay, untouched"
    assert (repo / "other" / "only-copy.txt").read_text() == "the current version\n"
    assert not (repo / "data" / "a").exists() and not (repo / "data" / "b.csv").exists()


@pytest.mark.fault
def test_a_modified_target_stops_the_benchmark_before_anything_is_deleted(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = _benchmark(repo, monkeypatch)
    _dvc("push", "-q", cwd=repo)
    (repo / "data" / "b.csv").write_text("a change nobody committed\n")
    before = _cache(repo)
    with pytest.raises(SystemExit, match=r"^data/b\.csv: modified in the workspace"):
        bench.safe_to_wipe(["data/a", "data/b.csv"])
    assert _cache(repo) == before and (repo / "data" / "b.csv").read_text() == "a change nobody committed\n"
