"""The builder stage: uv pinned by hash, one cache-mounted uv step per group, BuildKit required."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from nbenv.adapters.engine import Builder, BuildRequest, Engine
from nbenv.errors import BuildError
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
        install = re.search(r"pip install ([^\n]*\\\n[^\n]*)-r /tmp/nbenv/uv.txt", builder)
        assert install, builder
        flags = ("--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir", "--target /tmp/nbenv/uv")
        for flag in flags:
            assert flag in install.group(1)
        assert "uv" not in final.replace("/opt/venv", "")  # neither uv nor its cache reaches the final stage


def test_every_group_is_one_cached_uv_step_with_hashes(generated: dict[str, str]) -> None:
    expected = {"base": ["notebook"], "traffic-analysis": ["models"]}
    for name, text in generated.items():
        builder, _ = _stages(text)
        steps = re.findall(r"(?m)^RUN --mount=type=cache,id=nbenv-uv,target=/root/.cache/uv \\\n(.*\\\n.*)$", builder)
        assert [re.search(r"requirements/(\w+)\.txt", s).group(1) for s in steps] == expected[name]  # type: ignore[union-attr]
        for step in steps:
            assert "/tmp/nbenv/uv/bin/uv pip install --python /opt/venv/bin/python --no-deps --require-hashes" in step
            assert '${NBENV_INDEX_URL:+--index-url "$NBENV_INDEX_URL"}' in step
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
