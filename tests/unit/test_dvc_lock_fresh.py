"""The demo pipeline's dvc.lock records the code its stages ran: when that code changes and the lock
is not refreshed, a fresh clone re-runs the pipeline and rewrites dvc.lock, so a new user's first
images are labelled dirty. Refresh it with `dvc repro` (the data is deterministic) and commit it."""

from __future__ import annotations

import hashlib

import yaml

from tests.conftest import REPO


def test_every_file_dependency_in_dvc_lock_matches_the_tree() -> None:
    lock = yaml.safe_load((REPO / "dvc.lock").read_text(encoding="utf-8"))
    stale = []
    checked = 0
    for stage, entry in lock["stages"].items():
        for dep in entry.get("deps", []):
            path = REPO / dep["path"]
            if not path.is_file() or str(dep.get("md5", "")).endswith(".dir"):
                continue  # data directories: not in a clean checkout
            checked += 1
            if hashlib.md5(path.read_bytes()).hexdigest() != dep["md5"]:
                stale.append(f"{stage}: {dep['path']}")
    assert checked >= 3, "the lock records the pipeline's code"
    assert not stale, f"dvc.lock is stale for {stale}: run `dvc repro` and commit dvc.lock"
