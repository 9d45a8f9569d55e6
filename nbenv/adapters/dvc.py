"""DVC behind one adapter: fetch, checkout, push, status for chosen targets.

`dvc.api` has no pull, so this uses `dvc.repo.Repo`, which is internal: the version is pinned by
poetry.lock and everything DVC-specific stays in this file. DVC is imported lazily (it costs
~0.3 s). Every remote is read with `verify = true`, so an object corrupted on the remote is
rejected on download instead of landing in the cache and the workspace.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv.errors import DataError


@dataclass(frozen=True)
class TargetStatus:
    target: str
    workspace: str  # "ok", "missing", "modified"
    remote: str  # "ok", "not-pushed" (only local), "missing" (nowhere), "unknown" (remote unreachable)


@dataclass(frozen=True)
class Transfer:
    targets: tuple[str, ...]
    files: int  # transferred (fetched or pushed) objects
    seconds: float


class Dvc:
    def __init__(self, root: Path, *, remote: str | None = None) -> None:
        self.root = root
        self.remote = remote
        self._repo: Any = None

    def _open(self) -> Any:
        if self._repo is None:
            from dvc.exceptions import DvcException, NotDvcRepoError
            from dvc.repo import Repo

            try:
                plain = Repo(str(self.root))
                names = list(plain.config.get("remote", {}))
                plain.close()
                if self.remote is not None and self.remote not in names:
                    configured = ", ".join(sorted(names)) or "none"
                    raise DataError(
                        f"--remote {self.remote!r}: no such DVC remote (configured: {configured})",
                        "`dvc remote list` shows them; `dvc remote add NAME URL` adds one",
                    )
                self._repo = Repo(str(self.root), config={"remote": {n: {"verify": True} for n in names}})
            except NotDvcRepoError:
                raise DataError(f"{self.root}: not a DVC repository", "run `dvc init` and configure a remote") from None
            except DvcException as exc:  # e.g. no git repository without `core.no_scm`
                message = " ".join(str(exc).split())[:300]
                raise DataError(f"{self.root}: DVC cannot open the repository: {message}", "run `dvc doctor`") from None
        return self._repo

    def check(self) -> None:
        """Open the repository now: not a DVC repository, or an unknown --remote, is one DataError."""
        self._open()

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def fetch(self, targets: Sequence[str], *, jobs: int | None) -> int:
        """Download the targets' objects into the cache (the workspace is not touched)."""
        with _translated("fetch", targets, self.remote):
            return int(self._open().fetch(targets=list(targets), jobs=jobs, remote=self.remote))

    def checkout(self, targets: Sequence[str]) -> None:
        with _translated("checkout", targets, self.remote):
            self._open().checkout(targets=list(targets), force=True)

    def push(self, targets: Sequence[str], *, jobs: int | None) -> int:
        with _translated("push", targets, self.remote):
            return int(self._open().push(targets=list(targets), jobs=jobs, remote=self.remote))

    def status(self, targets: Sequence[str]) -> list[TargetStatus]:
        repo = self._open()
        rows = []
        for target in targets:
            with _translated("status", [target], self.remote):
                local = repo.status(targets=[target])
            try:
                with _quiet_dvc():
                    cloud = repo.status(targets=[target], cloud=True, remote=self.remote)
                remote = _remote_state(cloud, not_in_cache="not in cache" in str(local))
            except Exception:  # an unreachable remote is a status to show, not a failure
                remote = "unknown"
            workspace = "missing" if not (self.root / target).exists() else ("modified" if local else "ok")
            rows.append(TargetStatus(target, workspace, remote))
        return rows


def _remote_state(cloud: dict[str, Any], *, not_in_cache: bool) -> str:
    """DVC's cloud status (only differences are listed; "deleted" = on the remote, not in the
    cache) -> whether the remote holds the target. When neither the cache nor the remote has the
    directory manifest, DVC cannot list the files and returns nothing (it only logs a warning):
    nothing listed for a target that is not in the cache means it is nowhere."""
    if not cloud and not_in_cache:
        return "missing"
    states = {str(v) for v in cloud.values()}
    if any("missing" in s for s in states):
        return "missing"
    if any("new" in s for s in states):
        return "not-pushed"
    return "ok"


@contextlib.contextmanager
def _quiet_dvc() -> Iterator[None]:
    """DVC logs its own errors; nbenv reports them once, as one line. On a terminal DVC's
    progress bars stay visible; elsewhere its output is dropped (nbenv prints a summary)."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.nullcontext() if sys.stderr.isatty() else contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _translated(action: str, targets: Sequence[str], remote: str | None) -> Iterator[None]:
    """DVC's exceptions -> one DataError line naming the targets and what to do."""
    from dvc.exceptions import CheckoutError, DownloadError, DvcException, UploadError

    names = ", ".join(targets)
    where = f"remote {remote!r}" if remote else "the default remote"
    started = time.monotonic()
    try:
        with _quiet_dvc():
            yield
    except DownloadError as exc:
        raise DataError(
            f"{action}: {exc.amount} file(s) of {names} could not be downloaded from {where}",
            "check that the remote is reachable and holds the data (`nbenv data status`), then run again",
        ) from None
    except UploadError as exc:
        raise DataError(
            f"push: {exc.amount} file(s) of {names} could not be uploaded to {where}", "run again"
        ) from None
    except CheckoutError as exc:
        failed = ", ".join(sorted(str(t) for t in getattr(exc, "target_infos", None) or targets))
        raise DataError(
            f"{action}: not in the workspace: {failed} (missing from the cache, or corrupted on {where})",
            "`nbenv data status` shows what the remote holds; `dvc push` it from a machine that has it",
        ) from None
    except DvcException as exc:
        message = " ".join(str(exc).split())
        raise DataError(f"{action} {names}: {message[:300]}", "run `dvc doctor` for DVC's view of the setup") from None
    finally:
        logging.getLogger("nbenv").debug("dvc %s %s took %.2f s", action, names, time.monotonic() - started)
