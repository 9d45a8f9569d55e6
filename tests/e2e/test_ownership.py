"""Your files, your user (issue 14): every host user saves notebooks, and files land as the workspace's owner.

Three owner cases on the real engine, each a copy of the e2e workspace owned by that case's user:
  root      a root-owned workspace, nbenv run by root (the container runs as UID 0 with no capability);
  uid1000   a workspace of UID 1000 (the image's own user), nbenv run by that UID;
  user4321  a workspace of an ordinary user made with `useradd` (UID 4321, in the docker group), run by them.
Each case: `nbenv up`; a real browser creates, runs, saves and renames a notebook; `nbenv shell` and
`nbenv run` make files; the container's rights are probed from inside. All cases share one image,
built once: the UID is decided at run time, never baked in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.browser import check_on_host, notebook_round_trip
from tests.e2e.conftest import BASE_TAG, PREFIX, commit_all, docker, free_port, nbenv, project, remove_images
from tests.e2e.rootless import RemappedEngine, RootlessEngine
from tests.e2e.test_run import text_of, write_notebook
from tests.e2e.users import HostUser, bare_uid, install_compose_plugin, nbenv_as, useradd

pytestmark = pytest.mark.e2e
OWNER_PREFIX = f"{PREFIX}-owners"  # its own compose project: never meets the session's demo_up
ENV = "traffic-analysis"
STRANGER = 4999  # owns files in the workspace that no case may read or change
ARTIFACTS = Path(os.environ.get("NBENV_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
ROOT_USER = HostUser(0, 0, Path("/root"), "root")


@pytest.fixture(scope="module")
def template(e2e_workspace: Path, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The e2e workspace with its own image prefix, committed clean, its image built once (as root)."""
    root = tmp_path_factory.mktemp("owners") / "repo"
    shutil.copytree(e2e_workspace, root, symlinks=True, ignore=shutil.ignore_patterns(".nbenv"))
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace(f'image_prefix = "{PREFIX}"', f'image_prefix = "{OWNER_PREFIX}"')
    pyproject.write_text(text)
    assert nbenv("generate", cwd=root).returncode == 0
    commit_all(root, "owner cases: own image prefix")
    try:
        built = nbenv("image", "build", ENV, cwd=root)
        assert built.returncode == 0, built.stderr[-3000:]
        yield root
    finally:
        remove_images(OWNER_PREFIX)


@pytest.fixture(scope="module")
def image_id(template: Path) -> str:
    ids = set(docker("images", "--format", "{{.ID}}", f"{OWNER_PREFIX}/{ENV}").stdout.split())
    assert len(ids) == 1, ids
    return docker("image", "inspect", "--format", "{{.Id}}", ids.pop()).stdout.strip()


@pytest.fixture(scope="module")
def user4321() -> Iterator[HostUser]:
    with useradd(4321, f"nbenv-t{PREFIX[-8:]}") as user:
        yield user


@pytest.fixture(scope="module")
def uid1000() -> Iterator[HostUser]:
    with bare_uid(1000, 100) as user:
        yield user


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)


@dataclass(frozen=True)
class Owner:
    case: str
    user: HostUser
    workspace: Path
    nbenv: Callable[..., subprocess.CompletedProcess[str]]

    @property
    def project(self) -> str:
        return project(ENV, OWNER_PREFIX)


@contextmanager
def owned_copy(template: Path, user: HostUser, case: str, env: dict[str, str] | None = None) -> Iterator[Owner]:
    """A copy of the template owned by `user`, in a directory they can reach; `nbenv down` and removal after."""
    parent = Path(tempfile.mkdtemp(prefix=f"nbenv-owner-{case}-"))
    parent.chmod(0o755)
    workspace = parent / "repo"
    shutil.copytree(template, workspace, symlinks=True)
    chown_tree(workspace, user.uid, user.gid)

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        if user.uid == 0:
            return nbenv(*args, cwd=workspace, timeout=timeout, env=env)
        return nbenv_as(user, *args, cwd=workspace, timeout=timeout, env=env)

    try:
        yield Owner(case, user, workspace, run)
    finally:
        run("down", ENV, timeout=120)
        shutil.rmtree(parent, ignore_errors=True)


CASES = ["root", "uid1000", "user4321"]


@pytest.fixture(params=CASES)
def owner(request: pytest.FixtureRequest, template: Path) -> Iterator[Owner]:
    user = ROOT_USER if request.param == "root" else request.getfixturevalue(request.param)
    with owned_copy(template, user, request.param) as owned:
        yield owned


def container_of(owner: Owner) -> str:
    found = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={owner.project}").stdout.split()
    assert len(found) == 1, found
    return found[0]


PROBE = r"""
import json, os, pathlib
work = pathlib.Path("/home/jovyan/work")
def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return exc.strerror
status = pathlib.Path("/proc/1/status").read_text().splitlines()
own = work / "probe-own.txt"
own.write_text("mine")
print(json.dumps({
    "id": [os.getuid(), os.getgid()],
    "status": {l.split(":")[0]: l.split()[1] for l in status if l.startswith(("Cap", "NoNewPrivs"))},
    "self": [l.split()[1] for l in open("/proc/self/status").read().splitlines() if l.startswith("CapEff")],
    "read_stranger": attempt(lambda: (work / "stranger-secret").read_text()),
    "write_stranger_dir": attempt(lambda: (work / "stranger-dir" / "x").write_text("x")),
    "chown": attempt(lambda: os.chown(own, 4999, 4999)),
    "data": attempt(lambda: (work / "data/processed/pems/x").write_text("x")),
    "jupyter_config": attempt(lambda: pathlib.Path("/opt/nbenv/jupyter/config/x").write_text("x")),
    "etc": attempt(lambda: pathlib.Path("/etc/x").write_text("x")),
    "venv": attempt(lambda: pathlib.Path("/opt/venv/x").write_text("x")),
    "state_hidden": sorted(os.listdir(work / ".nbenv")),
    "home": [os.stat("/home/jovyan").st_uid, oct(os.stat("/home/jovyan").st_mode & 0o777)],
    "readonly_root_file": attempt(lambda: (os.chmod(work / "root-0444", 0o644), (work / "root-0444").write_text("x"))),
}))
"""


def probe(owner: Owner, container: str) -> dict[str, object]:
    # The stranger's files and a 0444 file of the owner, made on the host before probing.
    secret = owner.workspace / "stranger-secret"
    secret.write_text("not yours")
    secret.chmod(0o600)
    os.chown(secret, STRANGER, STRANGER)
    (owner.workspace / "stranger-dir").mkdir(mode=0o755)
    os.chown(owner.workspace / "stranger-dir", STRANGER, STRANGER)
    readonly = owner.workspace / "root-0444"
    readonly.write_text("read-only")
    readonly.chmod(0o444)
    os.chown(readonly, owner.user.uid, owner.user.gid)
    result = docker("exec", container, "python", "-c", PROBE, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def save_through_the_api(url: str, name: str) -> None:
    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    request = urllib.request.Request(
        f"http://{parts.netloc}/api/contents/{name}",
        data=json.dumps({"type": "file", "format": "text", "content": "saved"}).encode(),
        method="PUT",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
        assert response.status in (200, 201)


def assert_owned(path: Path, user: HostUser) -> None:
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (user.uid, user.gid), f"{path.name}: {info.st_uid}:{info.st_gid}"


@pytest.mark.security
def test_every_owner_saves_their_own_files_in_one_image_without_capabilities(owner: Owner, image_id: str) -> None:
    user, ws = owner.user, owner.workspace
    up = owner.nbenv("up", ENV, "--no-pull", "--port", str(free_port()))
    assert up.returncode == 0, up.stderr[-4000:]
    assert "owned by" not in up.stderr and "warning" not in up.stderr.lower(), up.stderr
    assert f"as {user.uid}:{user.gid}" in up.stderr
    url = up.stdout.strip()
    container = container_of(owner)
    inspected = json.loads(docker("inspect", container).stdout)[0]
    assert inspected["Image"] == image_id, "one image for every owner: the UID is decided at run time"
    assert inspected["Config"]["User"] == f"{user.uid}:{user.gid}"
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    assert inspected["HostConfig"]["CapDrop"] == ["ALL"]

    # Jupyter saves as the owner (the browser's round trip is in test_browser; here the API, then the browser).
    save_through_the_api(url, "api-made.txt")
    assert_owned(ws / "api-made.txt", user)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    trip = notebook_round_trip(
        url,
        kernel_label=f"Python ({ENV})",
        rename_to=f"owned-{owner.case}.ipynb",
        new_folder=f"folder-{owner.case}",
        screenshot=ARTIFACTS / f"ownership-{owner.case}.png",
    )
    # The notebook (holding the cell's output 42), the new folder and the checkpoints: all the owner's.
    check_on_host(trip, lab_root=ws, uid=user.uid, gid=user.gid)

    # `nbenv shell`: the same user as the service.
    shell = owner.nbenv("shell", ENV, "touch", "made-by-shell")
    assert shell.returncode == 0, shell.stderr
    assert_owned(ws / "made-by-shell", user)

    # Inside: no capability, no write outside the owner's files.
    seen = probe(owner, container)
    assert seen["id"] == [user.uid, user.gid]
    status = dict(seen["status"])  # type: ignore[call-overload]
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[key] == "0000000000000000", (key, status)
    assert status["NoNewPrivs"] == "1" and seen["self"] == ["0000000000000000"]
    assert seen["read_stranger"] == "Permission denied"
    assert seen["write_stranger_dir"] == "Permission denied"
    assert seen["chown"] == "Operation not permitted"
    for key in ("data", "jupyter_config", "etc", "venv"):
        assert seen[key] == "Read-only file system", (key, seen[key])
    assert seen["state_hidden"] == [], ".nbenv/ (other environments' tokens) stays hidden"
    assert seen["home"] == [user.uid, "0o700"]
    # The documented edge (README "Guarantees"): the owner may chmod its own 0444 file and write it; for
    # root that is root's files in the source, as root's own editor could.
    assert seen["readonly_root_file"] == "ok"
    assert_owned(ws / "probe-own.txt", user)

    # `nbenv run`: outputs and files its kernel writes belong to the owner, and it holds no capability either.
    notebook = write_notebook(
        ws / "run-probe.ipynb",
        "import os, pathlib\nprint('uid', os.getuid(), os.getgid())\npathlib.Path('run-made.txt').write_text('x')",
        "print([l.split()[1] for l in pathlib.Path('/proc/self/status').read_text().splitlines() "
        "if l.startswith(('CapEff', 'NoNewPrivs'))])",
    )
    os.chown(notebook, user.uid, user.gid)
    ran = owner.nbenv("run", ENV, "run-probe.ipynb", "--no-pull", "--no-build")
    assert ran.returncode == 0, ran.stderr[-3000:]
    output = ws / "run-probe.out.ipynb"
    assert_owned(output, user)
    assert_owned(ws / "run-made.txt", user)
    text = "".join(text_of(c) for c in json.loads(output.read_text())["cells"])
    assert f"uid {user.uid} {user.gid}" in text and "['0000000000000000', '1']" in text


@pytest.mark.badinput
def test_a_user_who_cannot_write_the_workspace_gets_one_line_and_nothing_starts(
    template: Path, user4321: HostUser
) -> None:
    """UID 4321 runs nbenv in a 0755 workspace of UID 1000: it runs as itself (never the owner's rights),
    so saving could not work; `up` says so in one line instead of starting a Jupyter that cannot save."""
    with owned_copy(template, HostUser(1000, 100, Path("/nonexistent")), "foreign") as owned:
        result = nbenv_as(user4321, "up", ENV, "--no-pull", "--port", str(free_port()), cwd=owned.workspace)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert lines[-2].startswith(".: owned by UID 1000") and "4321" in lines[-2], lines
        assert lines[-1].startswith("  hint: "), lines
        assert docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={owned.project}").stdout == ""
        # `nbenv run` too: one line before any container, and nbenv's own state is not created either.
        notebook = write_notebook(owned.workspace / "foreign.ipynb", "print(1)")
        os.chown(notebook, 1000, 100)
        ran = nbenv_as(user4321, "run", ENV, "foreign.ipynb", "--no-pull", "--no-build", cwd=owned.workspace)
        assert ran.returncode == 9, ran.stderr
        assert ran.stderr.strip().splitlines()[-2].startswith(".: owned by UID 1000"), ran.stderr
        assert not (owned.workspace / "foreign.out.ipynb").exists()


@pytest.mark.security
def test_on_a_rootless_engine_files_land_as_the_caller(
    template: Path, image_id: str, rootless_engine: RootlessEngine
) -> None:
    """Rootless Docker (a real one, tests/e2e/rootless.py): nbenv runs the container as 0:0, which is
    the engine's user on the host. The same image (loaded, no registry); files land as that user."""
    engine = rootless_engine
    for repository in (BASE_TAG, f"{OWNER_PREFIX}/base", f"{OWNER_PREFIX}/{ENV}"):
        engine.load_image(repository)
    user = HostUser(engine.uid, engine.gid, engine.home, engine.user)
    install_compose_plugin(user.home, user.uid, user.gid)
    remote = {"DOCKER_HOST": engine.docker_host}
    with owned_copy(template, user, "rootless", env=remote) as owner:
        up = owner.nbenv("up", ENV, "--no-pull", "--port", str(free_port()))
        assert up.returncode == 0, up.stderr[-4000:]
        assert f"as 0:0 (host {user.uid}:{user.gid}, rootless engine)" in up.stderr
        assert "building" not in up.stderr.lower(), "the loaded image is up to date: no build"
        save_through_the_api(up.stdout.strip(), "rootless-api.txt")
        assert_owned(owner.workspace / "rootless-api.txt", user)
        found = engine.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={owner.project}")
        (container,) = found.stdout.split()
        inspected = json.loads(engine.docker("inspect", container).stdout)[0]
        assert inspected["Image"] == image_id and inspected["Config"]["User"] == "0:0"
        status = engine.docker("exec", container, "grep", "-E", "^(CapEff|CapBnd|NoNewPrivs)", "/proc/1/status")
        assert status.stdout.split() == ["CapEff:", "0" * 16, "CapBnd:", "0" * 16, "NoNewPrivs:", "1"], status
        shell = owner.nbenv("shell", ENV, "touch", "rootless-shell")
        assert shell.returncode == 0, shell.stderr
        assert_owned(owner.workspace / "rootless-shell", user)


@pytest.mark.security
def test_on_a_userns_remap_engine_nbenv_run_writes_as_the_owner(
    template: Path, user4321: HostUser, remapped_engine: RemappedEngine
) -> None:
    """A daemon-wide `userns-remap` (a real second dockerd, tests/e2e/rootless.py) would make every
    container UID land as 100000+N; nbenv opts its containers out (`--userns host`), so root running
    `nbenv run` in UID 4321's workspace writes as 4321, with no capability."""
    remapped_engine.load_image(f"{OWNER_PREFIX}/{ENV}")
    remote = {"DOCKER_HOST": remapped_engine.docker_host}
    with owned_copy(template, user4321, "remap") as owner:
        ws = owner.workspace
        notebook = write_notebook(
            ws / "remap.ipynb",
            "import os, pathlib\nprint('uid', os.getuid(), os.getgid())",
            "pathlib.Path('remap-made.txt').write_text('x')",
            "print([l.split()[1] for l in pathlib.Path('/proc/self/status').read_text().splitlines() "
            "if l.startswith(('CapEff', 'NoNewPrivs'))])",
        )
        os.chown(notebook, user4321.uid, user4321.gid)
        ran = nbenv("run", ENV, "remap.ipynb", "--no-pull", "--no-build", cwd=ws, env=remote, timeout=600)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert_owned(ws / "remap-made.txt", user4321)
        assert_owned(ws / "remap.out.ipynb", user4321)
        text = "".join(text_of(c) for c in json.loads((ws / "remap.out.ipynb").read_text())["cells"])
        assert f"uid {user4321.uid} {user4321.gid}" in text and "['0000000000000000', '1']" in text


@pytest.mark.security
def test_another_checkouts_environment_is_left_alone(template: Path, user4321: HostUser) -> None:
    """Two users' clones of one repository on a shared server share the compose project (image prefix +
    name): the second user's `up`, `down` and `shell` must not stop, replace or enter the first's Jupyter."""
    with owned_copy(template, ROOT_USER, "first") as first, owned_copy(template, user4321, "second") as second:
        up = first.nbenv("up", ENV, "--no-pull", "--port", str(free_port()))
        assert up.returncode == 0, up.stderr[-3000:]
        running = container_of(first)
        for args in (("up", ENV, "--no-pull", "--port", str(free_port())), ("down", ENV), ("shell", ENV, "true")):
            result = second.nbenv(*args)
            assert result.returncode == 9, (args, result.stderr)
            assert "running from another checkout" in result.stderr.strip().splitlines()[-2], result.stderr
        assert container_of(first) == running, "the first checkout's Jupyter still runs, untouched"
