"""nbenv.inimage: the scripts that run inside images are the ones nbenv hands over, byte for byte.

Every file of the package (its `__init__.py` aside) reaches an image: the build-time scripts through each
build context's `build/`, the run driver through `nbenv run`'s io directory as `driver.py`. They run
under the image's interpreter, so they import only the standard library and what the image has; nbenv
never imports them; the wheel ships them.
"""

from __future__ import annotations

import ast
import json
import stat
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from nbenv import inimage
from nbenv.errors import RunError
from nbenv.generate import BUILD_SCRIPTS
from nbenv.hub.k8s_objects import PULL_SCRIPT
from nbenv.project import Project
from nbenv.running.headless import DRIVER_SCRIPT, IO_DIR, run_notebook
from nbenv.workspace import Workspace
from tests.conftest import REPO, run_cli
from tests.unit.test_fake_engine import FakeEngine

PACKAGE = REPO / "nbenv" / "inimage"
SCRIPTS = sorted(p.name for p in PACKAGE.iterdir() if p.is_file() and p.name != "__init__.py")
# What the image has besides the standard library: ipykernel (register.py runs in the kernel's
# environment) and nbclient/nbformat (the driver runs under the Jupyter server's Python).
IN_IMAGE_IMPORTS = {"ipykernel", "nbclient", "nbformat"}


def test_every_script_of_the_package_reaches_an_image() -> None:
    assert sorted((*BUILD_SCRIPTS, DRIVER_SCRIPT, PULL_SCRIPT)) == SCRIPTS
    assert not [name for name in SCRIPTS if (REPO / "nbenv" / "render" / name).exists()], "none left in render/"


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_reads_the_package_file(name: str) -> None:
    assert inimage.script(name).encode("utf-8") == (PACKAGE / name).read_bytes()


def test_the_build_contexts_hold_the_package_scripts(workspace: Path) -> None:
    """`nbenv generate` copies each build-time script into every environment's build/, byte for byte."""
    assert run_cli("generate", cwd=workspace).code == 0
    names = sorted(p.stem for p in (workspace / "environments").glob("*.toml"))
    assert names == ["base", "traffic-analysis"]
    for env in names:
        for name in BUILD_SCRIPTS:
            assert (workspace / "docker" / env / "build" / name).read_bytes() == (PACKAGE / name).read_bytes()


def test_the_committed_build_contexts_hold_the_package_scripts() -> None:
    """The repository's own generated docker/*/build/ (what its images are built from)."""
    contexts = sorted(p for p in (REPO / "docker").glob("*/build") if p.is_dir())
    assert len(contexts) >= 2
    for build in contexts:
        for name in BUILD_SCRIPTS:
            assert (build / name).read_bytes() == (PACKAGE / name).read_bytes(), f"{build / name}"


# A stand-in for the docker CLI: it keeps what `docker run` would mount at /run/nbenv, and the command,
# then fails as a container would whose driver never ran.
FAKE_DOCKER = """\
#!{python}
import csv, json, os, shutil, sys
args = sys.argv[1:]
mounts = [dict(part.split("=", 1) for part in next(csv.reader([args[i + 1]])) if "=" in part)
          for i, arg in enumerate(args) if arg == "--mount"]
[io] = [m["source"] for m in mounts if m["target"] == "{io_dir}"]
shutil.copytree(io, os.environ["CAPTURE"] + "/io")
with open(os.environ["CAPTURE"] + "/argv.json", "w") as f:
    json.dump(args, f)
sys.exit(1)
"""


def test_nbenv_run_hands_the_package_driver_to_the_container(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nbenv run` writes run_driver.py into the io directory as driver.py, byte for byte, and the
    container's command runs that file."""
    docker = tmp_path / "docker"
    docker.write_text(textwrap.dedent(FAKE_DOCKER).format(python=sys.executable, io_dir=IO_DIR))
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    capture = tmp_path / "capture"
    capture.mkdir()
    monkeypatch.setenv("CAPTURE", str(capture))
    engine = FakeEngine()
    engine.docker = str(docker)
    project = Project(Workspace(workspace.resolve()), engine_factory=lambda: engine)
    engine.add_image(f"{project.plan('base').image}:latest", labels={})
    notebook = workspace / "notebooks" / "n.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(RunError, match="failed before the notebook executed"):
        run_notebook(project, name="base", notebook=notebook, pull=False, build=False)
    assert (capture / "io" / "driver.py").read_bytes() == (PACKAGE / DRIVER_SCRIPT).read_bytes()
    command = json.loads((capture / "argv.json").read_text())
    assert command[-2:] == [f"{IO_DIR}/driver.py", f"{IO_DIR}/job.json"]


def test_the_wheel_ships_the_package_scripts(tmp_path: Path) -> None:
    from poetry.core.factory import Factory
    from poetry.core.masonry.builders.wheel import WheelBuilder

    wheel = tmp_path / WheelBuilder.make_in(Factory().create_poetry(REPO), tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        for name in SCRIPTS:
            assert archive.read(f"nbenv/inimage/{name}") == (PACKAGE / name).read_bytes()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    found |= {f"{node.module}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    return found | {"." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}


@pytest.mark.parametrize("name", [name for name in SCRIPTS if name.endswith(".py")])
def test_a_script_imports_only_what_the_image_has(name: str) -> None:
    tops = {module.split(".")[0] for module in _imports(PACKAGE / name)}
    assert tops, "the scan saw its imports"
    assert tops <= set(sys.stdlib_module_names) | IN_IMAGE_IMPORTS, tops - set(sys.stdlib_module_names)


def test_nbenv_never_imports_the_scripts() -> None:
    """nbenv reads them as text (`inimage.script`); importing one would run it in nbenv's process."""
    modules = {f"nbenv.inimage.{name.removesuffix('.py')}" for name in SCRIPTS if name.endswith(".py")}
    sources = [p for p in (REPO / "nbenv").rglob("*.py") if p.parent != PACKAGE]
    assert len(sources) > 40
    importing = {}
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "nbenv.inimage":
                names = [f"nbenv.inimage.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if hit := set(names) & modules:
                importing[path.relative_to(REPO).as_posix()] = hit
    assert not importing
