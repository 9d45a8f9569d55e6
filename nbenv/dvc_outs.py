"""Which repo paths DVC tracks, read from .dvc files and dvc.yaml stages (pure parsing, no DVC import)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

import yaml

from nbenv.errors import SpecError
from nbenv.safepath import MiB, confine, read_regular

MAX_DVC_FILE = 16 * MiB  # a .dvc file or dvc.yaml is a few KiB; dvc.yaml of a large pipeline maybe 1 MiB
_SKIP_DIRS = {".git", ".dvc", ".venv", ".nbenv", ".tools", "node_modules", "__pycache__"}


def _outs_of(document: Any, *, stages: bool) -> list[str]:
    if not isinstance(document, dict):
        return []
    if not stages:
        entries = document.get("outs") or []
        return [e["path"] for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)]
    paths: list[str] = []
    for stage in (document.get("stages") or {}).values():
        if not isinstance(stage, dict):
            continue
        for out in stage.get("outs") or []:
            name = next(iter(out), None) if isinstance(out, dict) else out
            if isinstance(name, str) and "${" not in name:
                paths.append(name)
    return paths


def _load_yaml(root: Path, path: Path, broken: dict[str, str], declared: str) -> Any:
    """The YAML of a DVC file, or None with its one-line problem in `broken`: a symlink out of the
    repository, a FIFO or a device (never opened blocking), more than MAX_DVC_FILE bytes, bad YAML."""
    try:
        confine(root, path, what="DVC file")
        return yaml.safe_load(read_regular(path, display=declared, limit=MAX_DVC_FILE).decode("utf-8"))
    except SpecError as exc:
        broken[declared] = exc.message
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        broken[declared] = f"{declared}{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"
    except (OSError, UnicodeDecodeError) as exc:
        broken[declared] = f"{declared}: cannot read: {getattr(exc, 'strerror', None) or exc}"
    return None


def tracked_outputs(root: Path, broken: dict[str, str] | None = None) -> dict[str, str]:
    """Map each DVC-tracked output (repo-relative, posix) to the file that declares it.

    Walks the repository top-down and does not descend into directories that are themselves
    DVC outputs (they can hold millions of data files), into hidden/tool directories, or through
    symlinked directories (os.walk's default: a link to / or out of the repository is not walked).
    DVC files that cannot be read are reported in `broken` (file -> one-line problem).
    """
    found: dict[str, str] = {}
    broken = {} if broken is None else broken
    for current, dirnames, filenames in os.walk(root):
        rel_dir = Path(current).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        for filename in sorted(filenames):
            if filename.endswith(".dvc") or filename in {"dvc.yaml", "dvc.yml"}:
                declared = posixpath.join(rel_dir, filename)
                document = _load_yaml(root, Path(current) / filename, broken, declared)
                for out in _outs_of(document, stages=not filename.endswith(".dvc")):
                    found.setdefault(posixpath.normpath(posixpath.join(rel_dir, out)), declared)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS and not d.startswith(".") and posixpath.join(rel_dir, d) not in found
        )
    return found


def covering_output(path: str, outputs: dict[str, str]) -> str | None:
    """The tracked output equal to `path` or containing it, if any."""
    for out in outputs:
        if path == out or path.startswith(out.rstrip("/") + "/"):
            return out
    return None
