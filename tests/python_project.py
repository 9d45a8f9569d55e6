"""The demo workspace given another Python constraint, with its lock's python-versions and content hash
to match: for the tests of the project's Python (nbenv/pyversion.py), the automatic base and the
declared bases."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from nbenv.lock import content_hash

DEMO_BASE = 'default_base_image = "nbenv/debian-python:bookworm"\n'


def set_python(
    root: Path,
    *,
    requires_python: str | None = None,
    poetry_python: str | None = None,
    lock_python: str | None = None,
    default_base_image: str | None = None,
    config: str = "",
) -> None:
    """Rewrite the demo workspace at `root`: requires-python (None: removed), Poetry's python (None:
    none), the lock's python-versions (default: the project's constraint, as Poetry writes it),
    default_base_image (None: unset, so nbenv picks the base) and extra TOML `config` at the end
    (e.g. a [tool.nbenv.base_images."TAG"] table). The lock's content hash is brought up to date."""
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    line = f"requires-python = {_toml(requires_python)}\n" if requires_python is not None else ""
    text = re.sub(r'(?m)^requires-python = ".*"\n', line, text, count=1)
    base = f"default_base_image = {_toml(default_base_image)}\n" if default_base_image else ""
    text = text.replace(DEMO_BASE, base)
    if poetry_python is not None:
        text += f"\n[tool.poetry.dependencies]\npython = {_toml(poetry_python)}\n"
    text += config
    pyproject.write_text(text)
    lock = root / "poetry.lock"
    versions = lock_python if lock_python is not None else (poetry_python or requires_python or "*")
    digest = content_hash(tomllib.loads(text))
    lock.write_text(
        re.sub(
            r'(?m)^python-versions = ".*"\ncontent-hash = ".*"$',
            f"python-versions = {_toml(versions)}\ncontent-hash = {_toml(digest)}",
            lock.read_text(),
        )
    )


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
