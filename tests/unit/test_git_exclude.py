"""What `nbenv run` writes beside a notebook (NAME.out.ipynb) leaves a user's tree clean (issue 15,
'Ignored files'): the pattern goes into git's own, never committed `info/exclude`, with real git
repositories and worktrees, and never through a symlink or a made-up `gitdir:` (a hostile checkout)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nbenv.adapters.git import exclude_locally
from nbenv.running.notebook import OUTPUT_PATTERN, default_output


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    _git("init", "-q", cwd=path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init", cwd=path)
    (path / "notebooks").mkdir()
    return path


def _an_output(root: Path) -> Path:
    output = default_output(root / "notebooks" / "analysis.ipynb")
    output.write_text("{}\n")
    return output


def test_the_default_output_name_is_what_the_pattern_ignores() -> None:
    assert default_output(Path("notebooks/a.ipynb")).name == "a.out.ipynb"
    assert Path("a.out.ipynb").match(OUTPUT_PATTERN)


def test_an_output_leaves_the_tree_clean_and_the_line_is_added_once(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    exclude = root / ".git" / "info" / "exclude"
    before = exclude.read_text()
    _an_output(root)
    assert _git("status", "--porcelain", cwd=root) == "?? notebooks/\n"
    assert exclude_locally(root, OUTPUT_PATTERN)
    assert _git("status", "--porcelain", cwd=root) == ""
    assert exclude_locally(root, OUTPUT_PATTERN)
    text = exclude.read_text()
    assert text.startswith(before) and text.count(OUTPUT_PATTERN) == 1, "appended once, the rest kept"
    assert not (root / ".gitignore").exists(), "the user's committed ignore file is not touched"
    assert sorted(p.name for p in exclude.parent.iterdir()) == ["exclude"], "no temporary file left"


def test_a_missing_info_directory_is_created(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    for path in sorted((root / ".git" / "info").iterdir()):
        path.unlink()
    (root / ".git" / "info").rmdir()
    _an_output(root)
    assert exclude_locally(root, OUTPUT_PATTERN)
    assert _git("status", "--porcelain", cwd=root) == ""


def test_a_linked_worktree_writes_the_common_exclude(tmp_path: Path) -> None:
    main = _repo(tmp_path / "main")
    worktree = tmp_path / "wt"
    _git("worktree", "add", "-q", str(worktree), cwd=main)
    assert (worktree / ".git").is_file()
    (worktree / "notebooks").mkdir()
    _an_output(worktree)
    assert exclude_locally(worktree, OUTPUT_PATTERN)
    assert _git("status", "--porcelain", cwd=worktree) == ""
    assert OUTPUT_PATTERN in (main / ".git" / "info" / "exclude").read_text()


def test_outside_a_git_repository_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert not exclude_locally(tmp_path / "plain", OUTPUT_PATTERN)
    assert os.listdir(tmp_path / "plain") == []


@pytest.mark.security
@pytest.mark.hostile("symlink: git info/exclude")
@pytest.mark.parametrize("link", [".git/info", ".git/info/exclude", ".git"])
def test_a_symlink_on_the_way_is_never_written_through(tmp_path: Path, link: str) -> None:
    """A checkout whose `.git/info` (or the exclude file, or `.git`) is a symlink to a directory outside
    the repository: nothing there is created or changed, and nothing is written at all."""
    root = _repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    (outside / "info").mkdir(parents=True)
    (outside / "info" / "exclude").write_text("theirs\n")
    (outside / "exclude").write_text("theirs\n")
    target = {".git/info": outside, ".git/info/exclude": outside / "exclude", ".git": outside}[link]
    place = root / link
    if place.is_dir():
        place.rename(root / f"{link}.moved")
    else:
        place.unlink()
    place.symlink_to(target)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    assert not exclude_locally(root, OUTPUT_PATTERN)
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before
    assert sorted(outside.rglob("*")) == sorted([outside / "info", outside / "info" / "exclude", outside / "exclude"])
    assert place.is_symlink()


@pytest.mark.security
@pytest.mark.hostile("symlink: git info/exclude")
def test_a_made_up_gitdir_pointer_is_not_followed(tmp_path: Path) -> None:
    """A `.git` file (as in a worktree) pointing at another repository that does not link back to this
    checkout: that repository's exclude is not touched."""
    victim = _repo(tmp_path / "victim")
    before = (victim / ".git" / "info" / "exclude").read_bytes()
    root = tmp_path / "hostile"
    (root / "notebooks").mkdir(parents=True)
    (root / ".git").write_text(f"gitdir: {victim / '.git'}\n")
    assert not exclude_locally(root, OUTPUT_PATTERN)
    assert (victim / ".git" / "info" / "exclude").read_bytes() == before
