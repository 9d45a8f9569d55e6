"""Faults injected into real components; each is survived: one clear line, nothing lost or half-written,
no stray container, and a re-run completes.

- a full disk and a read-only directory while writing generated files (a real 64 kB tmpfs, root only);
- a base image that is missing and cannot be pulled;
- Ctrl-C during `up` and during `data pull` (S3 throttled through a proxy);
- two `up`s of different environments at once, and the same environment's `up` twice at once;
- the engine stopped during a build (a private dockerd, killed mid-build, then restarted).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import snapshot
from tests.e2e.conftest import BASE_TAG, PREFIX, docker, free_port, nbenv, nbenv_bin, project
from tests.e2e.faults import CuttableProxy, interrupt, moto_s3, reap

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
BIN = Path(sys.executable).parent
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def project_containers(name: str) -> list[str]:
    found = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project(name)}", check=False)
    return found.stdout.split()


def temp_files(root: Path) -> list[str]:
    """Half-written files nbenv's atomic writes would leave (`.NAME.*.tmp`)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*.tmp"))


def one_error(stderr: str) -> list[str]:
    """The error line and its hint: the last two lines, no traceback anywhere."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.rstrip().splitlines()
    assert lines[-1].startswith("  hint: "), lines[-3:]
    return lines[-2:]


# --- files: a full disk, a read-only directory ------------------------------------------------


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "nbenv-test", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def change_spec(workspace: Path) -> None:
    spec = workspace / "environments/base.toml"
    spec.write_text(spec.read_text().replace('groups = ["notebook"]', 'groups = ["notebook", "models"]'))


@ROOT_ONLY
def test_a_full_disk_while_generating_leaves_the_old_files_and_a_rerun_completes(workspace: Path) -> None:
    with small_tmpfs(workspace / "docker", "1m"):
        assert nbenv("generate", cwd=workspace).returncode == 0
        before = snapshot(workspace / "docker")
        change_spec(workspace)  # the next generate rewrites base's (large) requirements files
        filler = workspace / "docker" / "filler"
        with suppress(OSError), filler.open("wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
        failed = nbenv("generate", cwd=workspace)
        assert failed.returncode == 1
        error, hint = one_error(failed.stderr)
        assert "docker/" in error and "No space left on device" in error, error
        assert "nothing was half-written" in hint
        filler.unlink()
        assert snapshot(workspace / "docker") == before, "the old files are intact"
        assert temp_files(workspace) == []
        rerun = nbenv("generate", cwd=workspace)
        assert rerun.returncode == 0, rerun.stderr
        assert "models.txt" in " ".join(p.name for p in (workspace / "docker/base/requirements").iterdir())


@ROOT_ONLY
def test_a_read_only_directory_while_generating_is_one_line_and_writes_nothing(workspace: Path) -> None:
    with small_tmpfs(workspace / "docker", "1m") as generated:
        assert nbenv("generate", cwd=workspace).returncode == 0
        before = snapshot(generated)
        change_spec(workspace)
        subprocess.run(["mount", "-o", "remount,ro", str(generated)], check=True)
        failed = nbenv("generate", cwd=workspace)
        subprocess.run(["mount", "-o", "remount,rw", str(generated)], check=True)
        assert failed.returncode == 1
        error, _ = one_error(failed.stderr)
        assert error.startswith("docker/") or "/docker/" in error, error
        assert "Read-only file system" in error, error
        assert snapshot(generated) == before and temp_files(workspace) == []


# --- images -----------------------------------------------------------------------------------


def test_a_missing_base_image_is_one_line_naming_the_fix(e2e_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(e2e_workspace, root, ignore=shutil.ignore_patterns(".git", ".dvc", "data", "nbenv", ".nbenv"))
    missing = f"127.0.0.1:{free_port()}/{PREFIX}/missing:1"  # a registry that is not there: nothing leaves the host
    spec = root / "environments/base.toml"
    spec.write_text(spec.read_text() + f'base_image = "{missing}"\n')
    result = nbenv("image", "build", "base", cwd=root, timeout=300)
    assert result.returncode == 7, result.stderr
    error, hint = one_error(result.stderr)
    assert error == f"environments/base.toml: base_image: {missing} is not available locally and cannot be pulled"
    assert f"nbenv image base --tag {missing}" in hint


# --- up: Ctrl-C, concurrency ------------------------------------------------------------------


def start_up(workspace: Path, name: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [nbenv_bin(), "up", name, "--port", str(port)],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """Read stderr until a line contains `needle`; return what was read (the rest keeps flowing)."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r}:\n{''.join(seen)[-3000:]}")


def test_ctrl_c_during_up_leaves_no_container_and_no_half_written_file(e2e_workspace: Path, base_image: str) -> None:
    port = free_port()
    try:
        process = start_up(e2e_workspace, "base", port)
        try:
            wait_for_line(process, "waiting for Jupyter", timeout=900)  # compose started the container
            assert project_containers("base"), "the container exists before the interrupt"
            interrupt(process, timeout=120)
        finally:
            reap(process)
        assert project_containers("base") == [], "the container this `up` started is gone"
        run_dir = e2e_workspace / ".nbenv/run/base"
        assert temp_files(run_dir) == []
        assert len((run_dir / "jupyter_token").read_text()) == 43, "the token file is whole"
        rerun = nbenv("up", "base", "--port", str(port), cwd=e2e_workspace, timeout=900)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert rerun.stdout.startswith(f"http://127.0.0.1:{port}/lab?token=")
    finally:
        nbenv("down", "base", cwd=e2e_workspace, timeout=120)
    assert project_containers("base") == []


EXTRA = "faults-extra"


@pytest.fixture
def extra_environment(e2e_workspace: Path, base_image: str) -> Iterator[str]:
    """A second environment (a child of base with no groups of its own: a quick build), removed after."""
    spec = e2e_workspace / "environments" / f"{EXTRA}.toml"
    spec.write_text(f'spec_version = 1\nname = "{EXTRA}"\nextends = "base"\n')
    try:
        built = nbenv("image", "build", EXTRA, cwd=e2e_workspace, timeout=900)
        assert built.returncode == 0, built.stderr[-3000:]
        yield EXTRA
    finally:
        for name in (EXTRA, "base"):
            nbenv("down", name, cwd=e2e_workspace, timeout=120)
        spec.unlink()
        shutil.rmtree(e2e_workspace / "docker" / EXTRA, ignore_errors=True)
        shutil.rmtree(e2e_workspace / ".nbenv/run" / EXTRA, ignore_errors=True)


def up_at_once(workspace: Path, *jobs: tuple[str, int]) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [
            pool.submit(nbenv, "up", name, "--port", str(port), cwd=workspace, timeout=900) for name, port in jobs
        ]
        return [f.result() for f in futures]


def test_two_environments_up_at_once_get_their_ports_or_one_clear_error(
    e2e_workspace: Path, extra_environment: str
) -> None:
    first, second = free_port(), free_port()
    results = up_at_once(e2e_workspace, ("base", first), (extra_environment, second))
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert results[0].stdout.startswith(f"http://127.0.0.1:{first}/") and f":{second}/" in results[1].stdout
    for name in ("base", extra_environment):
        assert nbenv("down", name, cwd=e2e_workspace, timeout=120).returncode == 0
    shared = free_port()
    results = up_at_once(e2e_workspace, ("base", shared), (extra_environment, shared))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 9], [r.stderr[-2000:] for r in results]
    loser = next(r for r in results if r.returncode == 9)
    error, hint = one_error(loser.stderr)
    assert error == f"port {shared} on 127.0.0.1 is already in use" and "--port" in hint
    loser_name = "base" if results[0].returncode == 9 else extra_environment
    assert project_containers(loser_name) == [], "the loser left no container"


def test_the_same_environment_up_twice_at_once_starts_one_container(
    e2e_workspace: Path, extra_environment: str
) -> None:
    port = free_port()
    results = up_at_once(e2e_workspace, (extra_environment, port), (extra_environment, port))
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert results[0].stdout == results[1].stdout, "both print the same URL"
    assert len(project_containers(extra_environment)) == 1
    assert any("another `nbenv up" in r.stderr for r in results), "the second one waited for the first"


# --- data pull: Ctrl-C ------------------------------------------------------------------------


class SlowProxy(CuttableProxy):
    """A cuttable proxy that also throttles downstream bytes (~1 MB/s), so a pull takes seconds."""

    sent = 0

    def _spend(self, nbytes: int) -> bool:
        time.sleep(nbytes / 1_000_000)
        self.sent += nbytes
        return super()._spend(nbytes)


@pytest.fixture
def s3_workspace(tmp_path: Path) -> Iterator[tuple[Path, SlowProxy]]:
    """A DVC repo whose environment's data (4 MB) lives on moto's S3 server, reached through SlowProxy."""
    with moto_s3("faults") as port:
        proxy = SlowProxy(port)
        try:
            root = tmp_path / "repo"
            root.mkdir()
            from tests.conftest import REPO

            for name in ("pyproject.toml", "poetry.lock"):
                shutil.copy2(REPO / name, root / name)
            (root / "environments").mkdir()
            (root / "environments/pull.toml").write_text(
                'spec_version = 1\nname = "pull"\ngroups = ["notebook"]\n\n[[data]]\npath = "data/pull"\n'
            )
            for index in range(8):
                part = root / "data/pull" / f"part-{index}.bin"
                part.parent.mkdir(parents=True, exist_ok=True)
                part.write_bytes(os.urandom(500_000))
            dvc = str(BIN / "dvc")
            for command in (
                ["git", "init", "-q"],
                [dvc, "init", "-q"],
                [dvc, "add", "-q", "data/pull"],
                [dvc, "remote", "add", "-d", "s3", "s3://faults/data"],
                [dvc, "remote", "modify", "s3", "endpointurl", f"http://127.0.0.1:{proxy.port}"],
                [dvc, "remote", "modify", "s3", "region", "us-east-1"],
                [dvc, "remote", "modify", "--local", "s3", "access_key_id", "testing"],
                [dvc, "remote", "modify", "--local", "s3", "secret_access_key", "testing"],
            ):
                done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
                assert done.returncode == 0, f"{command}: {done.stderr}"
            yield root, proxy
        finally:
            proxy.close()


def test_ctrl_c_during_data_pull_leaves_nothing_half_written_and_a_rerun_completes(
    s3_workspace: tuple[Path, SlowProxy],
) -> None:
    root, proxy = s3_workspace
    assert nbenv("data", "push", "pull", cwd=root).returncode == 0
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "data/pull").iterdir()}
    shutil.rmtree(root / ".dvc/cache")
    shutil.rmtree(root / "data/pull")
    proxy.sent = 0
    process = subprocess.Popen(
        [nbenv_bin(), "data", "pull", "pull"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while proxy.sent < 1_000_000 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None and proxy.sent >= 1_000_000, "interrupted mid-transfer"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        reap(process)
    assert process.returncode == 130, err[-3000:]
    assert err.rstrip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not (root / "data/pull").exists(), "nothing half-written in the workspace"
    rerun = nbenv("data", "pull", "pull", cwd=root, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "data/pull").iterdir()} == expected


# --- the engine stopped during a build --------------------------------------------------------

BRIDGE, SUBNET = "nbenvfault0", "10.199.77"


class PrivateEngine:
    """A second dockerd with its own data, exec root, socket and bridge (never the main engine).

    Its build containers reach the package index through its own bridge, masqueraded by two rules
    added here and removed at the end (the main engine's rules are left alone)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = f"unix://{root}/docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.rules = [
            ["-t", "nat", "POSTROUTING", "-s", f"{SUBNET}.0/24", "!", "-o", BRIDGE, "-j", "MASQUERADE"],
            ["DOCKER-USER", "-i", BRIDGE, "-j", "ACCEPT"],
            ["DOCKER-USER", "-o", BRIDGE, "-j", "ACCEPT"],
        ]

    def network_up(self) -> None:
        subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
        for rule in self.rules:
            table = rule[:2] if rule[0] == "-t" else []
            subprocess.run(["iptables", *table, "-I", *rule[len(table) :]], check=True)

    def network_down(self) -> None:
        for rule in self.rules:
            table = rule[:2] if rule[0] == "-t" else []
            subprocess.run(["iptables", *table, "-D", *rule[len(table) :]], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], check=False, capture_output=True)

    def start(self) -> None:
        # A killed dockerd leaves its pid file and runtime state (sockets, containerd's state) behind, like
        # /var/run after a crash; a reboot would clear them. Images and the build cache (data root) stay.
        (self.root / "docker.pid").unlink(missing_ok=True)
        if self.process is not None:
            unmount_under(self.root / "exec")
            shutil.rmtree(self.root / "exec", ignore_errors=True)
        with (self.root / "dockerd.log").open("ab") as log:  # dockerd keeps its own copy of the descriptor
            self.process = self._spawn(log)
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", self.sock, "info"], capture_output=True).returncode != 0:
            assert self.process.poll() is None, (self.root / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the private dockerd did not answer"
            time.sleep(0.5)

    def _spawn(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "dockerd",
                f"--data-root={self.root}/data",
                f"--exec-root={self.root}/exec",
                f"--pidfile={self.root}/docker.pid",
                f"--host={self.sock}",
                f"--bridge={BRIDGE}",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """What a crash (or `kill -9` of the daemon) does; containerd, its child, goes with it."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        """This engine's own containerd (and shims) may outlive it: find them by their paths under our root."""
        deadline = time.monotonic() + 30
        while pids := [pid for pid in self._own_pids() if pid != os.getpid()]:
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            assert time.monotonic() < deadline, f"processes of the private engine survive: {pids}"
            time.sleep(0.2)

    def _own_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with suppress(OSError):
                    if str(self.root).encode() in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._kill_leftovers()


@pytest.fixture
def private_engine(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[PrivateEngine]:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.fail("a private dockerd needs root and dockerd (scripts/engine installs it)")
    root = Path(f"/tmp/nbenv-fault-{PREFIX[-8:]}")  # short: a unix socket path has a 108-byte limit
    root.mkdir(exist_ok=True)
    engine = PrivateEngine(root)
    engine.network_up()
    try:
        engine.start()
        with subprocess.Popen(["docker", "save", BASE_TAG], stdout=subprocess.PIPE) as save:
            loaded = subprocess.run(["docker", "-H", engine.sock, "load"], stdin=save.stdout, capture_output=True)
        assert save.returncode == 0 and loaded.returncode == 0, loaded.stderr
        yield engine
    finally:
        engine.stop()
        engine.network_down()
        unmount_under(root)  # a build killed mid-step leaves its rootfs and network namespace mounted
        shutil.rmtree(root, ignore_errors=True)


def unmount_under(root: Path) -> None:
    """Every mount point at or below `root`, deepest first."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((p for p in points if p == str(root) or p.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


def test_the_engine_stopping_mid_build_is_one_line_and_a_rerun_completes(
    e2e_workspace: Path, private_engine: PrivateEngine, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(e2e_workspace, root, ignore=shutil.ignore_patterns(".dvc", "data", ".nbenv"))
    env = {**os.environ, "DOCKER_HOST": private_engine.sock}
    generated = snapshot(root / "docker")
    process = subprocess.Popen(
        [nbenv_bin(), "image", "build", "base"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: list[str] = []
    try:
        output = wait_for_line(process, "uv pip install", timeout=600)  # a step of the builder stage runs
        time.sleep(1)
        private_engine.kill()
        rest_out, rest_err = process.communicate(timeout=300)
    finally:
        reap(process)
    stderr = "".join(output) + rest_err
    assert process.returncode in (6, 7), stderr[-3000:]
    error, _ = one_error(stderr)
    assert error.startswith(("docker build of", "no Docker engine answers")), error
    assert rest_out == ""
    assert snapshot(root / "docker") == generated, "the generated files are intact"
    private_engine.start()
    images = subprocess.run(
        ["docker", "-H", private_engine.sock, "images", "-q", f"{PREFIX}/base"], capture_output=True, text=True
    )
    assert images.stdout.strip() == "", "no half-built image carries the tag"
    rerun = subprocess.run(
        [nbenv_bin(), "image", "build", "base"], cwd=root, env=env, capture_output=True, text=True, timeout=1200
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "base: built" in rerun.stderr or "base: built" in rerun.stdout
