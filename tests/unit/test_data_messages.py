"""Data messages say what is true (issue 15, item 7), with real DVC and real local remotes (no Docker):
an unreachable remote, a file missing on the remote, a corrupt object in the remote or in the cache,
and a .dvc file that DVC itself does not read. Every command a hint names runs as written."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, snapshot

# DVC's own dependency warns (pygtrie); the CLI shows no warnings, the test suite turns them into errors.
pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")
BIN = Path(sys.executable).parent
SPEC = (
    'spec_version = 1\nname = "x"\ngroups = ["notebook"]\n\n[[data]]\npath = "data/a"\n\n'
    '[[data]]\npath = "data/b.csv"\n'
)
ONE = hashlib.md5(b"one\n").hexdigest()  # DVC 3's object id of data/a/1.txt


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True)


def _dvc(*args: str, cwd: Path) -> str:
    result = _run(str(BIN / "dvc"), *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _object(store: Path, oid: str) -> Path:
    return store / "files" / "md5" / oid[:2] / oid[2:]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """git + DVC, one environment whose data (a directory of two files and a file) is pushed to a local
    remote; then the cache and the workspace copies are removed, as on a fresh clone."""
    root = data_repo(tmp_path)
    _dvc("push", "-q", cwd=root)
    return root


def data_repo(tmp_path: Path) -> Path:
    """git + DVC, environment x's data (a directory of two files, a file) added, a local remote (empty)."""
    root = tmp_path / "repo"
    (root / "environments").mkdir(parents=True)
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(REPO / name, root / name)
    (root / "environments" / "x.toml").write_text(SPEC)
    (root / "data" / "a").mkdir(parents=True)
    (root / "data" / "a" / "1.txt").write_text("one\n")
    (root / "data" / "a" / "2.txt").write_text("two\n")
    (root / "data" / "b.csv").write_text("x\n")
    assert _run("git", "init", "-q", cwd=root).returncode == 0
    _dvc("init", "-q", cwd=root)
    _dvc("add", "-q", "data/a", "data/b.csv", cwd=root)
    _dvc("remote", "add", "-d", "local", str(tmp_path / "remote"), cwd=root)
    return root


def _forget(root: Path, *, cache: bool = True) -> None:
    if cache:
        shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "data" / "a")
    (root / "data" / "b.csv").unlink()


def _unreachable(root: Path) -> None:
    _forget(root)
    shutil.rmtree(root.parent / "remote")


def _missing_on_remote(root: Path) -> None:
    _forget(root)
    _object(root.parent / "remote", ONE).unlink()


def _corrupt_on_remote(root: Path) -> None:
    _forget(root)
    _object(root.parent / "remote", ONE).write_text("corrupted on the remote\n")


def _corrupt_in_cache(root: Path) -> None:
    _forget(root, cache=False)
    cached = _object(root / ".dvc" / "cache", ONE)
    cached.chmod(0o644)
    cached.write_text("corrupted in the cache\n")
    _object(root.parent / "remote", ONE).unlink()  # no good copy anywhere


CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (fault, the message's pattern, the remote's state in `data status`)
    "unreachable remote": (
        _unreachable,
        r"^pull: data/a, data/b\.csv: not in the cache, and remote 'local' \(.*/remote\) "
        r"is unreachable: the directory does not exist$",
        "unreachable",
    ),
    "missing on the remote": (
        _missing_on_remote,
        rf"^pull: data/a/1\.txt: missing on remote 'local' \(.*/remote\) \(object {ONE}\)$",
        "missing",
    ),
    "corrupt on the remote": (
        _corrupt_on_remote,
        rf"^pull: data/a/1\.txt: corrupt on remote 'local' \(.*/remote\): .*/remote/files/md5/{ONE[:2]}/{ONE[2:]} "
        rf"does not match its hash {ONE}$",
        "ok",  # present on the remote: only reading it shows the corruption
    ),
    "corrupt in the cache": (
        _corrupt_in_cache,
        rf"^pull: data/a/1\.txt: corrupt in the cache \(.*/\.dvc/cache/files/md5/{ONE[:2]}/{ONE[2:]} did not match "
        rf"its hash; DVC removed it\) and missing on remote 'local' \(.*/remote\) \(object {ONE}\)$",
        "missing",
    ),
}


def _hint_commands(hint: str) -> list[str]:
    return [command for command in re.findall(r"`([^`]+)`", hint) if command.split()[0] in ("dvc", "nbenv")]


@pytest.mark.fault
@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_pull_says_what_is_true(repo: Path, case: str) -> None:
    fault, pattern, remote_state = CASES[case]
    fault(repo)
    result = run_cli("data", "pull", "x", cwd=repo)
    assert result.code == 8, result.err
    progress, message, hint = result.err_lines
    assert progress == "fetching 2 target(s): data/a, data/b.csv" and hint.startswith("  hint: "), result.err
    assert re.match(pattern, message), message
    assert "or corruption" not in result.err and "Traceback" not in result.err
    assert not (repo / "data" / "a").exists(), "nothing half-checked-out"
    for command in _hint_commands(hint):  # every command a hint names runs as typed
        ran = _run(str(BIN / command.split()[0]), *command.split()[1:], cwd=repo)
        assert ran.returncode in (0, 1), f"{command}: {ran.stderr}"
    status = run_cli("data", "status", "x", cwd=repo)
    assert status.code == 0, status.err
    row = next(line for line in status.out.splitlines() if line.split()[:1] == ["data/a"])
    assert row.split()[-1] == remote_state, status.out


@pytest.mark.fault
def test_a_corrupt_cache_object_with_a_good_remote_copy_is_replaced(repo: Path) -> None:
    _forget(repo, cache=False)
    cached = _object(repo / ".dvc" / "cache", ONE)
    cached.chmod(0o644)
    cached.write_text("corrupted in the cache\n")
    result = run_cli("data", "pull", "x", cwd=repo)
    assert result.code == 0, result.err
    assert (repo / "data" / "a" / "1.txt").read_text() == "one\n"


def test_pull_works_from_a_subdirectory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC reads relative targets against the current directory: nbenv hands it absolute paths."""
    _forget(repo, cache=False)
    monkeypatch.chdir(repo / "environments")
    result = run_cli("data", "pull", "x", cwd=repo)
    assert result.code == 0, result.err
    assert (repo / "data" / "b.csv").read_text() == "x\n"


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("ignore_file", "rule", "expected"),
    [
        (".dvcignore", "data/a.dvc", "a .dvcignore rule hides it (.dvcignore:{line}:data/a.dvc)"),
        (".dvcignore", "*.dvc", "a .dvcignore rule hides it (.dvcignore:{line}:*.dvc)"),
        ("data/.dvcignore", "a.dvc", "a .dvcignore rule hides it (data/.dvcignore:{line}:a.dvc)"),
        (".gitignore", "*.dvc", "git ignores it (.gitignore:{line}:*.dvc), and DVC reads no git-ignored DVC file"),
        ("data/.gitignore", "/a.dvc", "git ignores it (data/.gitignore:{line}:/a.dvc)"),  # DVC's file, extended
    ],
)
def test_validate_rejects_a_dvc_file_that_dvc_does_not_read(
    repo: Path, ignore_file: str, rule: str, expected: str
) -> None:
    """Reproduced with DVC first: `dvc pull data/a` fails ("does not exist as an output") with such a rule."""
    target = repo / ignore_file
    target.write_text((target.read_text() if target.exists() else "") + rule + "\n")
    expected = expected.format(line=len(target.read_text().splitlines()))
    assert _run(str(BIN / "dvc"), "status", "data/a", cwd=repo).returncode != 0, "DVC itself cannot see data/a.dvc"
    before = snapshot(repo)
    result = run_cli("validate", cwd=repo)
    assert result.code == 3, result.err
    assert len(result.err_lines) == 2, result.err
    first = result.err_lines[0]
    assert first.startswith("environments/x.toml:6: data[0].path: 'data/a' is tracked by data/a.dvc, "), first
    assert "which DVC does not read: " + expected in first, first
    assert result.err_lines[1].startswith("  hint: remove "), result.err
    assert snapshot(repo) == before


def test_an_unrelated_ignore_rule_is_no_error(repo: Path) -> None:
    (repo / ".dvcignore").write_text("*.tmp\n")
    (repo / ".gitignore").write_text("*.log\n!data/a.dvc\n")
    result = run_cli("validate", cwd=repo)
    assert result.code == 0, result.err


def test_a_remote_directory_not_made_yet_holds_nothing_pushed(repo: Path) -> None:
    """Before the first push a local remote has no directory: what the cache holds is `not-pushed`
    (a push creates it), what nothing holds is `unreachable` (never `missing`)."""
    shutil.rmtree(repo.parent / "remote")
    status = run_cli("data", "status", "x", cwd=repo)
    assert status.code == 0, status.err
    assert [line.split() for line in status.out.splitlines()[1:]] == [
        ["data/a", "ok", "not-pushed"],
        ["data/b.csv", "ok", "not-pushed"],
    ]
    _forget(repo)
    status = run_cli("data", "status", "x", cwd=repo)
    assert [line.split()[-1] for line in status.out.splitlines()[1:]] == ["unreachable", "unreachable"]
