"""Issue 13 items 5 and 13: the extra CA bundle (read only from inside the repository when committed,
certificates only, a BuildKit secret) and index credentials masked in every build output line."""

from __future__ import annotations

import base64
import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nbenv.adapters.engine import MASK, MIN_LOOSE_SECRET, _redactor, url_secrets
from nbenv.certs import CA_LIMIT, certificates, host_ca_bundle, pem, repo_ca_bundle
from nbenv.errors import BuildError, SpecError
from tests.conftest import REPO, run_cli, snapshot

security = pytest.mark.security
badinput = pytest.mark.badinput


def make_cert(common_name: str) -> str:
    """A self-signed CA certificate in PEM form (its bytes are unique to this call)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def cert() -> str:
    return make_cert("nbenv test CA")


# --- certificates only ---------------------------------------------------------------------------


@security
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_only_well_formed_certificates_leave_the_file(cert: str) -> None:
    other = make_cert("second")
    key_block = (
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
    )
    broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    short = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"
    data = f"# canary comment NBENV_INDEX_URL=https://u:p@h\n{key_block}{cert}junk between\n{broken}{short}{other}"
    ders = certificates(data.encode())
    assert len(ders) == 2
    out = pem(ders)
    assert out == pem(certificates(cert.encode())) + pem(certificates(other.encode()))
    assert "canary" not in out and "PRIVATE" not in out and "junk" not in out and "NBENV" not in out
    assert re.fullmatch(r"(-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n)+", out)


@security
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=4096), st.lists(st.sampled_from(["cert", "junk", "begin", "end"]), max_size=6))
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_whatever_the_file_holds_only_canonical_certificate_blocks_come_out(noise: bytes, parts: list[str]) -> None:
    cert = _CERT
    pieces = {
        "cert": cert.encode(),
        "junk": noise,
        "begin": b"-----BEGIN CERTIFICATE-----\n",
        "end": b"-----END CERTIFICATE-----",
    }
    data = b"".join(pieces[p] for p in parts) + noise
    out = pem(certificates(data))
    assert re.fullmatch(r"(-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n)*", out)
    for block in re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END", out, re.S):
        der = base64.b64decode("".join(block.split()), validate=True)
        assert der[0] == 0x30


_CERT = make_cert("hypothesis")


@pytest.fixture
def repo_with(workspace: Path):  # type: ignore[no-untyped-def]
    def configure(value: str) -> subprocess.CompletedProcess[str] | object:
        pyproject = workspace / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(
            text.replace('image_prefix = "nbenv"', f'image_prefix = "nbenv"\nca_bundle = "{value}"', 1)
        )
        return run_cli("validate", cwd=workspace)

    return configure


HOSTILE_CA = [
    "/etc/shadow",
    "/proc/self/environ",
    "/etc/ssl/certs/ca-certificates.crt",
    "..",
    "../..",
    "../../etc/passwd",
    "environments/../../outside.pem",
    "~/.ssh/id_rsa",
    "link-out.pem",  # a symlink to a certificate file outside the repository
    "link-dir/ca.pem",  # through a symlinked directory
    "link-environ.pem",  # -> /proc/self/environ
    "fifo.pem",
    "dir.pem",
    "empty.pem",
    "no-cert.pem",
    "key-only.pem",
    "huge.pem",
    "missing.pem",
]


@security
@pytest.mark.parametrize("value", HOSTILE_CA)
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_a_committed_ca_bundle_outside_the_repo_or_without_certificates_is_refused(
    workspace: Path,
    tmp_path: Path,
    cert: str,
    value: str,
    repo_with,  # type: ignore[no-untyped-def]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ca.pem").write_text(cert)
    (workspace / "link-out.pem").symlink_to(outside / "ca.pem")
    (workspace / "link-dir").symlink_to(outside)
    (workspace / "link-environ.pem").symlink_to("/proc/self/environ")
    os.mkfifo(workspace / "fifo.pem")
    (workspace / "dir.pem").mkdir()
    (workspace / "empty.pem").write_text("")
    (workspace / "no-cert.pem").write_text("NBENV_INDEX_URL=https://user:secret@host/simple\n")
    (workspace / "key-only.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    with (workspace / "huge.pem").open("wb") as handle:
        handle.truncate(CA_LIMIT + 1)
    before = snapshot(workspace)
    result = repo_with(value)
    assert result.code == 3, result.err
    assert 1 <= len(result.err_lines) <= 2 and "Traceback" not in result.err, result.err
    assert re.match(r"^pyproject\.toml:\d+: tool\.nbenv\.ca_bundle: ", result.err_lines[0]), result.err
    assert "secret" not in result.err, "the file's content is never echoed"
    after = snapshot(workspace)
    assert {k: v for k, v in after.items() if k != "pyproject.toml"} == {
        k: v for k, v in before.items() if k != "pyproject.toml"
    }


@security
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_a_committed_ca_bundle_inside_the_repo_is_read_certificates_only(workspace: Path, cert: str) -> None:
    (workspace / "certs").mkdir()
    (workspace / "certs/proxy.pem").write_text(f"# our proxy\n{cert}")
    (workspace / "certs/link.pem").symlink_to("proxy.pem")  # a link that stays inside is fine
    for value in ("certs/proxy.pem", "certs/link.pem", "./certs/proxy.pem"):
        ca = repo_ca_bundle(workspace, value)
        assert ca.count == 1 and ca.pem == pem(certificates(cert.encode())) and "#" not in ca.pem


@security
@pytest.mark.parametrize("variable", ["NBENV_CA_BUNDLE", "PIP_CERT"])
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_an_explicit_host_ca_bundle_may_live_anywhere_but_must_be_a_file_with_certificates(
    tmp_path: Path, cert: str, variable: str
) -> None:
    elsewhere = tmp_path / "home" / "ca.pem"
    elsewhere.parent.mkdir()
    elsewhere.write_text(cert)
    assert host_ca_bundle(variable, str(elsewhere)).count == 1
    for bad in ("/dev/zero", "/proc/self/environ", str(tmp_path), str(tmp_path / "nope.pem")):
        with pytest.raises(BuildError) as raised:
            host_ca_bundle(variable, bad)
        assert raised.value.message.startswith(f"{variable}={bad}: ") and "\n" not in raised.value.message


@security
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_the_generated_dockerfiles_use_the_ca_only_as_a_secret_mount(workspace: Path) -> None:
    assert run_cli("generate", cwd=workspace).code == 0
    for dockerfile in sorted((workspace / "docker").glob("*/Dockerfile")):
        text = dockerfile.read_text()
        assert "extra-ca.pem" not in text, "no CA file in the build context or a layer"
        downloading = [block for block in text.split("\nRUN ")[1:] if "pip install" in block or "fetch_uv.py" in block]
        assert downloading and all(
            "--mount=type=secret,id=nbenv-extra-ca,target=/run/secrets/nbenv-extra-ca" in block for block in downloading
        )
        final = text.split("\nFROM ")[-1]
        assert "nbenv-extra-ca" not in final and "with-secrets.sh" not in final and "nbenv-index-url" not in final
        assert not re.search(r"^# syntax=", text, re.M), "Debian's dockerd 20.10 pulls no frontend image"


@security
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_the_build_passes_the_ca_as_a_secret_not_in_the_context(
    workspace: Path, cert: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What `image build` hands the engine: `--secret id=nbenv-extra-ca,src=FILE` with the certificates only."""
    from nbenv.adapters import engine as engine_module
    from nbenv.adapters.engine import Builder, BuildRequest, Engine

    seen: dict[str, object] = {}

    def fake_stream(command: list[str], *, env: dict[str, str], on_line: object) -> int:
        seen["command"] = list(command)
        secret = next(part for part in command if part.startswith("id=nbenv-extra-ca,src="))
        seen["secret"] = Path(secret.split("src=", 1)[1]).read_text()
        Path(command[command.index("--iidfile") + 1]).write_text("sha256:0")
        return 0

    monkeypatch.setattr(engine_module, "stream", fake_stream)
    engine = Engine(docker="docker")
    engine.__dict__["builder"] = Builder("buildkit", "/usr/bin/docker")
    secret = tmp_path / "ca.pem"
    secret.write_text(cert)
    context = tmp_path / "context"
    context.mkdir()
    request = BuildRequest(context, ("x:1",), {}, {}, secrets={"nbenv-extra-ca": secret})
    assert engine.build(request, on_line=lambda _: None, live=False) == "sha256:0"
    command = seen["command"]
    assert isinstance(command, list) and command[command.index("--secret") + 1] == f"id=nbenv-extra-ca,src={secret}"
    assert seen["secret"] == cert and not any(context.iterdir())


# --- with-ca.sh: the combined bundle exists only while the command runs --------------------------


@security
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_with_ca_combines_the_bundles_only_for_the_command_and_removes_them(tmp_path: Path, cert: str) -> None:
    script = REPO / "nbenv/inimage/with-secrets.sh"
    base = tmp_path / "base.pem"
    base.write_text("PIP-BUNDLE\n")
    extra = tmp_path / "secret"
    env = {
        "PATH": os.environ["PATH"],
        "SSL_CERT_FILE": str(base),
        "TMPDIR": str(tmp_path / "tmp"),
        "NBENV_INDEX_SECRET": str(tmp_path / "no-index"),
    }
    (tmp_path / "tmp").mkdir()
    show = ["sh", "-c", 'echo "$SSL_CERT_FILE"; cat "$SSL_CERT_FILE"']
    without = subprocess.run(
        ["sh", str(script), *show], env={**env, "NBENV_EXTRA_CA": str(extra)}, capture_output=True, text=True
    )
    assert without.returncode == 0 and without.stdout == f"{base}\nPIP-BUNDLE\n"
    extra.write_text(cert)
    with_ca = subprocess.run(
        ["sh", str(script), *show], env={**env, "NBENV_EXTRA_CA": str(extra)}, capture_output=True, text=True
    )
    assert with_ca.returncode == 0, with_ca.stderr
    path, _, content = with_ca.stdout.partition("\n")
    assert path != str(base) and content == f"PIP-BUNDLE\n\n{cert}"
    assert not Path(path).exists() and not any((tmp_path / "tmp").iterdir()), "removed before the step ends"
    failing = subprocess.run(["sh", str(script), "sh", "-c", "exit 7"], env={**env, "NBENV_EXTRA_CA": str(extra)})
    assert failing.returncode == 7 and not any((tmp_path / "tmp").iterdir())


@security
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_with_secrets_hands_the_index_url_to_pip_and_uv_from_the_secret_file(tmp_path: Path) -> None:
    script = REPO / "nbenv/inimage/with-secrets.sh"
    index = tmp_path / "index-url"
    show = ["sh", "-c", 'echo "${NBENV_INDEX_URL:-none} ${UV_INDEX_URL:-none}"']
    env = {"PATH": os.environ["PATH"], "NBENV_INDEX_SECRET": str(index), "NBENV_EXTRA_CA": str(tmp_path / "no-ca")}
    assert subprocess.run(["sh", str(script), *show], env=env, capture_output=True, text=True).stdout == "none none\n"
    index.write_text("https://u:p@host/simple?token=t")
    out = subprocess.run(["sh", str(script), *show], env=env, capture_output=True, text=True).stdout
    assert out == "https://u:p@host/simple?token=t https://u:p@host/simple?token=t\n"


# --- masking --------------------------------------------------------------------------------------

SECRET_TEXT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*+,;=%@:", min_size=1, max_size=24
)
HOSTS = st.sampled_from(["pkgs.example", "10.0.0.7:3141", "[::1]:8080", "mirror.example:443"])
PATHS = st.sampled_from(["/simple", "/simple/", "/api/pypi/pypi/simple", "", "/nbenv-canary-no-such-index/"])
KEYS = st.sampled_from(["token", "access_token", "key", "auth", "x-token", "sig"])


@st.composite
def index_urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """An index URL with credentials in some of: user, password, query values; and its secret parts."""
    scheme = draw(st.sampled_from(["https", "http"]))
    user = draw(st.none() | SECRET_TEXT.map(lambda s: quote(s, safe="-._~!$'()*+,;=")))
    password = draw(st.none() | SECRET_TEXT.map(lambda s: quote(s, safe="-._~!$'()*+,;=:")))
    query = draw(
        st.lists(
            st.tuples(KEYS, SECRET_TEXT.map(lambda s: quote(s, safe="-._~"))), max_size=3, unique_by=lambda kv: kv[0]
        )
    )
    secrets = [s for s in (user, password) if s] + [v for _, v in query]
    if not secrets:
        query = [("token", "abcdef")]
        secrets = ["abcdef"]
    userinfo = (user or "") + (f":{password}" if password else "")
    netloc = f"{userinfo}@{draw(HOSTS)}" if userinfo else draw(HOSTS)
    url = f"{scheme}://{netloc}{draw(PATHS)}" + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    return url, secrets


LINE_SHAPES = [
    '#9 0.412 RUN sh /tmp/nbenv/with-secrets.sh uv pip install --index-url "{url}" -r r.txt',
    "#7 [builder 3/4] RUN --mount=type=cache {url}",
    "Looking in indexes: {url}",
    "error: Failed to fetch: `{url}pandas/`",
    "  {url}",
    "{url}",
]


@security
@settings(max_examples=400, deadline=None, derandomize=True)
@given(index_urls(), st.sampled_from(LINE_SHAPES))
@example(("https://:auth@pkgs.example/simple?auth=0", ["auth", "0"]), LINE_SHAPES[2])  # a password that is a key
@pytest.mark.hostile("secrets in logs (index URL user, password, query)")
def test_index_credentials_are_masked_in_every_line_shape(case: tuple[str, list[str]], shape: str) -> None:
    url, secrets = case
    redact = _redactor([url, "nbenv/base:latest", '{"commit": "abc"}'])
    line = redact(shape.format(url=url))
    netloc = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if "@" in netloc:
        assert f"://{MASK}@{netloc.rpartition('@')[2]}" in line, line
    loose = [s for s in secrets if len(s) >= MIN_LOOSE_SECRET and s.strip("*")]
    for key_value in url.partition("?")[2].split("&") if "?" in url else []:
        key = key_value.partition("=")[0]
        if any(secret in key for secret in loose):  # e.g. password "auth" and a key "auth": masked too, safely
            assert key not in line
            continue
        assert f"{key}={MASK}" in line
    for secret in secrets:
        if len(secret) >= MIN_LOOSE_SECRET and secret.strip("*"):  # a secret of stars looks like the mask
            assert secret not in line, (secret, line)


@security
@settings(max_examples=200, deadline=None, derandomize=True)
@given(index_urls())
@pytest.mark.hostile("secrets in logs (index URL user, password, query)")
def test_a_long_secret_is_masked_wherever_it_appears(case: tuple[str, list[str]]) -> None:
    url, secrets = case
    redact = _redactor([url])
    for secret in secrets:
        if len(secret) >= MIN_LOOSE_SECRET and secret.strip("*"):
            assert secret not in redact(f"401 for user {secret} (decoded {secret})")


@security
@pytest.mark.parametrize(
    ("url", "line", "expected"),
    [
        (
            "https://tok123@host/simple",
            'RUN x --index-url "https://tok123@host/simple"',
            'RUN x --index-url "https://****@host/simple"',
        ),
        ("https://u:p@host/simple", "GET https://u:p@host/simple/uv/", "GET https://****@host/simple/uv/"),
        (
            "https://host/simple?token=abc",
            "GET https://host/simple/uv/?token=abc 404",
            "GET https://host/simple/uv/?token=**** 404",
        ),
        ("https://host/simple?tokenvalue1", "GET https://host/simple?tokenvalue1", "GET https://host/simple?****"),
        ("https://us%40er:p%3Ass@host/s", "auth us@er p:ss", "auth **** ****"),
        ("https://host/simple", "nothing to hide https://host/simple", "nothing to hide https://host/simple"),
    ],
)
@pytest.mark.hostile("secrets in logs (index URL user, password, query)")
def test_the_issues_url_shapes_are_masked(url: str, line: str, expected: str) -> None:
    assert _redactor([url])(line) == expected


@security
@pytest.mark.hostile("secrets in logs (index URL user, password, query)")
def test_url_secrets_of_a_plain_value_is_empty() -> None:
    assert url_secrets("nbenv/base:latest") == ([], [])
    assert url_secrets('{"source": "git@host:x"}') == ([], [])


@security
@pytest.mark.hostile("extra CA bundle: only certificates, only from the repo or an explicit path, only a secret")
def test_repo_ca_bundle_refuses_dotdot_before_touching_anything(workspace: Path) -> None:
    with pytest.raises(SpecError, match="outside the repository"):
        repo_ca_bundle(workspace, "certs/../../x.pem")
