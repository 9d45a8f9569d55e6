"""What a container gets mounted, on the real engine (issue 13, items 2 and 7, and the hidden `.nbenv/`):
a mount source that leads out of the repository starts nothing; read-only data stays read-only under
two overlapping source mounts, in compose's service and in `nbenv run`'s `docker run`; `.nbenv/`
(every environment's token, the parse cache) is neither readable nor writable from a container."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, WORKSPACE_FILES
from tests.e2e.conftest import PREFIX, Up, docker, nbenv
from tests.e2e.test_run import write_notebook

pytestmark = [pytest.mark.e2e, pytest.mark.security]
PEMS = "data/processed/pems"
OVERLAP = "e2e-overlap"
WRITE_PROBE = r"""
for dir in "$@"; do
  file=$(ls "$dir" | head -n 1)
  touch "$dir/nbenv-probe" 2>&1 && echo "WROTE $dir"
  echo x 2>&1 >> "$dir/$file" && echo "APPENDED $dir/$file"
done
true
"""


def digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def containers_of(project: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()


@pytest.mark.hostile("symlink: mount-source (real engine)")
def test_a_mount_source_leading_out_of_the_repository_starts_nothing(tmp_path: Path, engine: None) -> None:
    """`ln -s / hostroot` + `source = "hostroot"`: refused by `up` and `run` before any container or build."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in WORKSPACE_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('image_prefix = "nbenv"', f'image_prefix = "{PREFIX}"'))
    (root / "hostroot").symlink_to("/")
    (root / "environments/escape.toml").write_text(
        'spec_version = 1\nname = "escape"\ngroups = ["notebook"]\nimportable = false\n\n'
        '[[mounts]]\nsource = "hostroot"\ntarget = "/home/jovyan/work"\n'
    )
    (root / "nb.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}))
    images_before = docker("images", "-q").stdout.split()
    for command in (["up", "escape"], ["run", "escape", "nb.ipynb", "--no-pull"], ["validate"]):
        result = nbenv(*command, cwd=root, timeout=120)
        assert result.returncode == 3, result.stderr
        first = result.stderr.splitlines()[0]
        assert "mounts[0].source: hostroot: mount source leads outside the repository (to /)" in first, first
        assert len(result.stderr.splitlines()) <= 2
    assert containers_of(f"{PREFIX}-escape") == []
    assert docker("ps", "-aq", "--filter", f"label=nbenv.project={PREFIX}-escape").stdout.split() == []
    assert docker("images", "-q").stdout.split() == images_before
    assert not (root / "docker/escape").exists()


@pytest.fixture
def overlap_env(run_ready_workspace: Path) -> Iterator[Path]:
    """An environment with two overlapping source mounts (`.` and `data`) and the demo's data,
    generated into the session workspace and removed afterwards (files, containers)."""
    root = run_ready_workspace
    spec = root / f"environments/{OVERLAP}.toml"
    spec.write_text(
        f'spec_version = 1\nname = "{OVERLAP}"\nextends = "traffic-analysis"\n\n'
        '[[mounts]]\nsource = "."\ntarget = "/home/jovyan/work"\n\n'
        '[[mounts]]\nsource = "data"\ntarget = "/home/jovyan/d"\n'
    )
    try:
        generated = nbenv("generate", OVERLAP, cwd=root, timeout=120)
        assert generated.returncode == 0, generated.stderr
        token = root / f".nbenv/run/{OVERLAP}/jupyter_token"
        token.parent.mkdir(parents=True, exist_ok=True)
        token.write_text("unused\n")
        yield root
    finally:
        subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                f"{PREFIX}-{OVERLAP}",
                "-f",
                str(root / f"docker/{OVERLAP}/compose.yaml"),
                "down",
            ],
            capture_output=True,
        )
        for container in containers_of(f"{PREFIX}-{OVERLAP}"):
            docker("rm", "--force", container, check=False)
        spec.unlink(missing_ok=True)
        shutil.rmtree(root / f"docker/{OVERLAP}", ignore_errors=True)
        shutil.rmtree(root / f".nbenv/run/{OVERLAP}", ignore_errors=True)


def _assert_read_only(output: str, views: list[str]) -> None:
    assert "WROTE" not in output and "APPENDED" not in output, output
    for view in views:
        assert re.search(rf"{re.escape(view)}/nbenv-probe'?: Read-only file system", output), output


@pytest.mark.hostile("read-only data under overlapping mounts (real engine)")
def test_read_only_data_stays_read_only_through_two_overlapping_source_mounts(overlap_env: Path) -> None:
    """The issue's repro (mounts `.` and `data`, data `data/processed/pems`): the container, as UID
    1000 which owns the files, cannot write the data through either mount path; the host files stay."""
    root = overlap_env
    views = [f"/home/jovyan/work/{PEMS}", "/home/jovyan/d/processed/pems"]
    before = digest_tree(root / PEMS)
    assert before, "the demo data is in the workspace"
    # compose: the service `nbenv up` starts, from the generated file.
    compose = subprocess.run(
        [
            "docker", "compose", "-p", f"{PREFIX}-{OVERLAP}", "-f", str(root / f"docker/{OVERLAP}/compose.yaml"),
            "run", "--rm", "--no-deps", "-T", "jupyter", "sh", "-c", WRITE_PROBE, "probe", *views,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NBENV_IMAGE": f"{PREFIX}/traffic-analysis:latest"},
        timeout=300,
    )  # fmt: skip
    assert compose.returncode == 0, compose.stderr
    _assert_read_only(compose.stdout + compose.stderr, views)
    # `nbenv run`: the `docker run` options it computes for this environment.
    from nbenv.plan import compose_project, run_plan, token_file
    from nbenv.project import load_lock, plan_for
    from nbenv.running.headless import ContainerRun, docker_run_argv, host_mounts
    from nbenv.spec.load import Loader
    from nbenv.workspace import Workspace

    ws = Workspace(root.resolve())
    plan = plan_for(ws, Loader(ws), load_lock(ws), OVERLAP)
    service = run_plan(plan.env, plan, project=compose_project(ws.config, OVERLAP), token_file=token_file(OVERLAP))
    argv = docker_run_argv(
        "docker",
        ContainerRun(
            image=f"{PREFIX}/traffic-analysis:latest",
            name=f"{PREFIX}-{OVERLAP}-probe",
            labels={"com.docker.compose.project": f"{PREFIX}-{OVERLAP}"},
            mounts=host_mounts(ws.root, plan.out_dir, service.mounts),
            workdir=service.working_dir,
            environment={},
            resources=plan.env.resources,
            command=("sh", "-c", WRITE_PROBE, "probe", *views),
        ),
    )
    headless = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert headless.returncode == 0, headless.stderr
    _assert_read_only(headless.stdout + headless.stderr, views)
    assert digest_tree(root / PEMS) == before, "the data changed on the host"


@pytest.mark.hostile(".nbenv/ and .git/ seen by containers (real engine)")
def test_nbenv_state_is_hidden_from_the_running_environment(demo_up: Up) -> None:
    """From inside `up`'s container: no token of any environment readable, the parse cache unwritable,
    and Docker created no root-owned mountpoint in the repository (`.nbenv/` existed before)."""
    state = demo_up.workspace / ".nbenv"
    owner = state.stat().st_uid
    assert (state / "run/traffic-analysis/jupyter_token").is_file()
    probe = demo_up.exec(
        "sh",
        "-c",
        "cat /home/jovyan/work/.nbenv/run/*/jupyter_token; ls -A /home/jovyan/work/.nbenv;"
        " mkdir -p /home/jovyan/work/.nbenv/cache && touch /home/jovyan/work/.nbenv/cache/poisoned && echo WROTE;"
        " true",
    )
    output = probe.stdout + probe.stderr
    assert demo_up.token not in output, "the token is readable from the container"
    assert "WROTE" not in output and "Read-only file system" in output, output
    assert probe.stdout.strip() == "", output  # `ls -A` lists nothing: an empty directory
    assert not list(state.rglob("poisoned")) and state.stat().st_uid == owner


@pytest.mark.hostile(".nbenv/ and .git/ seen by containers (real engine)")
def test_nbenv_state_is_hidden_from_a_headless_run(run_ready_workspace: Path) -> None:
    root = run_ready_workspace
    scratch = root / "notebooks" / f"scratch-{uuid.uuid4().hex[:8]}"  # excluded from git by the fixture
    scratch.mkdir()
    if os.geteuid() == 0:
        os.chown(scratch, 1000, 100)
    decoy = root / ".nbenv/run/e2e-decoy/jupyter_token"
    decoy.parent.mkdir(parents=True, exist_ok=True)
    decoy.write_text("decoy-token\n")
    try:
        notebook = write_notebook(
            scratch / "state.ipynb",
            "import glob, os\n"
            "state = '/home/jovyan/work/.nbenv'\n"
            "assert os.listdir(state) == [], os.listdir(state)\n"
            "assert not glob.glob(state + '/run/*/jupyter_token')\n"
            "try:\n"
            "    open(state + '/cache-poisoned', 'w')\n"
            "except OSError as exc:\n"
            "    assert exc.errno == 30, exc  # EROFS\n"
            "else:\n"
            "    raise AssertionError('wrote into .nbenv')\n",
        )
        result = nbenv("run", "traffic-analysis", str(notebook), "--no-pull", "--no-build", cwd=root, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert not list((root / ".nbenv").rglob("cache-poisoned"))
    finally:
        shutil.rmtree(decoy.parent, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
