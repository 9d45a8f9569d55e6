"""The builder stage: uv pinned by hash, one cache-mounted uv step per group, BuildKit required."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nbenv.adapters.engine import Builder, BuildRequest, Engine
from nbenv.errors import BuildError
from nbenv.inimage import fetch_uv
from nbenv.render import dockerfile
from tests.conftest import REPO, run_cli


@pytest.fixture
def generated(workspace: Path) -> dict[str, str]:
    result = run_cli("generate", cwd=workspace)
    assert result.code == 0, result.err
    return {name: (workspace / "docker" / name / "Dockerfile").read_text() for name in ("base", "traffic-analysis")}


def _stages(text: str) -> tuple[str, str]:
    """(the build stages: tools and builder, the final stage)."""
    build, final = re.split(r"(?m)^FROM \S+\s*$", text.split(" AS tools\n", 1)[1], maxsplit=1)
    return build, final


def test_the_uv_pin_is_the_one_in_nbenvs_own_lock() -> None:
    """UV_VERSION/UV_HASHES must equal poetry.lock's uv (group nbenv-builder), every Linux wheel."""
    lock = tomllib.loads((REPO / "poetry.lock").read_text())
    uv = next(p for p in lock["package"] if p["name"] == "uv")
    assert "nbenv-builder" in uv["groups"]
    assert uv["version"] == dockerfile.UV_VERSION, "bump UV_VERSION in nbenv/render/dockerfile.py"
    linux = tuple(f["hash"] for f in uv["files"] if f["file"].endswith(".whl") and "linux" in f["file"])
    assert linux == dockerfile.UV_HASHES, f"UV_HASHES in nbenv/render/dockerfile.py should be {linux}"


def test_uv_is_installed_with_hash_checking_into_the_build_dir_only(generated: dict[str, str]) -> None:
    for text in generated.values():
        builder, final = _stages(text)
        assert f"'uv=={dockerfile.UV_VERSION}'" in builder
        for digest in dockerfile.UV_HASHES:
            assert f"'--hash={digest}'" in builder
        assert "python3 /tmp/nbenv/fetch_uv.py /tmp/nbenv/uv.txt /tmp/nbenv/uv /tmp/nbenv/ca-bundle.pem" in builder
        assert "uv" not in final.replace("/opt/venv", "")  # neither uv nor its cache reaches the final stage
    arguments = fetch_uv.install_arguments("/tmp/nbenv/uv.txt", "/tmp/nbenv/uv", "")
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir"):
        assert flag in arguments
    assert arguments[arguments.index("--target") + 1] == "/tmp/nbenv/uv" and "--index-url" not in arguments
    with_index = fetch_uv.install_arguments("r.txt", "t", "https://mirror.example/simple")
    assert with_index[with_index.index("--index-url") + 1] == "https://mirror.example/simple"


def test_pip_runs_from_ensurepips_wheel_without_being_installed(tmp_path: Path) -> None:
    """The tools stage's fast path, on this interpreter: pip straight from the wheel, and its CA bundle."""
    with fetch_uv.ensurepip_wheel() as wheel:
        if wheel is None:
            pytest.skip("this interpreter's ensurepip carries no pip wheel (the fallback venv is used)")
        pip, bundle = fetch_uv.pip_command(wheel, str(tmp_path))
        version = subprocess.run([*pip, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("pip ") and wheel in version
    assert b"-----BEGIN CERTIFICATE-----" in bundle
    assert not (tmp_path / "pip").exists(), "no venv was made"


def test_without_ensurepips_wheel_a_throwaway_venv_runs_pip(tmp_path: Path) -> None:
    """The fallback for interpreters whose ensurepip layout is unknown: slower, same result."""
    pip, bundle = fetch_uv.pip_command(None, str(tmp_path))
    version = subprocess.run([*pip, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("pip ") and str(tmp_path / "pip") in version
    assert b"-----BEGIN CERTIFICATE-----" in bundle


def test_no_ensurepip_at_all_means_no_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ensurepip", None)  # what `import ensurepip` sees without it
    with fetch_uv.ensurepip_wheel() as wheel:
        assert wheel is None


def test_the_ca_bundle_is_pips_plus_the_extra_ca_if_any(tmp_path: Path) -> None:
    extra = tmp_path / "extra-ca.pem"
    out = tmp_path / "bundle.pem"
    fetch_uv.write_ca_bundle(str(out), b"PIP-BUNDLE", str(extra))  # no extra CA file at all
    assert out.read_bytes() == b"PIP-BUNDLE"
    extra.write_bytes(b"")
    fetch_uv.write_ca_bundle(str(out), b"PIP-BUNDLE", str(extra))  # an empty one
    assert out.read_bytes() == b"PIP-BUNDLE"
    extra.write_bytes(b"EXTRA-CA\n")
    fetch_uv.write_ca_bundle(str(out), b"PIP-BUNDLE", str(extra))
    assert out.read_bytes() == b"PIP-BUNDLE\nEXTRA-CA\n"


def test_every_group_is_one_cached_uv_step_with_hashes(generated: dict[str, str]) -> None:
    expected = {"base": ["notebook"], "traffic-analysis": ["models"]}
    for name, text in generated.items():
        builder, _ = _stages(text)
        steps = re.findall(
            r"(?m)^RUN --mount=type=cache,id=nbenv-uv,target=/root/.cache/uv \\\n"
            r"    --mount=type=secret,id=nbenv-index-url,target=/run/secrets/nbenv-index-url \\\n"
            r"    --mount=type=secret,id=nbenv-extra-ca,target=/run/secrets/nbenv-extra-ca \\\n(.*\\\n.*)$",
            builder,
        )
        assert [re.search(r"requirements/(\w+)\.txt", s).group(1) for s in steps] == expected[name]  # type: ignore[union-attr]
        for step in steps:
            assert (
                "sh /tmp/nbenv/with-secrets.sh /tmp/nbenv/uv/bin/uv pip install --python /opt/venv/bin/python "
                "--no-deps --require-hashes" in step
            )
            assert "NBENV_INDEX_URL" not in step, "the index URL is a secret file, never an ARG"
        assert "ARG NBENV_INDEX_URL" not in text
        assert ("--target /opt/nbenv/layers/traffic-analysis" in builder) == (name == "traffic-analysis")
        assert "pip install --no-cache-dir --no-deps --require-hashes -r /tmp/nbenv/requirements" not in builder


@pytest.mark.security
def test_the_ca_and_uv_settings_stay_in_the_builder_stage(generated: dict[str, str]) -> None:
    for text in generated.values():
        builder, final = _stages(text)
        assert "SSL_CERT_FILE=/tmp/nbenv/ca-bundle.pem" in builder
        assert "UV_LINK_MODE=copy" in builder
        for name in ("SSL_CERT_FILE", "PIP_CERT", "UV_", "NBENV_INDEX_URL", "--mount"):
            assert name not in final, name


@pytest.mark.security
def test_no_index_host_is_written(generated: dict[str, str]) -> None:
    for text in generated.values():
        assert not re.search(r"https?://", text.replace("http://127.0.0.1:8888/api", ""))
        assert "pypi" not in text.lower() and "pythonhosted" not in text.lower()


def test_the_header_says_buildkit_is_needed(generated: dict[str, str]) -> None:
    for text in generated.values():
        assert "Needs BuildKit" in text.split("ARG ", 1)[0]
        assert not text.startswith("# syntax=")  # the frontend image could not be pulled everywhere


def test_the_classic_builder_is_refused_with_the_fix(tmp_path: Path) -> None:
    engine = Engine(docker="docker")
    engine.__dict__["builder"] = Builder("classic", "docker")  # what `builder` detects without BuildKit
    request = BuildRequest(context=tmp_path, tags=("x/y:z",), build_args={}, labels={})
    with pytest.raises(BuildError) as caught:
        engine.build(request, on_line=lambda line: None, live=False)
    assert "BuildKit" in caught.value.message and "\n" not in caught.value.message
    assert "buildx" in str(caught.value.hint)
