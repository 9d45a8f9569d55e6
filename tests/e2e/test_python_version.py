"""The right Python on the real engine (issue 15, item 1): a base nbenv makes from Debian trixie has
Python 3.13 and says so in its label; a base nbenv did not make is checked before anything is built.

The trixie base is built once (mmdebstrap from Debian's mirror: a few minutes) under a tag declared in
the workspace's [tool.nbenv.base_images], so `nbenv image base --tag TAG` takes the suite from there,
as the CI workflow's step does. Everything is tagged with this session's prefix and removed at the end.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, WORKSPACE_FILES, snapshot
from tests.e2e.conftest import PREFIX, docker, nbenv, remove_images
from tests.python_project import set_python

pytestmark = pytest.mark.e2e

OWN = f"{PREFIX}-pyver"  # this module's images
TRIXIE = f"{OWN}/python:trixie"  # declared: nbenv makes it from Debian trixie
FOREIGN = f"{OWN}/foreign:3.13"  # an image nbenv did not make (no usable nbenv.base.python label)
DECLARED = f'\n[tool.nbenv.base_images."{TRIXIE}"]\nsuite = "trixie"\n'


def workspace(root: Path, *, requires_python: str, default_base_image: str) -> Path:
    root.mkdir(parents=True)
    for name in [*WORKSPACE_FILES, "nbenv"]:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('image_prefix = "nbenv"', f'image_prefix = "{OWN}"'))
    set_python(root, requires_python=requires_python, default_base_image=default_base_image, config=DECLARED)
    return root


@pytest.fixture(scope="module")
def trixie(tmp_path_factory: pytest.TempPathFactory, engine: None) -> Iterator[Path]:
    """A workspace requiring Python >= 3.12 on the declared trixie base, built with `nbenv image base`."""
    root = workspace(tmp_path_factory.mktemp("pyver") / "repo", requires_python=">=3.12", default_base_image=TRIXIE)
    try:
        built = nbenv("image", "base", "--tag", TRIXIE, cwd=root, timeout=1500)
        assert built.returncode == 0, built.stderr[-3000:]
        assert built.stdout.startswith(f"{TRIXIE}\tsha256:")
        yield root
    finally:
        remove_images(OWN)


def labels(ref: str) -> dict[str, str]:
    data = json.loads(docker("image", "inspect", ref).stdout)
    return dict(data[0]["Config"]["Labels"] or {})


def test_the_trixie_base_has_python_313_and_its_label_says_so(trixie: Path) -> None:
    version = docker("run", "--rm", "--network", "none", TRIXIE, "python3", "--version").stdout.strip()
    assert version.startswith("Python 3.13."), version
    found = labels(TRIXIE)
    assert found["nbenv.base.python"] == "3.13"
    assert found["nbenv.base.suite"] == "trixie"
    shown = nbenv("show", "base", cwd=trixie)
    assert shown.returncode == 0, shown.stderr
    assert f'base_image = "{TRIXIE}"' in shown.stdout


@pytest.mark.badinput
def test_a_foreign_base_whose_python_does_not_fit_fails_before_the_build(trixie: Path, tmp_path: Path) -> None:
    # An image nbenv did not make: FROM the trixie base, its label emptied, so nbenv asks its python3.
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f'FROM {TRIXIE}\nLABEL nbenv.base.python=""\n')
    made = docker("build", "--quiet", "--tag", FOREIGN, str(context), check=False)
    assert made.returncode == 0, made.stderr
    root = workspace(tmp_path / "repo", requires_python=">=3.11,<3.13", default_base_image=FOREIGN)
    assert nbenv("validate", cwd=root).returncode == 0, "its Python is not known before the engine is asked"
    before = snapshot(root)
    result = nbenv("image", "build", "base", cwd=root, timeout=300)
    assert result.returncode == 3, result.stderr
    error = [line for line in result.stderr.splitlines() if not line.startswith("  hint: ")]
    assert len(error) == 1, result.stderr
    assert error[0].startswith("pyproject.toml:")
    assert f"tool.nbenv.default_base_image: {FOREIGN} has Python 3.13, but requires-python '>=3.11,<3.13'" in error[0]
    assert "Traceback" not in result.stderr
    assert 'hint: default_base_image = "nbenv/debian-python:bookworm" (Python 3.11), or remove' in result.stderr
    assert docker("image", "inspect", f"{OWN}/base:latest", check=False).returncode != 0, "nothing was built"
    assert snapshot(root) == before, "nothing written (not even the generated files)"
