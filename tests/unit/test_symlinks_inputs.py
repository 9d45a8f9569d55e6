"""The symlink matrix for what nbenv mounts or reads as user data (issue 13, item 2).

Inputs: a mount source, a data path (a .dvc file's output, a dvc.yaml out), an entry inside a data
output, the notebook of `nbenv run`, its --output and its default output. Links: absolute, relative
(`../..`), chained (link -> link -> outside), and one that stays inside the repository (accepted).
Commands: validate, generate, `run` and `up` up to their pre-checks (before Docker is asked), and
`data push`/`data status` for data entries. A refusal is one clear line, a non-zero exit, and
nothing outside the repository is read into a container, written or changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nbenv.adapters.engine import Engine
from nbenv.build import ImageBuilder
from nbenv.errors import NbenvError
from nbenv.project import Project
from nbenv.running import lifecycle as launch
from nbenv.ui import Say, quiet
from nbenv.workspace import Workspace
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.security, pytest.mark.badinput]

KINDS = ["absolute", "relative", "chained", "inside"]
PROBE = "environments/probe.toml"
NOTEBOOK = "notebooks/traffic.ipynb"


def tree(root: Path) -> dict[str, str]:
    """Every entry under `root` (links not followed) with its content hash or link target."""
    found = {}
    for current, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(current) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "dir"
    return found


def link(root: Path, rel: str, kind: str, *, outside: Path, inside: str) -> None:
    """`root/rel` -> `outside` (absolute, relative or through a second link), or -> `root/inside`."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "absolute":
        path.symlink_to(outside)
    elif kind == "relative":
        path.symlink_to(os.path.relpath(outside, path.parent))  # ../../outside/...: works from any clone
    elif kind == "chained":
        hop = root / f".hop-{path.name}"
        hop.symlink_to(os.path.relpath(outside, hop.parent))
        path.symlink_to(os.path.relpath(hop, path.parent))
    else:
        path.symlink_to(os.path.relpath(root / inside, path.parent))


def probe_env(root: Path, *, mounts: list[str], data: list[str]) -> None:
    lines = ["spec_version = 1", 'name = "probe"', 'groups = ["notebook"]', "importable = false"]
    lines += [f'\n[[mounts]]\nsource = "{m}"\ntarget = "/home/jovyan/work"' for m in mounts]
    lines += [f'\n[[data]]\npath = "{d}"' for d in data]
    (root / PROBE).write_text("\n".join(lines) + "\n")


def dvc_file(root: Path, out: str) -> None:
    (root / f"{out}.dvc").write_text(f"outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: {out}\n")


def dvc_yaml_out(root: Path, out: str) -> None:
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    pipeline["stages"]["probe"] = {"cmd": "true", "outs": [out]}
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline))


@dataclass(frozen=True)
class Row:
    id: str
    setup: Callable[[Path, str, Path], None]  # (repo, kind, outside)
    commands: tuple[str, ...]
    refusal: str  # regex of the one error line
    code: int


def _mount_source(root: Path, kind: str, outside: Path) -> None:
    link(root, "hostroot", kind, outside=outside / "dir", inside="notebooks")
    probe_env(root, mounts=["hostroot"], data=[])


def _data(declare: Callable[[Path, str], None]) -> Callable[[Path, str, Path], None]:
    def setup(root: Path, kind: str, outside: Path) -> None:
        link(root, "hostdata", kind, outside=outside / "dir", inside="realdata")
        declare(root, "hostdata")
        probe_env(root, mounts=["notebooks"], data=["hostdata"])

    return setup


def _data_entry(root: Path, kind: str, outside: Path) -> None:
    link(root, "realdata/evil", kind, outside=outside / "dir", inside="notebooks")
    dvc_file(root, "realdata")
    probe_env(root, mounts=["notebooks"], data=["realdata"])


def _notebook(root: Path, kind: str, outside: Path) -> None:
    link(root, "notebooks/evil.ipynb", kind, outside=outside / "note.ipynb", inside=NOTEBOOK)
    probe_env(root, mounts=["notebooks"], data=[])


def _output_dir(root: Path, kind: str, outside: Path) -> None:
    link(root, "outdir", kind, outside=outside / "dir", inside="notebooks")
    probe_env(root, mounts=["notebooks"], data=[])


def _default_output(root: Path, kind: str, outside: Path) -> None:
    link(root, "notebooks/traffic.out.ipynb", kind, outside=outside / "dir/secret.txt", inside="realdata/file.txt")
    probe_env(root, mounts=["notebooks"], data=[])


RUN = f"run probe {NOTEBOOK} --no-pull"
ROWS = [
    Row(
        "mount-source",
        _mount_source,
        ("validate", "generate", RUN, "up"),
        rf"^{PROBE}:\d+: mounts\[0\]\.source: hostroot: mount source leads outside the repository",
        3,
    ),
    Row(
        "data-dvc-file",
        _data(dvc_file),
        ("validate", "generate", RUN, "up"),
        rf"^{PROBE}:\d+: data\[0\]\.path: hostdata: data path leads outside the repository",
        3,
    ),
    Row(
        "data-dvc-yaml",
        _data(dvc_yaml_out),
        ("validate", "generate", RUN, "up"),
        rf"^{PROBE}:\d+: data\[0\]\.path: hostdata: data path leads outside the repository",
        3,
    ),
    Row(
        "data-entry",
        _data_entry,
        ("up", "up --no-pull", RUN, "data push probe", "data status probe"),
        r"^realdata/evil: a symlink in data 'realdata' leads outside the repository",
        8,
    ),
    Row(
        "notebook",
        _notebook,
        ("run probe notebooks/evil.ipynb --no-pull",),
        r"^notebooks/evil\.ipynb: notebook leads outside the repository",
        2,
    ),
    Row(
        "output",
        _output_dir,
        (f"{RUN} --output outdir/x.ipynb",),
        r"^outdir/x\.ipynb: output leads outside the repository",
        2,
    ),
    Row(
        "default-output",
        _default_output,
        (RUN,),
        r"^notebooks/traffic\.out\.ipynb: output leads outside the repository",
        2,
    ),
]
CASES = [(row, kind, command) for row in ROWS for kind in KINDS for command in row.commands]


# Where each command stops when nothing is wrong: validate and generate succeed, `up` reaches the
# build (0 here), `run` asks the engine (exit 6: NBENV_DOCKER names no program).
PAST_THE_CHECKS = {"validate": 0, "generate": 0, "up": 0, "run": 6, "data": 8}


class ReachedTheBuild(Exception):
    """`up` got past every pre-check (the next step would build the image)."""


@dataclass
class Outcome:
    code: int
    lines: list[str]


def _up(root: Path, *, pull: bool, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """`nbenv up probe` up to the build: the engine is one that would fail if anything asked it."""

    class StopBeforeBuilding(Project):
        def builder(self, *, say: Say, live: bool) -> ImageBuilder:
            raise ReachedTheBuild

    project = StopBeforeBuilding(Workspace(root.resolve()), engine_factory=lambda: Engine(docker="/nonexistent/docker"))
    options = launch.UpOptions(port=None, timeout=1, pull=pull, allow_missing=False, live=False)
    try:
        launch.up(project, "probe", options, say=quiet)
    except ReachedTheBuild:
        return Outcome(0, [])
    except NbenvError as exc:
        return Outcome(exc.exit_code, [exc.message, *([f"  hint: {exc.hint}"] if exc.hint else [])])
    raise AssertionError("up neither failed nor reached the build")


def _run(command: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    if command.startswith("up"):
        return _up(root, pull="--no-pull" not in command, monkeypatch=monkeypatch)
    result = run_cli(*command.split(), cwd=root)
    return Outcome(result.code, result.err_lines)


@pytest.fixture
def repo(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NBENV_DOCKER", "/nonexistent/docker")  # asking the engine fails with exit 6
    monkeypatch.chdir(workspace)
    (workspace / "notebooks").mkdir()
    shutil.copy2(REPO / NOTEBOOK, workspace / NOTEBOOK)
    (workspace / "realdata").mkdir()
    (workspace / "realdata/file.txt").write_text("inside\n")
    return workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the repository, standing for /, /etc or ~/.ssh."""
    place = tmp_path / "outside"
    (place / "dir").mkdir(parents=True)
    (place / "dir/secret.txt").write_text("host secret\n")
    (place / "note.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}))
    return place


@pytest.mark.parametrize(
    ("row", "kind", "command"),
    [
        pytest.param(
            r, k, c, id=f"{r.id}-{k}-{c.split()[0]}{c.count(' ')}", marks=pytest.mark.hostile(f"symlink: {r.id}")
        )
        for r, k, c in CASES
    ],
)
def test_a_symlink_out_of_the_repository_is_refused_and_one_inside_is_accepted(
    row: Row, kind: str, command: str, repo: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row.setup(repo, kind, outside)
    outside_before, repo_before = tree(outside), snapshot_without_state(repo)
    outcome = _run(command, repo, monkeypatch)
    assert tree(outside) == outside_before, "something outside the repository changed"
    assert not list(outside.parent.glob("outside*/**/*.tmp"))
    if kind == "inside":  # accepted: the command gets past every pre-check, to the engine or DVC
        assert not any("outside the repository" in line for line in outcome.lines), outcome.lines
        assert outcome.code == PAST_THE_CHECKS[command.split()[0]] or (
            outcome.code == 8 and "not a DVC repository" in outcome.lines[0]  # pull, push, status: DVC is next
        ), outcome.lines
        return
    assert outcome.code == row.code, outcome.lines
    assert 1 <= len(outcome.lines) <= 2, outcome.lines
    assert outcome.lines[0].count("\n") == 0 and re.search(row.refusal, outcome.lines[0]), outcome.lines
    assert len(outcome.lines) == 1 or outcome.lines[1].startswith("  hint: ")
    assert snapshot_without_state(repo) == repo_before, "a refused command wrote into the repository"


def snapshot_without_state(root: Path) -> dict[str, str]:
    """The repository's files, links not followed, without nbenv's own state (`up`'s lock file)."""
    return {rel: value for rel, value in tree(root).items() if not rel.startswith(".nbenv")}
