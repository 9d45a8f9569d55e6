"""Security defaults on a real engine: loopback only, token entropy, XSRF, build credentials that never
reach the image, and compose-lint on every generated compose file."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.e2e.conftest import PREFIX, Up, docker, nbenv

pytestmark = pytest.mark.security
e2e = pytest.mark.e2e


def host_addresses() -> list[str]:
    """This machine's own non-loopback IPv4 addresses (traffic to them stays on this host)."""
    result = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False)
    found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", result.stdout)
    return [address for address in found if not address.startswith("127.")]


@e2e
def test_jupyter_is_published_on_loopback_only(demo_up: Up) -> None:
    container = demo_up.compose("ps", "-q", "jupyter").stdout.strip()
    published = docker("port", container).stdout.split()
    assert published and all(p.startswith("127.0.0.1:") for p in published if ":" in p), published
    addresses = host_addresses()
    for address in addresses:
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, demo_up.port)) != 0, f"Jupyter answers on {address}:{demo_up.port}"


@e2e
def test_the_token_has_32_random_bytes_and_changes_every_start(demo_up: Up) -> None:
    raw = base64.urlsafe_b64decode(demo_up.token + "=" * (-len(demo_up.token) % 4))
    assert len(raw) == 32, "secrets.token_urlsafe(32): 256 bits"
    assert len(set(raw)) > 16, "looks random"
    token_file = demo_up.workspace / ".nbenv/run/traffic-analysis/jupyter_token"
    assert token_file.read_text() == demo_up.token
    assert oct(token_file.parent.stat().st_mode & 0o777) == "0o700", "only the owner reaches the token file"


def _request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, opener: object = None) -> int:
    request = urllib.request.Request(
        url, method=method, headers=headers or {}, data=b"{}" if method == "POST" else None
    )
    open_ = getattr(opener, "open", None) or urllib.request.urlopen
    try:
        with open_(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@e2e
def test_xsrf_protection_refuses_a_cookie_session_without_the_xsrf_token(demo_up: Up) -> None:
    """A browser session (login cookie) cannot POST without `_xsrf`; the token header is a separate, exempt way."""
    base = f"http://127.0.0.1:{demo_up.port}"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    assert _request(f"{base}/lab?token={demo_up.token}", opener=browser) == 200  # logs in: sets the cookies
    assert any(c.name.startswith("username-") for c in jar), "a login cookie was set"
    created: list[str] = []
    try:
        assert _request(f"{base}/api/contents/notebooks", method="POST", opener=browser) == 403, "no _xsrf: refused"
        xsrf = next(c.value for c in jar if c.name == "_xsrf")
        with browser.open(
            urllib.request.Request(
                f"{base}/api/contents/notebooks", method="POST", data=b"{}", headers={"X-XSRFToken": xsrf}
            ),
            timeout=10,
        ) as response:
            assert response.status == 201, "with the _xsrf token the same session may write"
            created.append(json.loads(response.read())["path"])
        assert _request(f"{base}/api/contents/notebooks", method="POST") == 403, "neither cookie nor token"
    finally:
        for path in created:
            _request(
                f"{base}/api/contents/{path}", method="DELETE", headers={"Authorization": f"token {demo_up.token}"}
            )


def _pypi_simple_url() -> str:
    """pip's own default index (this repository writes down no index host)."""
    from pip._internal.models.index import PyPI

    return str(PyPI.simple_url)


def _base_only_workspace(e2e_workspace: Path, root: Path, prefix: str) -> Path:
    """A workspace with only the `base` environment, under its own image prefix (its images are its own)."""
    root.mkdir()
    for name in ("pyproject.toml", "poetry.lock", "environments"):
        source = e2e_workspace / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    (root / "environments/traffic-analysis.toml").unlink()
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'image_prefix = "{PREFIX}"', f'image_prefix = "{prefix}"'))
    return root


def _scan(command: list[str], needles: dict[str, bytes]) -> tuple[set[str], int]:
    """Which needles appear in a command's (large) output, streamed; and how many bytes it wrote."""
    found: set[str] = set()
    tail, size = b"", 0
    longest = max(len(n) for n in needles.values())
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        while chunk := process.stdout.read(1 << 20):
            window = tail + chunk
            found |= {name for name, needle in needles.items() if needle in window}
            tail, size = window[-longest:], size + len(chunk)
    assert process.returncode == 0, command
    return found, size


@e2e
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_build_credentials_never_reach_the_image(
    e2e_workspace: Path, base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Canaries in NBENV_INDEX_URL (user and password) and in the extra CA bundle (a comment line and a
    whole canary certificate) are used by the build, and absent from `docker history --no-trunc`,
    `docker image inspect` and `docker save` of the final image; the CA's are absent from the tools and
    builder stages too (it is only ever a BuildKit secret mount, so no layer or cache record holds it)."""
    from nbenv.certs import host_ca_bundle
    from tests.unit.test_extra_ca_and_masking import make_cert

    canary_user = f"canary-user-{uuid.uuid4().hex}"
    canary_password = f"canary-pw-{uuid.uuid4().hex}"
    canary_comment = f"canary-ca-{uuid.uuid4().hex}"
    canary_cert = make_cert(f"nbenv canary {uuid.uuid4().hex}")
    cert_line = canary_cert.splitlines()[3]  # 64 base64 characters from the middle of the certificate
    prefix = f"{PREFIX}-canary"
    root = _base_only_workspace(e2e_workspace, tmp_path / "repo", prefix)
    bundle = tmp_path / "ca.pem"
    host_ca = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    bundle.write_text(f"# {canary_comment}\n{canary_cert}{host_ca.read_text()}")
    scheme, rest = _pypi_simple_url().split("://", 1)
    index_url = f"{scheme}://{canary_user}:{canary_password}@{rest}"
    env = {"NBENV_INDEX_URL": index_url, "NBENV_CA_BUNDLE": str(bundle)}
    try:
        built = nbenv("image", "build", "base", cwd=root, env=env, timeout=900)
        assert built.returncode == 0, built.stderr[-4000:]
        assert re.search(r"extra CA: \d+ certificate\(s\) from .*a build secret", built.stderr), built.stderr[-2000:]
        for canary in (canary_user, canary_password, canary_comment):
            assert canary not in built.stdout + built.stderr, "the index URL and the CA file are never printed"
        image = f"{prefix}/base:latest"
        # The same build, stopped at the tools and builder stages (all cached), with the same secret and args.
        stages = {target: f"{prefix}/base-{target}:canary" for target in ("tools", "builder")}
        secret = tmp_path / "only-certs.pem"
        secret.write_text(host_ca_bundle("NBENV_CA_BUNDLE", str(bundle)).pem)  # what nbenv passed
        index_secret = tmp_path / "index-url"
        index_secret.write_text(index_url)
        for target, ref in stages.items():
            staged = subprocess.run(
                [
                    *(["/usr/bin/docker"] if Path("/usr/bin/docker").exists() else ["docker"]),
                    *("build", "--progress=plain", "--target", target, "--tag", ref),
                    *("--secret", f"id=nbenv-extra-ca,src={secret}"),
                    *("--secret", f"id=nbenv-index-url,src={index_secret}"),
                    *("--build-arg", f"BASE_IMAGE={base_image}"),
                    str(root / "docker/base"),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "DOCKER_BUILDKIT": "1"},
                check=False,
                timeout=900,
            )
            assert staged.returncode == 0, staged.stderr[-3000:]
        needles = {"comment": canary_comment.encode(), "certificate": cert_line.encode()}
        credentials = {"user": canary_user.encode(), "password": canary_password.encode()}
        for ref, wanted in ((ref, {**needles, **credentials}) for ref in (image, *stages.values())):
            history = docker("history", "--no-trunc", ref).stdout
            inspect = docker("image", "inspect", ref).stdout
            assert history and inspect
            for name, needle in wanted.items():
                assert needle.decode() not in history, f"{name} in docker history of {ref}"
                assert needle.decode() not in inspect, f"{name} in docker image inspect of {ref}"
            found, size = _scan(["docker", "save", ref], wanted)
            assert size > 1_000_000, f"docker save wrote {ref}"
            assert found == set(), f"{found} in the saved {ref}"
    finally:
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [i for i in images if i.startswith(f"{prefix}/")]
        if mine:
            docker("rmi", "--force", *mine, check=False)


@e2e
@pytest.mark.hostile("secrets in logs (index URL user, password, query)")
def test_index_tokens_in_the_user_or_the_query_are_masked_in_the_build_log(
    e2e_workspace: Path, base_image: str, tmp_path: Path
) -> None:
    """Issue 13 item 13: `https://TOKEN@host/...?token=TOKEN2` is printed by the build (pip names the index
    it looks in); neither token reaches nbenv's output. The index path does not exist: the build fails fast."""
    canary_token = f"canary-tok-{uuid.uuid4().hex}"
    canary_query = f"canary-q-{uuid.uuid4().hex}"
    prefix = f"{PREFIX}-mask"
    root = _base_only_workspace(e2e_workspace, tmp_path / "repo", prefix)
    scheme, rest = _pypi_simple_url().split("://", 1)
    host = rest.split("/", 1)[0]
    url = f"{scheme}://{canary_token}@{host}/nbenv-canary-no-such-index/?token={canary_query}"
    try:
        # --no-cache: the index URL is a secret, so by itself it invalidates no cached step
        built = nbenv("image", "build", "base", "--no-cache", cwd=root, env={"NBENV_INDEX_URL": url}, timeout=600)
        output = built.stdout + built.stderr
        assert built.returncode != 0, "the index does not exist"
        assert "token=****" in output or "****@" in output, f"the URL was printed (masked):\n{output[-3000:]}"
        assert canary_token not in output and canary_query not in output, output[-3000:]
    finally:
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [i for i in images if i.startswith(f"{prefix}/")]
        if mine:
            docker("rmi", "--force", *mine, check=False)


def test_compose_lint_finds_nothing_high_in_any_generated_file(workspace: Path) -> None:
    from tests.unit.test_generate import KITCHEN_SINK

    (workspace / "environments/kitchen-sink.toml").write_text(KITCHEN_SINK)
    assert run_cli("generate", cwd=workspace).code == 0
    lint = shutil.which("compose-lint", path=str(Path(sys.executable).parent)) or shutil.which("compose-lint")
    assert lint, "compose-lint (PyPI) is in the dev group: run scripts/bootstrap"
    files = sorted((workspace / "docker").glob("*/compose.yaml"))
    assert len(files) == 3
    for path in [*files, *sorted((REPO / "docker").glob("*/compose.yaml"))]:
        result = subprocess.run([lint, "check", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{path}:\n{result.stdout[-3000:]}"
        assert not re.search(r"\b(HIGH|CRITICAL)\b", result.stdout), result.stdout[-3000:]
