"""A CUDA base (issue 18): `nbenv image base --cuda`, the tag SUITE-cuda, a declared base with cuda = true, and
a spec naming any CUDA image. The plan is pure and tested here; CUDA itself (about 550 MB of Debian packages)
is never downloaded in tests, and no GPU is needed for any of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbenv.base_image import (
    CUDA_COMPONENTS,
    CUDA_PACKAGES,
    BaseImagePlan,
    BaseRecipe,
    base_image_plan,
    mmdebstrap_command,
    nbenv_recipe,
    suite_tag,
)
from nbenv.errors import BuildError
from tests.conftest import run_cli
from tests.python_project import set_python
from tests.unit.test_python_constraint import _one_line


def labels(plan: BaseImagePlan) -> dict[str, str]:
    changes = [change.removeprefix("LABEL ") for change in plan.import_changes if change.startswith("LABEL ")]
    return {key: json.loads(value) for key, value in (change.split("=", 1) for change in changes)}


@pytest.mark.parametrize(
    ("suite", "cuda", "runtime"),
    [("bookworm", "11.8", "libcudart11.0"), ("trixie", "12.4", "libcudart12")],
)
def test_the_cuda_plan_adds_the_non_free_runtime(suite: str, cuda: str, runtime: str) -> None:
    plan = base_image_plan(tag=suite_tag(suite, cuda=True), suite=suite, cuda=True)
    assert plan.tag == f"nbenv/debian-python:{suite}-cuda"
    assert runtime in plan.packages and set(CUDA_PACKAGES[suite]) <= set(plan.packages)
    assert "python3" in plan.packages and "tini" in plan.packages
    assert plan.packages == tuple(sorted(plan.packages))
    command = mmdebstrap_command(plan, mode="root", target=Path("/tmp/rootfs.tar"))
    assert command[:3] == ["mmdebstrap", "--variant=minbase", "--components=main,contrib,non-free,non-free-firmware"]
    assert f"--include={','.join(plan.packages)}" in command
    assert command[-3:] == ["--mode=root", suite, "/tmp/rootfs.tar"]
    assert labels(plan)["nbenv.base.cuda"] == cuda
    assert (
        labels(plan)["org.opencontainers.image.title"]
        == f"nbenv Debian {suite} Python base with the CUDA {cuda} runtime"
    )
    # The driver comes from the host (NVIDIA Container Toolkit), never from the image.
    assert not {"libcuda1", "nvidia-smi", "nvidia-driver"} & set(plan.packages)


def test_without_cuda_the_plan_is_unchanged() -> None:
    plan = base_image_plan()
    assert not any(arg.startswith("--components") for arg in plan.mmdebstrap_argv)
    assert "nbenv.base.cuda" not in labels(plan)
    assert plan == base_image_plan(cuda=False)
    assert CUDA_COMPONENTS[0] == "main"


@pytest.mark.parametrize(
    ("ref", "recipe"),
    [
        ("nbenv/debian-python:bookworm-cuda", BaseRecipe("bookworm", cuda=True)),
        ("nbenv/debian-python:trixie-cuda", BaseRecipe("trixie", cuda=True)),
        ("nbenv/debian-python:bookworm", BaseRecipe("bookworm")),
        ("nbenv/debian-python", BaseRecipe("bookworm")),
        ("nbenv/debian-python:-cuda", BaseRecipe("-cuda")),  # no suite: not a CUDA tag (and no suite either)
        ("team/cuda:12", None),
    ],
)
def test_the_tag_names_the_suite_and_cuda(ref: str, recipe: BaseRecipe | None) -> None:
    assert nbenv_recipe(ref) == recipe


def test_a_cuda_tag_has_its_suites_python() -> None:
    recipe = nbenv_recipe(suite_tag("trixie", cuda=True))
    assert recipe is not None and recipe.python == "3.13" and recipe.cuda


@pytest.mark.badinput
@pytest.mark.parametrize("suite", ["sid", "forky", "bullseye"])
def test_cuda_for_a_suite_nbenv_has_no_packages_for_is_one_line(suite: str) -> None:
    with pytest.raises(BuildError) as caught:
        base_image_plan(tag=suite_tag(suite, cuda=True), suite=suite, cuda=True)
    assert caught.value.message == (
        f"--cuda: nbenv knows Debian's CUDA runtime packages for bookworm and trixie, not {suite!r}"
    )
    assert caught.value.hint and "base_image" in caught.value.hint


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ("--cuda", "--tag", "nbenv/debian-python:bookworm"),
            2,
            "--cuda: nbenv/debian-python:bookworm is nbenv's base of Debian bookworm without CUDA",
        ),
        (
            ("--cuda", "--tag", "team/python:3"),
            2,
            "--cuda: team/python:3 is declared in [tool.nbenv.base_images] without cuda = true",
        ),
        (
            ("--cuda", "--suite", "sid"),
            7,
            "--cuda: nbenv knows Debian's CUDA runtime packages for bookworm and trixie, not 'sid'",
        ),
        (
            ("--tag", "nbenv/debian-python:bookworm-cuda", "--suite", "trixie"),
            2,
            "--suite trixie: nbenv/debian-python:bookworm-cuda is nbenv's base of Debian bookworm",
        ),
    ],
)
def test_image_base_cuda_refuses_before_any_engine(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], code: int, line: str
) -> None:
    monkeypatch.setenv("NBENV_DOCKER", "/nonexistent/docker")  # refused before any engine is asked
    set_python(
        workspace, requires_python=">=3.11", config='\n[tool.nbenv.base_images."team/python:3"]\nsuite = "bookworm"\n'
    )
    found, _hint = _one_line(workspace, "image", "base", *args, code=code)
    assert found == line


def test_a_spec_names_the_cuda_base_and_generate_builds_from_it(workspace: Path) -> None:
    """The spec's base_image names the CUDA base nbenv makes; its Python (bookworm: 3.11) is checked as for any
    base nbenv makes, and the Dockerfile is FROM it (its BASE_IMAGE)."""
    spec = workspace / "environments" / "base.toml"
    spec.write_text(spec.read_text() + 'base_image = "nbenv/debian-python:bookworm-cuda"\n')
    assert run_cli("validate", cwd=workspace).code == 0
    result = run_cli("generate", "base", cwd=workspace)
    assert result.code == 0, result.err
    assert "ARG BASE_IMAGE=nbenv/debian-python:bookworm-cuda\n" in (workspace / "docker/base/Dockerfile").read_text()


@pytest.mark.badinput
def test_a_cuda_base_whose_python_does_not_fit_is_one_line(workspace: Path) -> None:
    set_python(workspace, requires_python=">=3.12")
    spec = workspace / "environments" / "base.toml"
    spec.write_text(spec.read_text() + 'base_image = "nbenv/debian-python:bookworm-cuda"\n')
    found, _hint = _one_line(workspace, "validate", code=3)
    assert "nbenv/debian-python:bookworm-cuda has Python 3.11, but requires-python '>=3.12'" in found


def test_a_declared_base_with_cuda(workspace: Path) -> None:
    from nbenv.spec.load import base_recipe
    from nbenv.workspace import Workspace

    set_python(
        workspace,
        requires_python=">=3.11",
        config='\n[tool.nbenv.base_images."team/gpu:1"]\nsuite = "bookworm"\npackages = ["graphviz"]\ncuda = true\n',
    )
    recipe = base_recipe(Workspace.discover(workspace), "team/gpu:1")
    assert recipe == BaseRecipe("bookworm", ("graphviz",), cuda=True)
    plan = base_image_plan(tag="team/gpu:1", suite=recipe.suite, extra_packages=recipe.packages, cuda=recipe.cuda)
    assert {"graphviz", "libcudart11.0"} <= set(plan.packages)


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            '\n[tool.nbenv.base_images."nbenv/debian-python:bookworm-cuda"]\nsuite = "bookworm"\n',
            "is nbenv's own base with CUDA (the tag says so): declare another tag, or cuda = true",
        ),
        (
            '\n[tool.nbenv.base_images."team/gpu:1"]\nsuite = "bookworm"\ncuda = "yes"\n',
            "cuda: ",
        ),
    ],
)
def test_a_bad_cuda_declaration_is_one_line(workspace: Path, table: str, problem: str) -> None:
    set_python(workspace, requires_python=">=3.11", config=table)
    found, _hint = _one_line(workspace, "validate", code=3)
    assert found.startswith("pyproject.toml:") and problem in found, found
