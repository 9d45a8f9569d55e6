"""The Kubernetes data-puller image: nbenv's own dvc[s3] pins, shipped and kept equal to its lock;
a Dockerfile hadolint accepts; a content-key tag."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from nbenv.errors import SpecError
from nbenv.hub import dvc_puller
from nbenv.lock import canonical, read_lock
from nbenv.server_env import parse, shipped
from tests.conftest import REPO
from tests.unit.test_generated_files_lint import HADOLINT_CONFIG, _tool

BASE = "nbenv/debian-python:bookworm"


def test_the_shipped_pins_are_nbenvs_own_lock() -> None:
    """nbenv/render/dvc-puller.txt == what nbenv's lock code makes of its poetry.lock (refresh: scripts/puller-pins)."""
    lock = read_lock(REPO / "poetry.lock", tomllib.loads((REPO / "pyproject.toml").read_text()))
    data = tomllib.loads((REPO / "poetry.lock").read_text())
    assert shipped(dvc_puller.PULLER_PINS) == dvc_puller.pins_text(lock, data), "run scripts/puller-pins"
    names = {canonical(r.name) for r in parse(shipped(dvc_puller.PULLER_PINS))}
    assert {"dvc", "dvc-s3", "s3fs", "aiobotocore", "botocore"} <= names
    assert not names & {"jupyterlab", "pandas", "pyarrow", "typer"}, "only dvc[s3] and what it needs"
    # The closure is complete: every dependency of every pinned package is pinned too.
    packages = {canonical(p["name"]): p for p in data["package"]}
    for name in names:
        assert {canonical(d) for d in packages[name].get("dependencies", {})} <= names, name


def test_dvc_pins_match_the_dvc_nbenv_runs() -> None:
    from importlib.metadata import version

    pins = {canonical(r.name): r.text.split("==", 1)[1].split()[0] for r in parse(shipped(dvc_puller.PULLER_PINS))}
    assert pins["dvc"] == version("dvc") and pins["dvc-s3"] == version("dvc-s3")


@pytest.mark.security
def test_the_puller_dockerfile_passes_hadolint_and_runs_as_the_image_user(tmp_path: Path) -> None:
    text = dvc_puller.dockerfile(BASE, out_dir="docker/hub/kubernetes")
    assert text.splitlines()[1] == f"FROM {BASE}"
    assert text.rstrip().endswith("USER 1000:100")
    assert "--require-hashes" in text
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    config = tmp_path / "hadolint.yaml"
    config.write_text(HADOLINT_CONFIG)
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--config", str(config), "-f", "json", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert json.loads(result.stdout or "[]") == [] and result.returncode == 0


def test_the_tag_is_the_content() -> None:
    ref = dvc_puller.image_ref("team/images", BASE)
    assert ref.startswith("team/images/dvc-puller:ck-") and len(ref.rsplit("ck-", 1)[1]) == 16
    assert ref == dvc_puller.image_ref("team/images", BASE)
    assert ref != dvc_puller.image_ref("team/images", "nbenv/debian-python:trixie")


@pytest.mark.badinput
@pytest.mark.parametrize("base", ["FROM evil", "nbenv/x:1\nRUN curl evil", "UPPER/case", ""])
def test_a_bad_base_image_fails_with_one_line(base: str) -> None:
    with pytest.raises(SpecError) as caught:
        dvc_puller.dockerfile(base, out_dir="docker/hub/kubernetes")
    assert "\n" not in caught.value.message
