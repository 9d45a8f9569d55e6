"""Shared fixtures: a throwaway copy of the demo workspace and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKSPACE_FILES = ["pyproject.toml", "poetry.lock", "dvc.yaml", "environments"]
# nbenv's own repository installs its checkout in CI; the workspace is a user's repository, which does not.
NBENV_OWN_CI = "[tool.nbenv.ci]\n# nbenv's own workflow tests this checkout"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def run_cli(*args: str, cwd: Path) -> Result:
    """Run `nbenv ARGS` in-process (fast); stdout/stderr captured, exit code returned."""
    from nbenv.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(["--repo", str(cwd), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


CACHE = ".nbenv/cache/"  # nbenv's parse cache (like __pycache__): not a file a user or CI reads
STATE_IGNORE = ".nbenv/.gitignore"  # written with the cache: git ignores nbenv's state in any repository


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with its content hash: to prove a failing command wrote nothing."""
    return {
        rel: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (rel := p.relative_to(root).as_posix()).startswith(CACHE) and rel != STATE_IGNORE
    }


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    """A copy of the demo workspace (specs, pyproject, lock, dvc.yaml) without generated files."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in WORKSPACE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy2(source, root / name)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    if (start := text.find(NBENV_OWN_CI)) >= 0:
        pyproject.write_text(text[:start] + text[text.index("\n\n", start) + 2 :])
    yield root


@pytest.fixture(autouse=True)
def _hostile_class(request: pytest.FixtureRequest, record_property: Callable[[str, object], None]) -> None:
    """`@pytest.mark.hostile("class")` -> a JUnit property, which scripts/guarantees groups by."""
    marker = request.node.get_closest_marker("hostile")
    if marker is not None and marker.args:
        record_property("hostile", str(marker.args[0]))


@pytest.fixture(autouse=True)
def _no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys, "argv", ["nbenv"])
