"""Pull, push and status of the DVC-tracked data that environments declare."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbenv.adapters.dvc import Dvc, TargetStatus
from nbenv.dvc_outs import MAX_DVC_FILE
from nbenv.errors import DataError
from nbenv.fs import atomic_write
from nbenv.safepath import confine, read_regular
from nbenv.ui import Say


@dataclass(frozen=True)
class PullSummary:
    targets: tuple[str, ...]
    fetched: int  # objects downloaded into the cache
    files: int  # files of the targets now in the workspace
    bytes: int
    seconds: float

    def line(self) -> str:
        return (
            f"{len(self.targets)} target(s), {self.files} file(s), {self.bytes / 1e6:.1f} MB in the workspace; "
            f"{self.fetched} object(s) downloaded in {self.seconds:.1f} s"
        )


CACHE_TYPE_HINT = (
    "remove the link; if DVC made it (`cache.type = symlink` with a cache outside the repository), "
    "use `dvc config cache.type reflink,copy` or keep the cache inside the repository"
)


def data_files(root: Path, target: str) -> list[tuple[str, os.stat_result]]:
    """Every file of a data target (repo-relative posix path, stat), symlinks checked first.

    The walk never follows a symlink; every symlink in it (to a file or a directory, chained or
    not) must resolve inside the repository, else DataError before anything is read, pushed or
    mounted: a link to /root or ~/.ssh inside a DVC output is not data. A link to a file inside
    the repository counts as that file; a link to a directory is not descended into. One rule
    for every `cache.type`: DVC's own symlinks into a cache outside the repository are refused too
    (`.dvc/config` is committed, so the cache location is not trusted either).
    """
    real_root = root.resolve()
    top = confine(real_root, target, what=f"data {target!r}", error=DataError)
    found: list[tuple[str, os.stat_result]] = []

    def check_link(path: str) -> None:
        try:
            confine(real_root, path, what=f"a symlink in data {target!r}", error=DataError)
        except DataError as exc:
            raise DataError(exc.message, CACHE_TYPE_HINT) from None

    def shown(path: str) -> str:
        return Path(path).relative_to(real_root).as_posix()

    if not top.exists():
        return found
    if not top.is_dir():
        return [(shown(str(top)), top.stat())] if top.is_file() else found
    pending = [str(top)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError as exc:
            raise DataError(f"{target}: cannot read a directory of the data: {exc.strerror}") from None
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_symlink():
                check_link(entry.path)
                if entry.is_file():
                    found.append((shown(entry.path), entry.stat()))
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                found.append((shown(entry.path), entry.stat(follow_symlinks=False)))
    return sorted(found, key=lambda item: item[0])


def check_data(root: Path, targets: Sequence[str]) -> None:
    """Refuse (DataError) data whose symlinks lead out of the repository: before a push or a mount."""
    for target in targets:
        data_files(root, target)


def _tree(root: Path, target: str) -> tuple[int, int]:
    files = data_files(root, target)
    return len(files), sum(info.st_size for _, info in files)


def missing_targets(root: Path, targets: Sequence[str]) -> list[str]:
    return [t for t in targets if not (root / t).exists()]


def pull(root: Path, targets: Sequence[str], *, jobs: int | None, remote: str | None, say: Say) -> PullSummary:
    """Fetch every target's objects (hash-verified) first, then check them out: a failed download
    leaves the workspace as it was."""
    if not targets:
        return PullSummary((), 0, 0, 0, 0.0)
    started = time.monotonic()
    dvc = Dvc(root, remote=remote)
    try:
        dvc.check()
        say(f"fetching {len(targets)} target(s): {', '.join(targets)}")
        fetched = dvc.fetch(targets, jobs=jobs)
        say("checking out")
        dvc.checkout(targets)
    finally:
        dvc.close()
    if missing := missing_targets(root, targets):
        raise DataError(
            f"pull: not in the workspace after checkout: {', '.join(missing)}",
            "`dvc status --cloud` shows what DVC sees",
        )
    files = bytes_ = 0
    for target in targets:
        count, size = _tree(root, target)
        files, bytes_ = files + count, bytes_ + size
    return PullSummary(tuple(targets), fetched, files, bytes_, time.monotonic() - started)


def pull_unless_unchanged(root: Path, targets: Sequence[str], *, stamp_dir: Path, say: Say) -> PullSummary | None:
    """`pull`, skipped (None) when neither the DVC pointers nor the workspace files of `targets`
    changed since the last pull that succeeded here: what `up` does on every start."""
    if not targets:
        return None
    stamp = stamp_path(stamp_dir, targets)
    before = _signature(root, targets)
    try:
        if json.loads(stamp.read_text(encoding="utf-8")) == before:
            return None
    except (OSError, ValueError):
        pass
    summary = pull(root, targets, jobs=None, remote=None, say=say)
    atomic_write(stamp, json.dumps(_signature(root, targets), sort_keys=True))
    return summary


def stamp_path(stamp_dir: Path, targets: Sequence[str]) -> Path:
    return stamp_dir / f"pulled-{hashlib.sha256(json.dumps(sorted(targets)).encode()).hexdigest()[:16]}.json"


def _signature(root: Path, targets: Sequence[str]) -> dict[str, str]:
    """A hash of the pointers DVC checks out from (dvc.lock, TARGET.dvc) and of every target file's
    path, size and modification time: any change to either means a real pull."""
    signature: dict[str, str] = {}
    for pointer in ["dvc.lock", *(f"{t}.dvc" for t in targets)]:
        path = root / pointer
        if path.is_file():  # a FIFO or a device is no pointer; a link out of the repository is refused
            confine(root, pointer, what="DVC file", error=DataError)
            text = read_regular(path, display=pointer, limit=MAX_DVC_FILE, error=DataError)
            signature[pointer] = hashlib.sha256(text).hexdigest()
        else:
            signature[pointer] = "-"
    for target in targets:
        path = root / target
        digest = hashlib.sha256()
        for rel, info in data_files(root, target):
            digest.update(f"{rel}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
        signature[target] = digest.hexdigest() if path.exists() else "-"
    return signature


def push(root: Path, targets: Sequence[str], *, jobs: int | None, remote: str | None) -> int:
    if missing := missing_targets(root, targets):
        raise DataError(f"push: not in the workspace: {', '.join(missing)}", "run `dvc repro` or pull them first")
    check_data(root, targets)
    dvc = Dvc(root, remote=remote)
    try:
        return dvc.push(targets, jobs=jobs)
    finally:
        dvc.close()


def status(root: Path, targets: Sequence[str], *, remote: str | None) -> list[TargetStatus]:
    check_data(root, targets)  # DVC would hash what the links point at
    dvc = Dvc(root, remote=remote)
    try:
        return dvc.status(targets)
    finally:
        dvc.close()
