"""arm64 under emulation on the real engine (issue 18): the demo's base image made for linux/arm64 by
mmdebstrap under QEMU, `base` and `traffic-analysis` built for both platforms by BuildKit with
`--platform`, python reporting `aarch64` inside, the two-platform image index pushed to a real registry
(docker-registry on 127.0.0.1) and each platform pulled back by digest.

The emulated builds are slow (measured in docs/benchmarks.md), so one module-scoped build serves every
assertion here. It is the real demo environment, not a smaller stand-in, in a clone of the session's
workspace with its own image prefix and `platforms = ["linux/amd64", "linux/arm64"]`; the native images
reuse the engine's layer cache of the session's build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    BASE_TAG,
    GIT_ENV,
    PREFIX,
    REGISTRY_LOGS,
    commit_all,
    docker,
    free_port,
    git,
    nbenv,
    remove_images,
)

pytestmark = pytest.mark.e2e

ARM_PREFIX = f"{PREFIX}-arm"
ARM_BASE = f"{BASE_TAG}-arm64"
PLATFORMS = '["linux/amd64", "linux/arm64"]'
MACHINE = ["python", "-c", "import platform; print(platform.machine())"]


@dataclass(frozen=True)
class ArmBuild:
    workspace: Path
    base_seconds: float
    build_seconds: float
    build_out: str


def architecture(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", ref).stdout.strip()


def run_machine(ref: str, python: str = "python") -> str:
    """What platform.machine() says in `ref` (a base image has Debian's python3 only)."""
    result = docker(
        "run", "--rm", "--network", "none", "--platform", "linux/arm64", ref, python, *MACHINE[1:], check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def arm_build(e2e_workspace: Path, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmBuild]:
    """A clone of the session's workspace building for both platforms; the arm64 base made first."""
    root = tmp_path_factory.mktemp("platforms") / "repo"
    root.mkdir()
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=e2e_workspace, env={**os.environ, **GIT_ENV}, capture_output=True, check=True
    ).stdout  # the session's committed workspace (generated files included), without its data
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    git("init", "-q", cwd=root)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            f'image_prefix = "{PREFIX}"', f'image_prefix = "{ARM_PREFIX}"\nplatforms = {PLATFORMS}'
        )
    )
    generated = nbenv("generate", cwd=root)  # the image names in docker/ follow the new prefix
    assert generated.returncode == 0, generated.stderr
    commit_all(root, "two platforms")
    try:
        started = time.monotonic()
        base = nbenv("image", "base", "--tag", BASE_TAG, "--platform", "linux/arm64", cwd=root, timeout=3600)
        assert base.returncode == 0, base.stderr[-4000:]
        base_seconds = time.monotonic() - started
        assert base.stdout.split("\t")[0] == ARM_BASE, "the arm64 base has its own tag, never the native one's"
        started = time.monotonic()
        built = nbenv("image", "build", "traffic-analysis", cwd=root, timeout=3600)
        assert built.returncode == 0, built.stderr[-4000:]
        yield ArmBuild(root, base_seconds, time.monotonic() - started, built.stdout)
    finally:
        remove_images(ARM_PREFIX)
        docker("rmi", ARM_BASE, check=False)


def test_the_arm64_base_is_an_arm64_debian_with_python(arm_build: ArmBuild) -> None:
    print(
        f"arm64 base under emulation: {arm_build.base_seconds:.0f} s; both platforms: {arm_build.build_seconds:.0f} s"
    )
    assert architecture(ARM_BASE) == "linux/arm64"
    assert architecture(BASE_TAG) == "linux/amd64", "the native base is untouched"
    assert run_machine(ARM_BASE, "python3").endswith("aarch64")


def test_one_image_per_platform_with_the_same_provenance(arm_build: ArmBuild) -> None:
    (native_line, arm_line) = [line.split("\t") for line in arm_build.build_out.splitlines()]
    assert native_line[0] == arm_line[0] == "traffic-analysis"
    assert native_line[2:] == ["built"] and arm_line[2:] == ["built", "linux/arm64"]
    assert arm_line[1].endswith("-arm64") and not native_line[1].endswith("-arm64")
    native, arm = f"{ARM_PREFIX}/traffic-analysis:latest", f"{ARM_PREFIX}/traffic-analysis:latest-arm64"
    assert architecture(native) == "linux/amd64" and architecture(arm) == "linux/arm64"
    labels = {ref: json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref).stdout)
              for ref in (native, arm)}  # fmt: skip
    for key in ("org.opencontainers.image.revision", "nbenv.lock-hash", "nbenv.groups", "nbenv.environment"):
        assert labels[native][key] == labels[arm][key], key
    assert labels[native]["nbenv.content-key"] != labels[arm]["nbenv.content-key"], "each platform has its own key"
    assert (
        labels[arm]["nbenv.parent.digest"]
        == docker("image", "inspect", "--format", "{{.Id}}", f"{ARM_PREFIX}/base:latest-arm64").stdout.strip()
    ), "the arm64 child is built FROM the arm64 parent"


def test_python_in_the_arm64_image_is_aarch64(arm_build: ArmBuild) -> None:
    assert run_machine(f"{ARM_PREFIX}/traffic-analysis:latest-arm64").endswith("aarch64")
    imports = docker(
        "run", "--rm", "--network", "none", "--platform", "linux/arm64", f"{ARM_PREFIX}/traffic-analysis:latest-arm64",
        "python", "-c", "import pandas, pyarrow, jupyterlab; print('ok')", check=False,
    )  # fmt: skip
    assert imports.returncode == 0 and imports.stdout.strip().endswith("ok"), imports.stderr


def test_status_is_per_platform_and_a_rebuild_is_a_no_op(arm_build: ArmBuild) -> None:
    status = nbenv("image", "status", "traffic-analysis", cwd=arm_build.workspace)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [
        "traffic-analysis linux/amd64\tup to date",
        "traffic-analysis linux/arm64\tup to date",
    ]
    again = nbenv("image", "build", "traffic-analysis", "--platform", "linux/arm64", cwd=arm_build.workspace)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout and "building" not in again.stderr


# --- a registry that is not on 127.0.0.0/8: TLS and a login, as a team's own registry ----------------------------

TEAM_USER, TEAM_PASSWORD = "team", "nbenv-e2e-team-pass"  # a throwaway login of the throwaway registry below
TEAM_HTPASSWD = f"{TEAM_USER}:$2b$05$MZdWAZoO6K0mhC8bbFe/G.POL556kpAU51hn7jayZG/xswhqcxhFy\n"  # bcrypt of it


@dataclass(frozen=True)
class TeamRegistry:
    host: str  # the engine's bridge gateway (this machine, not loopback): GATEWAY:PORT
    log: Path
    config: Path  # a DOCKER_CONFIG logged in to it (the user's own is never touched)


def _self_signed(address: str, root: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return root / "cert.pem", root / "key.pem"


@pytest.fixture(scope="module")
def team_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamRegistry]:
    """docker-registry over TLS with a password, on the engine's bridge gateway: for nbenv a remote registry
    (no `--insecure`, nothing over plain HTTP), its CA trusted the way a team's is (/etc/docker/certs.d)."""
    gateway = docker("network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    root = tmp_path_factory.mktemp("team-registry")
    port = free_port()
    host = f"{gateway}:{port}"
    cert, key = _self_signed(gateway, root)
    (root / "htpasswd").write_text(TEAM_HTPASSWD)
    (root / "config.yml").write_text(
        "version: 0.1\nlog: {level: info}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{host}', tls: {{certificate: {cert}, key: {key}}}}}\n"
        f"auth: {{htpasswd: {{realm: team, path: {root / 'htpasswd'}}}}}\n"
    )
    certs = Path("/etc/docker/certs.d") / host
    made = [parent for parent in (certs.parent, certs.parent.parent) if not parent.exists()]  # removed after
    log = (root / "registry.log").open("w")
    server = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(cert.read_bytes())
        config = root / "docker-config"
        config.mkdir()
        deadline = time.monotonic() + 30
        while True:
            login = subprocess.run(
                ["docker", "login", "-u", TEAM_USER, "--password-stdin", host],
                input=TEAM_PASSWORD, capture_output=True, text=True, env={**os.environ, "DOCKER_CONFIG": str(config)},
            )  # fmt: skip
            if login.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert login.returncode == 0, f"{login.stderr}\n{(root / 'registry.log').read_text()[-2000:]}"
        yield TeamRegistry(host, root / "registry.log", config)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        if certs.is_dir():
            shutil.rmtree(certs)
        for parent in made:  # the directories this fixture made, when nothing else landed there
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        pushed = [image for image in images if image.startswith(f"{host}/")]
        if pushed:
            docker("rmi", "--force", *pushed, check=False)


@pytest.mark.security
def test_push_to_a_remote_registry_with_a_login_publishes_the_index_through_the_cli(
    arm_build: ArmBuild, team_registry: TeamRegistry, tmp_path: Path
) -> None:
    """The issue's gap: a team's own registry (TLS, a password the engine's login holds). nbenv reads no
    credential: the docker CLI's login applies to the platforms' pushes and to the index alike."""
    ws, host = arm_build.workspace, team_registry.host
    # without the login: one line naming `docker login`, nothing pushed
    anonymous = tmp_path / "anonymous"
    anonymous.mkdir()
    refused = nbenv(
        "image", "push", "traffic-analysis", "--registry", f"{host}/team", cwd=ws, env={"DOCKER_CONFIG": str(anonymous)}
    )
    assert refused.returncode != 0
    assert f"registry {host}/team refused access" in refused.stderr and f"docker login {host}" in refused.stderr
    assert "Traceback" not in refused.stderr and TEAM_PASSWORD not in refused.stderr
    # logged in
    pushed = nbenv(
        "image", "push", "traffic-analysis", "--registry", f"{host}/team", cwd=ws, timeout=1800,
        env={"DOCKER_CONFIG": str(team_registry.config)},
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-4000:]
    assert not (team_registry.config / "manifests").exists(), "the CLI's local list never lands in the user's config"
    repository = f"team/{ARM_PREFIX}/traffic-analysis"
    head = git("rev-parse", "HEAD", cwd=ws)[:12]
    assert f"{host}/{repository}:sha-{head}\tpush" in pushed.stdout
    platforms = {line.split("\t")[1]: line.split("\t")[0].rsplit("@", 1)[1] for line in pushed.stdout.splitlines()
                 if line.endswith(("\tlinux/amd64", "\tlinux/arm64"))}  # fmt: skip
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    index = json.loads(
        subprocess.run(
            ["docker", "manifest", "inspect", f"{host}/{repository}:sha-{head}"], capture_output=True, text=True,
            env={**os.environ, "DOCKER_CONFIG": str(team_registry.config)}, check=True,
        ).stdout
    )  # fmt: skip
    assert {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]} == (
        platforms
    )
    writes = [
        (m["ref"], m["agent"])
        for m in map(_PUT_MANIFEST.search, team_registry.log.read_text().splitlines())
        if m and m["name"] == repository
    ]
    assert [agent for ref, agent in writes if ref == f"sha-{head}"] and all(
        agent.startswith("Docker-Client/") for ref, agent in writes if ref == f"sha-{head}"
    ), writes
    assert TEAM_PASSWORD not in pushed.stdout + pushed.stderr
    # a re-push finds the index there
    again = nbenv(
        "image", "push", "traffic-analysis", "--registry", f"{host}/team", cwd=ws,
        env={"DOCKER_CONFIG": str(team_registry.config)},
    )  # fmt: skip
    assert again.returncode == 0 and f"{host}/{repository}:sha-{head}\tpresent" in again.stdout, again.stderr
    # the fixed tag now holds another index (amd64 only, made with the CLI by someone else): refused, nothing written
    team_env = {**os.environ, "DOCKER_CONFIG": str(team_registry.config)}
    other = f"{host}/{repository}:sha-{head}"
    for command in (
        ["docker", "manifest", "create", other, f"{host}/{repository}@{platforms['linux/amd64']}"],
        ["docker", "manifest", "push", "--purge", other],
    ):
        made = subprocess.run(command, capture_output=True, text=True, env=team_env)
        assert made.returncode == 0, made.stderr
    before = team_registry.log.read_text().count('"PUT ')
    clash = nbenv("image", "push", "traffic-analysis", "--registry", f"{host}/team", cwd=ws, env=team_env)
    assert clash.returncode != 0
    assert f"refusing to push traffic-analysis: {other} already holds another image (index:linux/amd64=" in clash.stderr
    assert "Traceback" not in clash.stderr and team_registry.log.read_text().count('"PUT ') == before


def registry_manifest(registry: str, repository: str, reference: str) -> tuple[str, dict[str, object]]:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.list.v2+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Content-Type"]), dict(json.load(response))


def index_platforms(registry: str, repository: str, reference: str) -> dict[str, str]:
    """The registry's manifest list under `reference`: {"linux/ARCH": child digest}, both platforms."""
    media_type, index = registry_manifest(registry, repository, reference)
    assert media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    manifests = index["manifests"]
    assert isinstance(manifests, list)
    digests = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in manifests}
    assert set(digests) == {"linux/amd64", "linux/arm64"}
    return digests


_PUT_MANIFEST = re.compile(
    r'"PUT /v2/(?P<name>[^ ]+)/manifests/(?P<ref>[^ ]+) HTTP/[0-9.]+" 201 .* "(?P<agent>[^"]*)"$'
)


def manifest_writes(registry: str, repository: str) -> list[tuple[str, str]]:
    """(tag or digest, user agent) of each manifest the registry stored for `repository`, from its access log."""
    lines = REGISTRY_LOGS[registry].read_text().splitlines()
    matches = [_PUT_MANIFEST.search(line) for line in lines]
    return [(m["ref"], m["agent"]) for m in matches if m and m["name"] == repository]


def test_push_publishes_an_index_and_each_platform_pulls_back_by_digest(arm_build: ArmBuild, registry: str) -> None:
    ws = arm_build.workspace
    pushed = nbenv("image", "push", "traffic-analysis", "--registry", registry, cwd=ws, timeout=1800)
    assert pushed.returncode == 0, pushed.stderr[-4000:]
    repository = f"{ARM_PREFIX}/traffic-analysis"
    head = git("rev-parse", "HEAD", cwd=ws)[:12]
    digests = index_platforms(registry, repository, f"sha-{head}")
    for platform, digest in digests.items():
        assert f"{registry}/{repository}@{digest}\t{platform}" in pushed.stdout
    assert f"{registry}/{repository}@sha256:" in pushed.stdout.splitlines()[-1], "the index digest comes last"
    index_digest = pushed.stdout.splitlines()[-1].rsplit("@", 1)[1]
    # every manifest and index was written by the docker CLI (`docker push`, `docker manifest push`), none
    # over nbenv's own HTTP: the path that works with the CLI's credentials on any registry
    writes = manifest_writes(registry, repository)
    assert f"sha-{head}" in {ref for ref, _ in writes}, writes
    assert writes and all("Docker-Client/" in agent and "urllib" not in agent for _, agent in writes), writes
    assert all(agent.startswith("Docker-Client/") for ref, agent in writes if ref == f"sha-{head}"), "the CLI's own"
    # the registry serves the index under its digest too, and it is the one the push printed
    by_digest_type, by_digest = registry_manifest(registry, repository, index_digest)
    assert by_digest_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert by_digest == registry_manifest(registry, repository, f"sha-{head}")[1]
    # `image inspect` shows each platform's digest
    inspected = json.loads(nbenv("image", "inspect", "traffic-analysis", "--json", cwd=ws).stdout)
    shown = {p["platform"]: p["repo_digests"] for p in inspected["platforms"]}
    for platform, digest in digests.items():
        assert f"{registry}/{repository}@{digest}" in shown[platform]
    text = nbenv("image", "inspect", "traffic-analysis", cwd=ws).stdout
    assert all(digest in text for digest in digests.values())
    # a second push finds everything there
    again = nbenv("image", "push", "traffic-analysis", "--registry", registry, cwd=ws, timeout=1800)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"{registry}/{repository}:sha-{head}\tpresent" in again.stdout
    assert again.stdout.splitlines()[-1] == f"{registry}/{repository}@{index_digest}", "the same index, untouched"
    assert manifest_writes(registry, repository) == writes, "a re-push writes nothing"
    # each platform back by digest, from the registry: the local copies go first (their layers stay only
    # as far as another local image shares them)
    images = []  # pulled by digest, they have no tag that the fixtures' clean-up finds: removed here
    try:
        for platform, digest in digests.items():
            local = f"{ARM_PREFIX}/traffic-analysis:latest" + ("-arm64" if platform == "linux/arm64" else "")
            images.append(docker("image", "inspect", "--format", "{{.Id}}", local).stdout.strip())
            docker("rmi", "--force", images[-1])
            pulled = docker("pull", "--platform", platform, f"{registry}/{repository}@{digest}", check=False)
            assert pulled.returncode == 0, pulled.stderr
            ref = f"{registry}/{repository}@{digest}"
            assert docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == images[-1]
            assert architecture(ref) == platform
        assert run_machine(f"{registry}/{repository}@{digests['linux/arm64']}").endswith("aarch64")
    finally:
        for image in images:
            docker("rmi", "--force", image, check=False)


@pytest.mark.badinput
def test_multi_platform_push_to_a_registry_that_does_not_answer_is_one_line_before_any_build(
    e2e_workspace: Path,
) -> None:
    """The index goes through the docker CLI to any registry now; the tags are looked up before an
    emulated build starts, so a registry that does not answer (or refuses the login) is one line first."""
    root = e2e_workspace
    spec = root / "environments/base.toml"
    original = spec.read_text()
    closed = f"127.0.0.1:{free_port()}"
    try:
        spec.write_text(original + f"platforms = {PLATFORMS}\n")
        result = nbenv("image", "push", "base", "--registry", closed, "--allow-dirty", cwd=root)
        assert result.returncode != 0
        assert f"registry {closed} does not answer (trying to look up {closed}/" in result.stderr, result.stderr
        assert "building" not in result.stderr and "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("git: ")]
        assert len(lines) == 2 and lines[1].startswith("  hint: "), result.stderr  # (--allow-dirty's warning aside)
    finally:
        spec.write_text(original)
    git("diff", "--quiet", cwd=root)  # the session's workspace is as it was


# --- the hub layer on the multi-platform path: one per platform, pushed as an index under hub-KEY ----------------

HUB_LAB = """\
spec_version = 1
name = "hub-lab"
description = "The demo's JupyterLab with the hub's jupyterhub in its groups, for both platforms"
extends = "base"
groups = ["nbenv-singleuser"]
"""


@pytest.mark.fault
def test_the_hub_layer_is_built_per_platform_and_pushed_as_an_index(
    arm_build: ArmBuild, registry: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The gap: with `platforms`, `nbenv hub generate` built the hub layer for the engine's platform only and
    `image push` published the environment's index without it, so a hub on arm64 nodes found no hub-KEY.
    Now each platform's layer is built (arm64 under emulation) and hub-KEY is an index over both."""
    from nbenv.hub.generate import hub_version

    root = tmp_path_factory.mktemp("hub-platforms") / "repo"
    shutil.copytree(arm_build.workspace, root, symlinks=True)  # the same images (same prefix, same keys)
    (root / "environments" / "hub-lab.toml").write_text(HUB_LAB)
    with (root / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.nbenv.hub]\nenvironments = ["hub-lab"]\n')
    repository = f"{ARM_PREFIX}/hub-lab"
    pulled: list[str] = []
    try:
        started = time.monotonic()
        generated = nbenv("hub", "generate", cwd=root, timeout=3600)
        assert generated.returncode == 0, generated.stderr[-4000:]
        generate_seconds = time.monotonic() - started
        [served] = json.loads((root / "docker" / "hub" / "profiles.json").read_text())["profiles"]
        layer = served["image"]
        tag = layer.rsplit(":", 1)[1]
        assert layer == f"{repository}:{tag}" and tag.startswith("hub-"), layer
        assert architecture(layer) == "linux/amd64" and architecture(f"{layer}-arm64") == "linux/arm64"
        assert not any("arm64" in path.name for path in (root / "docker" / "hub").rglob("*")), "no file per platform"
        commit_all(root, "hub-lab on both platforms")
        started = time.monotonic()
        pushed = nbenv("image", "push", "hub-lab", "--registry", registry, cwd=root, timeout=1800)
        assert pushed.returncode == 0, pushed.stderr[-4000:]
        push_seconds = time.monotonic() - started
        print(
            f"hub generate for both platforms: {generate_seconds:.0f} s; push with the hub index: {push_seconds:.0f} s"
        )
        assert f"{registry}/{repository}:{tag}\tpush" in pushed.stdout, pushed.stdout
        digests = index_platforms(registry, repository, tag)
        for platform, digest in digests.items():
            assert f"{registry}/{repository}@{digest}\t{platform}\t{tag}" in pushed.stdout, pushed.stdout
        # the arm64 hub layer back from the registry by digest (the local copy goes first): it runs the hub's
        # jupyterhub-singleuser under emulation
        arm_id = docker("image", "inspect", "--format", "{{.Id}}", f"{layer}-arm64").stdout.strip()
        docker("rmi", "--force", arm_id)
        ref = f"{registry}/{repository}@{digests['linux/arm64']}"
        pulled.append(ref)
        fetched = docker("pull", "--platform", "linux/arm64", ref, check=False)
        assert fetched.returncode == 0, fetched.stderr
        assert docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == arm_id
        docker("tag", ref, f"{layer}-arm64")  # back under the tag `nbenv hub generate` gave it, for the re-push
        version = docker(
            "run", "--rm", "--network", "none", "--platform", "linux/arm64", ref, "jupyterhub-singleuser", "--version",
            check=False,
        )  # fmt: skip
        assert version.returncode == 0 and version.stdout.strip().splitlines()[-1] == hub_version(), version.stderr
        assert run_machine(ref).endswith("aarch64")
        # a re-push finds the hub index there and writes nothing
        writes = manifest_writes(registry, repository)
        again = nbenv("image", "push", "hub-lab", "--registry", registry, cwd=root, timeout=1800)
        assert again.returncode == 0, again.stderr[-4000:]
        assert f"{registry}/{repository}:{tag}\tpresent" in again.stdout, again.stdout
        assert manifest_writes(registry, repository) == writes, "a re-push writes nothing"
    finally:
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [image for image in images if image.startswith(f"{registry}/{repository}:")]
        for image in [*mine, *pulled]:
            docker("rmi", "--force", image, check=False)
