"""`nbenv run`'s default outputs (NAME.out.ipynb) never make a user's tree dirty (issue 15, item 2).

Found by tests/e2e/test_adopt.py: in a project whose .gitignore knows nothing of nbenv, `nbenv run`
left `?? notebooks/report.out.ipynb`, and `nbenv image push` then refused ("the working tree has
uncommitted changes"). nbenv now adds `*.out.ipynb` to the clone's `$GIT_DIR/info/exclude` (never
committed, the project's .gitignore untouched). Real git throughout.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nbenv.adapters.git import EXECUTED_NOTEBOOKS, exclude_locally, git_state

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=GIT_ENV, check=True)
    return result.stdout


def repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    (root / ".gitignore").write_text("__pycache__/\n")
    (root / "notebooks").mkdir()
    (root / "notebooks/report.ipynb").write_text("{}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)


@pytest.mark.fault
@pytest.mark.parametrize(
    "output", ["notebooks/report.out.ipynb", "report.out.ipynb", "deep/er/x y.out.ipynb", "notebooks/.h.out.ipynb"]
)
def test_executed_notebooks_leave_the_tree_clean_and_push_allowed(tmp_path: Path, output: str) -> None:
    root = repo(tmp_path / "r")
    before = (root / ".gitignore").read_text()
    assert exclude_locally(root) == root / ".git/info/exclude"
    (root / output).parent.mkdir(parents=True, exist_ok=True)
    (root / output).write_text("{}\n")
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    state = git_state(root)
    assert not state.dirty and state.changed == (), "image push would not refuse"
    assert (root / ".gitignore").read_text() == before, "the project's own .gitignore is untouched"


@pytest.mark.fault
def test_the_line_is_added_once(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    exclude = root / ".git/info/exclude"
    exclude.write_text("# git's template\n*.tmp")  # no final newline
    assert exclude_locally(root) == exclude
    assert exclude_locally(root) is None and exclude_locally(root) is None
    lines = exclude.read_text().splitlines()
    assert lines.count(EXECUTED_NOTEBOOKS) == 1 and "*.tmp" in lines, "existing lines kept, ours on a line of its own"


@pytest.mark.fault
@pytest.mark.parametrize("layout", ["no-info-dir", "worktree", "subdirectory"])
def test_other_repository_layouts(tmp_path: Path, layout: str) -> None:
    root = repo(tmp_path / "r")
    where = root
    if layout == "no-info-dir":
        (root / ".git/info/exclude").unlink()
        (root / ".git/info").rmdir()
    elif layout == "worktree":  # `.git` is a file; excludes are the main repository's (shared by worktrees)
        git(root, "worktree", "add", "-q", str(tmp_path / "wt"))
        where = tmp_path / "wt"
    else:
        where = root / "notebooks"
    assert exclude_locally(where) is not None
    (where / "n.out.ipynb").write_text("{}\n")
    assert git(where, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.fault
def test_outside_a_repository_nothing_happens(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert exclude_locally(tmp_path / "plain") is None
    assert list((tmp_path / "plain").iterdir()) == []


@pytest.mark.security
@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_an_exclude_that_is_not_a_plain_file_is_left_alone(tmp_path: Path, kind: str) -> None:
    root = repo(tmp_path / "r")
    exclude = root / ".git/info/exclude"
    exclude.unlink()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    if kind == "symlink":
        exclude.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(exclude)  # opened non-blocking: nothing hangs
    else:
        exclude.mkdir()
    assert exclude_locally(root) is None
    assert victim.read_text() == "precious\n", "never written through a symlink"


def test_only_nbenvs_own_pattern_is_ever_written(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    with pytest.raises(ValueError):
        exclude_locally(root, "!important\n*")
