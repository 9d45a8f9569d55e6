"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from nbenv.errors import NbenvError
from nbenv.safepath import existing_non_link


def _stage(path: Path, text: str, mode: int) -> Path:
    """Write `text` to a temp file beside `path` (same filesystem, so the rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_files(files: Mapping[Path, str], *, mode: int = 0o644) -> None:
    """Write all files or none: every temp file is staged before the first rename.

    An OSError becomes one clear line naming the file; staged temp files are removed. A destination
    that is a symlink is refused before anything is staged: nbenv never writes through a link (and does
    not silently replace one a repository committed either).
    """
    for path in files:
        _refuse_symlink(path)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            current = path
            staged.append((_stage(path, text, mode), path))
        for tmp, path in staged:
            current = path
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise NbenvError(
            f"{current}: cannot write: {exc.strerror or exc}",
            "check free space and permissions, then run the command again (nothing was half-written)",
        ) from exc
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise


def _refuse_symlink(path: Path) -> None:
    existing_non_link(
        path,
        display=str(path),
        why="nbenv does not write through links",
        hint="remove the link and run the command again",
        error=NbenvError,
    )


def atomic_write(path: Path, text: str, *, mode: int = 0o644) -> None:
    write_files({path: text}, mode=mode)
