"""Real-engine fixtures: one workspace, one base image, one running environment per session.

Everything created is tagged with this session's image prefix or compose project and removed
at the end, even when tests fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbenv.plan import compose_project
from nbenv.spec.models import RepoConfig
from tests.conftest import REPO, WORKSPACE_FILES

# The Ctrl-C tests send SIGINT to nbenv as a terminal would. A test run started in the background by a
# non-interactive shell (`cmd &`) inherits SIGINT ignored, and exec keeps an ignored signal ignored:
# nbenv would never see the Ctrl-C a user's terminal delivers. Handling it here (a handled signal is
# reset to the default on exec) gives every command the tests start a terminal's disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SESSION = uuid.uuid4().hex[:8]
PREFIX = f"nbenv-test-{SESSION}"
BASE_TAG = f"{PREFIX}/debian-python:bookworm"


def project(name: str, prefix: str = PREFIX) -> str:
    """The compose project nbenv gives environment `name` of a workspace with image prefix `prefix`."""
    return compose_project(RepoConfig(image_prefix=prefix), name)


def nbenv_bin() -> str:
    found = shutil.which("nbenv", path=str(Path(sys.executable).parent))
    assert found, "nbenv is installed into the test venv by scripts/bootstrap"
    return found


# The workspace belongs to UID 1000 (the container's user) while the tests run as root: git refuses
# such a checkout unless told it is safe, as a user would once with `git config safe.directory`.
GIT_ENV = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "GIT_AUTHOR_NAME": "nbenv tests",
    "GIT_AUTHOR_EMAIL": "tests@nbenv.invalid",
    "GIT_COMMITTER_NAME": "nbenv tests",
    "GIT_COMMITTER_EMAIL": "tests@nbenv.invalid",
}


def nbenv(
    *args: str, cwd: Path, timeout: float = 1800, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user runs it."""
    return subprocess.run(
        [nbenv_bin(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    """Commit whatever the tests changed, so the tree is clean; return the new HEAD."""
    git("add", "-A", cwd=root)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=root)
    return git("rev-parse", "HEAD", cwd=root)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def remove_images(prefix: str) -> None:
    """Remove every image of repositories `prefix/...` (what a session or module built)."""
    images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    mine = [image for image in images if image.startswith(f"{prefix}/")]
    if mine:
        docker("rmi", "--force", *mine, check=False)


@contextmanager
def session_images_kept(names: tuple[str, ...] = ("base", "traffic-analysis")) -> Iterator[None]:
    """Pushes after new commits rebuild the session's images with fresh labels (another revision) under the
    same tags; put the session's originals back afterwards, so the tests that follow find them as they were."""
    original = {name: _image_id(f"{PREFIX}/{name}:latest") for name in names}
    tags = {
        name: json.loads(docker("image", "inspect", "--format", "{{json .RepoTags}}", image).stdout)
        for name, image in original.items()
    }
    keep = {name: f"{PREFIX}/keep-{name}:kept" for name in names}  # nothing removes them meanwhile
    for name in names:
        docker("tag", original[name], keep[name])
    try:
        yield
    finally:
        for name in names:
            current = _image_id(f"{PREFIX}/{name}:latest")
            for tag in tags[name]:
                docker("tag", original[name], tag, check=False)
            docker("rmi", keep[name], check=False)
            if current != original[name]:
                docker("rmi", current, check=False)


def _image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_cache_records() -> dict[str, bool]:
    """The engine's BuildKit cache records: id -> in use."""
    import docker as docker_py

    client = docker_py.from_env()
    try:
        return {r["ID"]: bool(r.get("InUse")) for r in client.df().get("BuildCache") or []}
    finally:
        client.close()


def remove_build_cache_since(before: set[str]) -> None:
    """Remove the cache records this session's builds added (each session builds FROM its own base
    image, so no later session could reuse them: left alone they fill a reused machine's disk)."""
    import docker as docker_py

    client = docker_py.from_env()
    try:
        for _ in range(5):  # a record another one still uses goes in a later round
            new = [rid for rid, in_use in build_cache_records().items() if rid not in before and not in_use]
            for rid in new:
                client.api.prune_builds(filters={"id": rid})  # one id per call: the engine allows no more
            if not new:
                return
    finally:
        client.close()


@pytest.fixture(scope="session")
def engine() -> Iterator[None]:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: the README's test command (scripts/test) starts one")
    before = set(build_cache_records())
    yield
    remove_build_cache_since(before)


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory: pytest.TempPathFactory, engine: None) -> Iterator[Path]:
    """The demo workspace with this session's image prefix and base, small data, owned by UID 1000."""
    root = tmp_path_factory.mktemp("e2e") / "repo"
    root.mkdir()
    # nbenv/ is the project's own package (importable = true); demo/ holds the pipeline's generator (dvc.yaml)
    for name in [*WORKSPACE_FILES, "nbenv", "demo"]:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        .replace('image_prefix = "nbenv"', f'image_prefix = "{PREFIX}"')
        .replace('default_base_image = "nbenv/debian-python:bookworm"', f'default_base_image = "{BASE_TAG}"')
    )
    shutil.copy2(REPO / "dvc.lock", root / "dvc.lock")
    # A real DVC workspace: the demo pipeline makes the data, a session-local remote keeps it.
    tools = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "remote", "add", "-d", "local", str(root.parent / "dvc-remote")],
        ["dvc", "repro", "--quiet"],
    ):
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, env={**os.environ, **tools})
        assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    pushed = nbenv("data", "push", "traffic-analysis", cwd=root)
    assert pushed.returncode == 0, pushed.stderr
    (root / "notebooks").mkdir(exist_ok=True)
    # A committed, clean checkout (generated files included), so images carry a real commit.
    shutil.copy2(REPO / ".gitignore", root / ".gitignore")
    generated = nbenv("generate", cwd=root)
    assert generated.returncode == 0, generated.stderr
    commit_all(root, "e2e workspace")
    if os.geteuid() == 0:  # the container's user (UID 1000) must be able to write the source mount
        for path in [root, *root.rglob("*")]:
            os.chown(path, 1000, 100)
    yield root
    remove_images(PREFIX)


@pytest.fixture(scope="session")
def base_image(e2e_workspace: Path) -> str:
    result = nbenv("image", "base", "--tag", BASE_TAG, cwd=e2e_workspace)
    assert result.returncode == 0, result.stderr
    return BASE_TAG


@dataclass(frozen=True)
class Up:
    url: str
    token: str
    port: int
    stdout: str
    stderr: str
    workspace: Path

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        compose_file = self.workspace / "docker/traffic-analysis/compose.yaml"
        env_file = self.workspace / ".nbenv/run/traffic-analysis/compose.env"
        return subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                project("traffic-analysis"),
                "-f",
                str(compose_file),
                "--env-file",
                str(env_file),
                *args,
            ],
            capture_output=True,
            text=True,
        )

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "jupyter", *command)


@pytest.fixture(scope="session")
def demo_up(e2e_workspace: Path, base_image: str) -> Iterator[Up]:
    """`nbenv up traffic-analysis` once for the session (builds base + traffic-analysis)."""
    port = free_port()
    try:
        result = nbenv("up", "traffic-analysis", "--port", str(port), cwd=e2e_workspace)
        assert result.returncode == 0, f"nbenv up failed:\n{result.stderr[-4000:]}"
        url = result.stdout.strip()
        token = url.rsplit("token=", 1)[-1]
        yield Up(url, token, port, result.stdout, result.stderr, e2e_workspace)
    finally:
        nbenv("down", "traffic-analysis", cwd=e2e_workspace, timeout=120)


REGISTRY_LOGS: dict[str, Path] = {}  # host:port -> the registry fixture's log (its access log at level info)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1; returns host:port."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed: the README's test command (scripts/test) installs it")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    REGISTRY_LOGS[f"127.0.0.1:{port}"] = root / "registry.log"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: info}\n"  # one access-log line per request: who wrote each manifest
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    log = (root / "registry.log").open("w")
    server = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the registry did not answer: {(root / 'registry.log').read_text()[-2000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        pushed = [image for image in images if image.startswith(f"127.0.0.1:{port}/")]
        if pushed:
            docker("rmi", "--force", *pushed, check=False)


@pytest.fixture(scope="session")
def run_ready_workspace(e2e_workspace: Path, base_image: str) -> Path:
    """For `nbenv run`: the demo notebook copied in, and traffic-analysis's image built (or found up
    to date, when `demo_up` built it first), so that no test pays for the build.

    The notebook and what the run tests write are excluded in `.git/info/exclude` (not committed,
    not a change): the workspace's checkout stays as clean as the other tests expect.
    """
    notebook = e2e_workspace / "notebooks" / "traffic.ipynb"
    notebook.parent.mkdir(exist_ok=True)
    shutil.copy2(REPO / "notebooks" / "traffic.ipynb", notebook)
    if os.geteuid() == 0:
        os.chown(notebook, 1000, 100)
    with (e2e_workspace / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("/notebooks/traffic.ipynb\n/notebooks/*.out.ipynb\n/notebooks/scratch-*/\n")
    built = nbenv("image", "build", "traffic-analysis", cwd=e2e_workspace)
    assert built.returncode == 0, built.stderr[-4000:]
    return e2e_workspace


def jupyter_api(url: str, token: str | None = None, method: str = "GET", body: object = None) -> tuple[int, str]:
    """One request to a Jupyter server's REST API (the token in the header, never the URL): status and body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


# Real rootless and userns-remap engines (see tests/e2e/rootless.py), for the UID mapping tests.
from tests.e2e.rootless import (  # noqa: E402, F401
    remapped_base_image,
    remapped_engine,
    rootless_base_image,
    rootless_engine,
)
