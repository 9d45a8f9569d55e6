"""`up` skips DVC when nothing changed since the last pull: the signature it compares."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nbenv.datasync import _signature, pull_unless_unchanged, stamp_path


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "data/processed/pems").mkdir(parents=True)
    (tmp_path / "data/processed/pems/part-0.parquet").write_bytes(b"x" * 10)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    return tmp_path


def test_the_signature_changes_with_the_pointers_or_the_files(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    targets = ["data/processed/pems"]
    first = _signature(root, targets)
    assert _signature(root, targets) == first, "stable when nothing changed"
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    second = _signature(root, targets)
    assert second != first, "a new dvc.lock (e.g. after git checkout) means a real pull"
    part = root / "data/processed/pems/part-0.parquet"
    stat = part.stat()
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert _signature(root, targets) != second, "a touched data file means a real pull"
    third = _signature(root, targets)
    part.unlink()
    assert _signature(root, targets) != third, "a deleted data file means a real pull"


def test_a_matching_stamp_skips_dvc_entirely(tmp_path: Path) -> None:
    """No DVC repository here: if the pull were attempted it would fail, so None proves the skip."""
    root = workspace(tmp_path)
    targets = ["data/processed/pems"]
    stamps = root / ".nbenv/cache"
    stamps.mkdir(parents=True)
    stamp_path(stamps, targets).write_text(json.dumps(_signature(root, targets)))
    assert pull_unless_unchanged(root, targets, stamp_dir=stamps, say=lambda _: None) is None
