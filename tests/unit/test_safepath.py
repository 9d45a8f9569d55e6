"""The path guards every file access goes through: confinement, owned directories, regular files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbenv.errors import SpecError, UsageError
from nbenv.safepath import confine, owned_dir, read_regular

pytestmark = [pytest.mark.security, pytest.mark.hostile("symlinks (path primitive)")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "a.csv").write_text("x\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s")
    return root


LINKS = {
    "absolute": lambda root: str(root.parent / "outside"),
    "relative": lambda root: "../outside",
    "chained": lambda root: "hop",  # hop -> ../outside
    "root": lambda root: "/",
}


def _link(root: Path, name: str, kind: str) -> None:
    if kind == "chained":
        os.symlink("../outside", root / "hop")
    os.symlink(LINKS[kind](root), root / name)


@pytest.mark.parametrize("kind", list(LINKS))
def test_confine_refuses_a_symlink_out_of_the_repo(repo: Path, kind: str) -> None:
    _link(repo, "escape", kind)
    with pytest.raises(SpecError, match=r"^escape: mount source leads outside the repository"):
        confine(repo, "escape", what="mount source")
    with pytest.raises(SpecError, match="leads outside"):
        confine(repo, "escape/secret", what="mount source")


def test_confine_allows_links_that_stay_inside(repo: Path) -> None:
    os.symlink("data/raw", repo / "raw")
    assert confine(repo, "raw/a.csv", what="data") == (repo / "data/raw/a.csv").resolve()
    assert confine(repo, repo / "data", what="data") == (repo / "data").resolve()


def test_confine_refuses_dotdot_and_loops(repo: Path) -> None:
    with pytest.raises(SpecError, match="leads outside"):
        confine(repo, "data/../../outside", what="x")
    os.symlink("loop", repo / "loop")
    with pytest.raises(SpecError, match=r"cannot be resolved|leads outside"):
        confine(repo, "loop/x", what="x")


def test_confine_raises_the_given_error_class(repo: Path) -> None:
    with pytest.raises(UsageError):
        confine(repo, "/etc/passwd", what="notebook", error=UsageError)


@pytest.mark.parametrize("kind", [*LINKS, "inside"])
def test_owned_dir_refuses_any_symlink_and_creates_nothing_through_it(repo: Path, kind: str) -> None:
    (repo / "docker").mkdir()
    if kind == "inside":
        os.symlink("../data", repo / "docker" / "base")
    else:
        _link(repo / "docker", "base", kind) if kind != "chained" else os.symlink("../../outside", repo / "docker/base")
    with pytest.raises(SpecError, match=r"^docker/base: is a symlink"):
        owned_dir(repo, "docker/base/requirements", what="generated files")
    assert sorted(p.name for p in (repo.parent / "outside").iterdir()) == ["secret"]


def test_owned_dir_creates_each_component(repo: Path) -> None:
    made = owned_dir(repo, ".nbenv/run/base", what="run state")
    assert made.is_dir() and not made.is_symlink()
    (repo / ".nbenv" / "file").write_text("")
    with pytest.raises(SpecError, match="is not a directory"):
        owned_dir(repo, ".nbenv/file/x", what="run state")


def test_read_regular_refuses_fifos_devices_and_large_files(repo: Path) -> None:
    fifo = repo / "a.dvc"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="FIFO"):
        read_regular(fifo, display="a.dvc", limit=1024)  # returns at once: nothing blocks
    with pytest.raises(SpecError, match="device"):
        read_regular(Path("/dev/zero"), display="/dev/zero", limit=1024)
    big = repo / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(SpecError, match="2048 bytes"):
        read_regular(big, display="big", limit=1024)
    assert read_regular(repo / "data/raw/a.csv", display="a.csv", limit=1024) == b"x\n"
