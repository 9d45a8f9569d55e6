"""The cheap look at `.dvcignore` before DVC is opened (nbenv.adapters.dvc._may_hide) is sound: whenever it
says a rule cannot hide a DVC file, DVC's own DvcIgnoreFilter agrees. Only then is opening DVC skipped,
which costs about 0.3 s on every spec load of a repository whose `.dvcignore` holds rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from nbenv.adapters.dvc import _may_hide

BIN = Path(sys.executable).parent

RULES = [
    "*.tmp",
    ".venv/",
    "/data",
    "data/",
    "data/*",
    "data/**",
    "**/a.dvc",
    "a.dvc",
    "/a.dvc",
    "d?ta/a.dvc",
    "[d]ata/a.dvc",
    "*.DVC",
    "data/a.dvc/",
    "*\n!data/a.dvc",
    "data\n!data/a.dvc",
    "other/\n!other/a.dvc",
    "\\#a.dvc",
    "a.dv[!c]",
    "data/b*",
    "dat",
]
PATHS = ["data/a.dvc", "a.dvc", "deep/data/a.dvc"]


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dvcignore")
    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=root, check=True)
    return root


def _dvc_ignores(root: Path, path: str) -> bool:
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        return bool(repo.dvcignore.is_ignored_file(str(root / path)))
    finally:
        repo.close()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("rules", RULES)
def test_the_cheap_look_never_misses_a_rule_that_dvc_applies(dvc_repo: Path, rules: str, path: str) -> None:
    (dvc_repo / ".dvcignore").write_text(rules + "\n")
    target = dvc_repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("outs: []\n")
    ignored = _dvc_ignores(dvc_repo, path)
    may_hide = _may_hide(dvc_repo / ".dvcignore", PurePosixPath(path))
    assert may_hide or not ignored, f"DVC ignores {path} under {rules!r}, the cheap look said it could not"


def test_comments_and_a_missing_file_hide_nothing(tmp_path: Path) -> None:
    assert not _may_hide(tmp_path / ".dvcignore", PurePosixPath("data/a.dvc"))
    (tmp_path / ".dvcignore").write_text("# Add patterns of files dvc should ignore\n\n")
    assert not _may_hide(tmp_path / ".dvcignore", PurePosixPath("data/a.dvc"))
    (tmp_path / ".dvcignore").write_text(".dvc-storage/\n.venv/\n.nbenv/\n")  # this repository's own
    assert not _may_hide(tmp_path / ".dvcignore", PurePosixPath("dvc.yaml"))
