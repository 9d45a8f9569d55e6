"""Data with real DVC against a real local-directory remote and a real S3 server (moto, 127.0.0.1)."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import docker, nbenv, project
from tests.e2e.faults import CuttableProxy, moto_s3

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
BUCKET = "nbenv-test"
SPEC = 'spec_version = 1\nname = "{name}"\ngroups = ["notebook"]\n\n[[data]]\npath = "data/{name}"\n'


def run(*command: str, cwd: Path) -> str:
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


def dvc(*args: str, cwd: Path) -> str:
    return run(str(BIN / "dvc"), *args, cwd=cwd)


def hashes(root: Path, target: str) -> dict[str, str]:
    base = root / target
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def wipe(root: Path) -> None:
    """Forget everything local: the DVC cache and the checked-out data."""
    shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)
    for name in ("alpha", "beta"):
        shutil.rmtree(root / "data" / name, ignore_errors=True)


@pytest.fixture(scope="module")
def s3() -> Iterator[CuttableProxy]:
    """moto's S3 server on 127.0.0.1 (exact PID kept), reached through a cuttable proxy."""
    with moto_s3(BUCKET) as port:
        proxy = CuttableProxy(port)
        yield proxy
        proxy.close()


@pytest.fixture
def workspace(tmp_path: Path, s3: CuttableProxy) -> Path:
    """A git + DVC repo with two environments, each declaring its own `dvc add`-ed data."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(REPO / name, root / name)
    (root / "environments").mkdir()
    run("git", "init", "-q", cwd=root)
    dvc("init", "-q", cwd=root)
    rng = random.Random(7)
    for name in ("alpha", "beta"):
        (root / "environments" / f"{name}.toml").write_text(SPEC.format(name=name))
        for index in range(6):
            part = root / "data" / name / f"part-{index}" / "values.bin"
            part.parent.mkdir(parents=True)
            part.write_bytes(rng.randbytes(150_000))
        dvc("add", "-q", f"data/{name}", cwd=root)
    dvc("remote", "add", "-d", "local", str(tmp_path / "remote"), cwd=root)
    dvc("remote", "add", "s3", f"s3://{BUCKET}/{tmp_path.name}", cwd=root)
    dvc("remote", "modify", "s3", "endpointurl", f"http://127.0.0.1:{s3.port}", cwd=root)
    dvc("remote", "modify", "s3", "region", "us-east-1", cwd=root)
    # credentials only in DVC's local (git-ignored) config, as a user keeps them
    dvc("remote", "modify", "--local", "s3", "access_key_id", "testing", cwd=root)
    dvc("remote", "modify", "--local", "s3", "secret_access_key", "testing", cwd=root)
    return root


@pytest.mark.parametrize("remote", ["local", "s3"])
def test_pull_brings_back_exactly_the_environments_targets(workspace: Path, remote: str) -> None:
    pushed = nbenv("data", "push", "--all", "--remote", remote, cwd=workspace)
    assert pushed.returncode == 0, pushed.stderr
    before = {**hashes(workspace, "data/alpha"), **hashes(workspace, "data/beta")}
    wipe(workspace)
    pulled = nbenv("data", "pull", "alpha", "--remote", remote, cwd=workspace)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.startswith("pulled 1 target(s), 6 file(s), 0.9 MB in the workspace;")
    assert hashes(workspace, "data/alpha") == {k: v for k, v in before.items() if k.startswith("data/alpha/")}
    assert not (workspace / "data/beta").exists(), "only the named environment's targets come back"


def test_status_shows_workspace_and_remote(workspace: Path) -> None:
    status = nbenv("data", "status", "--all", cwd=workspace)
    assert status.returncode == 0, status.stderr
    assert [line.split() for line in status.stdout.splitlines()[1:]] == [
        ["data/alpha", "ok", "not-pushed"],
        ["data/beta", "ok", "not-pushed"],
    ]
    assert nbenv("data", "push", "alpha", cwd=workspace).returncode == 0
    wipe(workspace)
    rows = [line.split() for line in nbenv("data", "status", "--all", cwd=workspace).stdout.splitlines()[1:]]
    assert rows == [["data/alpha", "missing", "ok"], ["data/beta", "missing", "missing"]]


@pytest.mark.fault
def test_s3_stopping_mid_pull_fails_cleanly_and_a_rerun_completes(workspace: Path, s3: CuttableProxy) -> None:
    assert nbenv("data", "push", "alpha", "--remote", "s3", cwd=workspace).returncode == 0
    expected = hashes(workspace, "data/alpha")
    wipe(workspace)
    s3.cut_after(400_000)  # the server "stops" after ~400 kB of the ~900 kB
    try:
        failed = nbenv("data", "pull", "alpha", "--remote", "s3", cwd=workspace, timeout=300)
    finally:
        was_cut = s3.was_cut
        s3.restore()
    assert was_cut, "the fault was injected during the transfer"
    assert failed.returncode == 8
    lines = failed.stderr.strip().splitlines()
    # A server that stopped answering is named as such (issue 15: data messages say what is true).
    assert lines[-2].startswith("pull: data/alpha: not in the cache, and remote 's3' (s3://"), lines[-2]
    assert ") is unreachable: " in lines[-2], lines[-2]
    assert lines[-1].startswith("  hint:") and "Traceback" not in failed.stderr
    assert not (workspace / "data/alpha").exists(), "nothing half-written in the workspace"
    rerun = nbenv("data", "pull", "alpha", "--remote", "s3", cwd=workspace)
    assert rerun.returncode == 0, rerun.stderr
    assert hashes(workspace, "data/alpha") == expected


@pytest.mark.fault
def test_an_object_corrupted_on_the_remote_is_detected_not_checked_out(workspace: Path, tmp_path: Path) -> None:
    assert nbenv("data", "push", "alpha", cwd=workspace).returncode == 0
    objects = sorted(p for p in (tmp_path / "remote").rglob("*") if p.is_file() and not p.name.endswith(".dir"))
    objects[0].write_bytes(b"corrupted on the remote")
    wipe(workspace)
    result = nbenv("data", "pull", "alpha", cwd=workspace)
    assert result.returncode == 8
    assert "data/alpha" in result.stderr.splitlines()[-2] and "Traceback" not in result.stderr
    assert not (workspace / "data/alpha").exists()


@pytest.mark.fault
def test_up_refuses_when_a_target_is_missing_on_the_remote(workspace: Path) -> None:
    wipe(workspace)  # nothing was pushed: the remote lacks data/alpha
    result = nbenv("up", "alpha", cwd=workspace)
    assert result.returncode == 8, result.stderr
    assert "data/alpha" in result.stderr.splitlines()[-2]
    assert (
        docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project('alpha', 'nbenv')}").stdout.strip()
        == ""
    )


@pytest.mark.security
def test_credentials_stay_in_dvcs_local_config(workspace: Path) -> None:
    assert nbenv("generate", cwd=workspace).returncode == 0
    committed = [p for p in workspace.rglob("*") if p.is_file() and ".git/" not in p.as_posix()]
    leaking = [p for p in committed if p.name != "config.local" and b"secret_access_key" in p.read_bytes()]
    assert leaking == []
