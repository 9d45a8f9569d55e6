"""What the installed package is: `nbenv/` only, importable without numpy (the demo's generator, which
needs it, lives in the repository's `demo/`), and nothing it depends on pulls numpy in."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

# Run first in the child: any import of numpy fails, as on a machine where only nbenv's dependencies
# are installed.
_NO_NUMPY = """
import importlib.abc, sys
class _NoNumpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoNumpy())
"""

_IMPORT_ALL = """
import importlib, pkgutil
import nbenv
# Scripts that run inside images (nbenv.inimage), with the image's ipykernel or nbclient: not imported by nbenv.
IN_IMAGE = {"nbenv.inimage.register", "nbenv.inimage.run_driver"}
failed, imported = [], 0
for info in pkgutil.walk_packages(nbenv.__path__, "nbenv."):
    if info.name.endswith(".__main__") or info.name in IN_IMAGE:
        continue
    try:
        importlib.import_module(info.name)
        imported += 1
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print(imported)
print("\\n".join(failed))
assert not [m for m in sys.modules if m == "numpy" or m.startswith("numpy.")]
"""


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _NO_NUMPY + code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
    )


def test_every_nbenv_module_imports_without_numpy() -> None:
    result = _child(_IMPORT_ALL)
    assert result.returncode == 0, result.stderr
    imported, _, failed = result.stdout.partition("\n")
    assert not failed.strip(), failed
    assert int(imported) >= 40, "the walk found nbenv's modules"


@pytest.mark.parametrize("args", [("--help",), ("data", "compact", "--help"), ("--version",)])
def test_the_cli_runs_without_numpy(args: tuple[str, ...]) -> None:
    result = _child("import sys; sys.argv[0] = 'nbenv'; from nbenv.cli import main; main()", *args)
    assert result.returncode == 0, result.stderr
    assert "numpy" not in result.stderr


def test_the_blocker_blocks_the_demo_generator() -> None:
    """The control: the demo's generator does need numpy, so the tests above would see an import of it."""
    result = _child("import demo.synthetic")
    assert result.returncode != 0 and "No module named 'numpy'" in result.stderr


def test_the_wheel_holds_only_the_nbenv_package(tmp_path: Path) -> None:
    from poetry.core.factory import Factory
    from poetry.core.masonry.builders.wheel import WheelBuilder

    wheel = tmp_path / WheelBuilder.make_in(Factory().create_poetry(REPO), tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {name.split("/")[0] for name in names} == {"nbenv", "nbenv-0.1.0.dist-info"}
    assert "nbenv/data/compact.py" in names and not [n for n in names if "synthetic" in n]
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not [line for line in requires if "numpy" in line or "pandas" in line]


def test_no_runtime_dependency_pulls_numpy() -> None:
    """The closure of `[project] dependencies` over the installed distributions' metadata (the venv
    follows poetry.lock): neither numpy nor pandas is in it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [Requirement(item) for item in project["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(key[0]).requires or []
        except PackageNotFoundError:
            continue  # not installed for this platform/Python: its own requirements do not apply here
        for text in requires:
            child = Requirement(text)
            extras = ["", *requirement.extras]
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(child)
    names = {name for name, _ in seen}
    assert len(names) > 30, "the closure was walked"
    assert not names & {"numpy", "pandas"}
