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
import posixpath
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nbenv.errors import DataError


@dataclass(frozen=True)
class TargetStatus:
    target: str
    workspace: str  # "ok", "missing", "modified"
    remote: str  # "ok", "not-pushed" (only local), "missing" (nowhere), "unreachable" (the remote cannot be reached)


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

    def _paths(self, targets: Sequence[str]) -> list[str]:
        """Absolute paths: DVC reads relative targets against the current directory, not the repository."""
        return [str(self.root / target) for target in targets]

    def _remote_files_state(self, target: str, state: str) -> str:
        """`state` unless some file of the target is not on the remote: then "not-pushed" if the cache
        has every such file, else "missing"."""
        repo = self._open()
        with _quiet_dvc():
            remote = repo.cloud.get_remote(self.remote)
        for out, cache, remote_odb in self._outs([target], remote):
            if remote_odb is None:
                continue
            for path, oid in _files(out, cache, remote_odb):
                if _overlaps(path, target) and not remote_odb.fs.exists(remote_odb.oid_to_path(oid)):
                    state = "not-pushed" if cache.exists(oid) else "missing"
                    if state == "missing":
                        return state
        return state

    def _outs(self, targets: Sequence[str], remote: Any) -> Iterator[tuple[_Out, Any, Any]]:
        """The outputs overlapping the targets, with their cache and the remote's object store (or None)."""
        repo = self._open()
        for out in repo.index.outs:
            rel = Path(out.fs_path).relative_to(self.root.resolve()).as_posix()
            if not any(_overlaps(rel, target) for target in targets) or not out.hash_info or not out.hash_info.value:
                continue
            remote_odb = None
            if remote is not None:
                try:
                    remote_odb = repo.cloud.get_remote_odb(remote.name, hash_name=out.hash_name)
                except Exception:
                    remote_odb = None
            yield _Out(rel, out.hash_info), out.cache, remote_odb

    def cache_objects(self, targets: Sequence[str]) -> list[Path]:
        """The local cache's files that hold the targets' objects: each file's object and each directory's
        manifest (read from the cache, else the remote), whether they are in the cache now or not. Nothing
        else of the cache: what a benchmark removes to pull the targets into an empty cache."""
        repo = self._open()
        try:
            with _quiet_dvc():
                remote = repo.cloud.get_remote(self.remote)
        except Exception:  # no remote: the directories' manifests can come from the cache only
            remote = None
        found: set[Path] = set()
        for out, cache, remote_odb in self._outs(targets, remote):
            if out.hash_info.isdir:
                found.add(Path(cache.oid_to_path(out.hash_info.value)))
            for path, oid in _files(out, cache, remote_odb):
                if any(_overlaps(path, target) for target in targets):
                    found.add(Path(cache.oid_to_path(oid)))
        return sorted(found)

    def check(self) -> None:
        """Open the repository now: not a DVC repository, or an unknown --remote, is one DataError."""
        self._open()

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def fetch(self, targets: Sequence[str], *, jobs: int | None) -> int:
        """Download the targets' objects into the cache (the workspace is not touched). An object that
        is still not in the cache afterwards (DVC only warns) is one DataError saying why: the remote is
        unreachable, the file is missing on it, or a copy is corrupt (in the cache or on the remote)."""
        from dvc.exceptions import DownloadError

        with _corruption_log() as corrupted, _translated("fetch", targets, self.remote):
            try:
                fetched = int(self._open().fetch(targets=self._paths(targets), jobs=jobs, remote=self.remote))
            except DownloadError:
                if error := self._explained("pull", targets, corrupted):
                    raise error from None
                raise
            if error := self._explained("pull", targets, corrupted):
                raise error
        return fetched

    def checkout(self, targets: Sequence[str]) -> None:
        with _translated("checkout", targets, self.remote, self.root):
            self._open().checkout(targets=self._paths(targets), force=True)

    def unreachable(self) -> str | None:
        """Why the remote cannot be used ("remote 'x' (URL) is unreachable: ..."), or None. A local remote
        whose directory does not exist is unreachable (DVC would only report every file as missing)."""
        from dvc.exceptions import DvcException

        repo = self._open()
        try:
            with _quiet_dvc():
                remote = repo.cloud.get_remote(self.remote)
        except DvcException as exc:  # no remote at all, or a remote DVC cannot configure
            return " ".join(str(exc).split())[:300]
        shown = _remote_display(remote)
        try:
            with _quiet_dvc():
                exists = remote.fs.exists(remote.path)
        except Exception as exc:  # an S3 server that does not answer, DNS, permissions
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            return f"{shown} is unreachable: {reason}"
        if not exists and _is_local(remote.fs):
            return f"{shown} is unreachable: {NO_DIRECTORY}"
        return None

    def _explained(self, action: str, targets: Sequence[str], corrupted: dict[str, str]) -> DataError | None:
        """After a fetch: one DataError naming what is not in the cache and why, or None if all is there.
        The cache is asked first; the remote only when something is missing, once for whether it answers
        at all, and then per missing file."""
        if not self._not_in_cache(targets, None):
            return None
        if reason := self.unreachable():
            removed = f"; DVC removed {len(corrupted)} corrupt object(s) from the cache" if corrupted else ""
            return DataError(
                f"{action}: {', '.join(targets)}: not in the cache, and {reason}{removed}",
                "`dvc remote list` shows the remote's URL: fix it (or start the server) and run again",
            )
        with _quiet_dvc():
            remote = self._open().cloud.get_remote(self.remote)
        missing = self._not_in_cache(targets, remote)
        if not missing:  # the manifest came from the remote this time: nothing missing after all
            return None
        path, oid, odb = missing[0]  # one line: the first file, with why (its remote copy is read, not more)
        first = _why(path, oid, corrupted, remote, odb)
        more = f" (and {len(missing) - 1} more file(s))" if len(missing) > 1 else ""
        return DataError(f"{action}: {first.path}: {first.why}{more}", first.hint)

    def _not_in_cache(self, targets: Sequence[str], remote: Any) -> list[tuple[str, str, Any]]:
        """(path, object id, the remote's object store or None) of every file of the targets whose object
        is not in the cache; a directory's files are listed from its manifest (the cache's, or with
        `remote`, the remote's), else the manifest itself is the missing file."""
        missing = []
        for out, cache, remote_odb in self._outs(targets, remote):
            for path, oid in _files(out, cache, remote_odb):
                if any(_overlaps(path, target) for target in targets) and not cache.exists(oid):
                    missing.append((path, oid, remote_odb))
        return missing

    def push(self, targets: Sequence[str], *, jobs: int | None) -> int:
        with _translated("push", targets, self.remote):
            return int(self._open().push(targets=self._paths(targets), jobs=jobs, remote=self.remote))

    def status(self, targets: Sequence[str]) -> list[TargetStatus]:
        repo = self._open()
        unreachable = self.unreachable()
        # A local remote without its directory yet: what only the cache holds is "not-pushed" (a push
        # creates the directory); anything else cannot be told, so "unreachable", never "missing".
        no_directory = unreachable is not None and unreachable.endswith(NO_DIRECTORY)
        rows = []
        for target in targets:
            with _translated("status", [target], self.remote):
                local = repo.status(targets=self._paths([target]))
            try:
                if unreachable and not no_directory:
                    raise OSError(unreachable)
                with _quiet_dvc():
                    cloud = repo.status(targets=self._paths([target]), cloud=True, remote=self.remote)
                remote = _remote_state(cloud, not_in_cache="not in cache" in str(local))
                if unreachable:
                    remote = "not-pushed" if remote == "not-pushed" else "unreachable"
                elif remote in ("ok", "not-pushed"):  # DVC trusts a directory's manifest on the remote: ask per file
                    remote = self._remote_files_state(target, remote)
            except Exception:  # an unreachable remote is a status to show, not a failure
                remote = "unreachable"
            workspace = "missing" if not (self.root / target).exists() else ("modified" if local else "ok")
            rows.append(TargetStatus(target, workspace, remote))
        return rows


NO_DIRECTORY = "the directory does not exist"


@dataclass(frozen=True)
class _Problem:
    path: str  # repo-relative path of the file
    why: str
    hint: str


def _overlaps(path: str, target: str) -> bool:
    return path == target or path.startswith(target.rstrip("/") + "/") or target.startswith(path.rstrip("/") + "/")


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol
    return "local" in (protocol if isinstance(protocol, tuple) else (protocol,))


def _remote_display(remote: Any) -> str:
    return f"remote {remote.name!r} ({remote.fs.unstrip_protocol(remote.path)})"


@dataclass(frozen=True)
class _Out:
    path: str  # repo-relative
    hash_info: Any  # DVC's HashInfo (a directory's ends in .dir)


def _files(out: _Out, cache: Any, remote_odb: Any) -> Iterator[tuple[str, str]]:
    """(repo-relative path, object id) of every file of an output: a directory's from its manifest,
    read from the cache or else the remote; a manifest found in neither is itself the missing file."""
    rel, hash_info = out.path, out.hash_info
    if not hash_info.isdir:
        yield rel, hash_info.value
        return
    from dvc_data.hashfile.tree import Tree

    for odb in (cache, remote_odb):
        if odb is None:
            continue
        try:
            with _quiet_dvc():
                tree = Tree.load(odb, hash_info, hash_name=odb.hash_name)
        except Exception:
            continue
        for key, _meta, entry in tree:
            yield posixpath.join(rel, *key), entry.value
        return
    yield rel, hash_info.value


def _intact(odb: Any, oid: str) -> bool:
    """Whether the object's content has its hash: DVC's own hashing, without DVC's side effect of
    deleting a corrupt copy (never done to a remote)."""
    from dvc_data.hashfile.hash import hash_file

    with _quiet_dvc():
        _meta, actual = hash_file(odb.oid_to_path(oid), odb.fs, odb.hash_name)
    return str(actual.value).split(".")[0] == oid.split(".")[0]


def _why(path: str, oid: str, corrupted: dict[str, str], remote: Any, remote_odb: Any) -> _Problem:
    """Why the object of `path` is not in the cache after a fetch."""
    # DVC found the cache's copy (or the one it downloaded) corrupt, and removed it.
    corrupt_in_cache = f"corrupt in the cache ({corrupted.get(oid)} did not match its hash; DVC removed it)"
    was_corrupt = oid in corrupted
    if remote is None or remote_odb is None:
        why = corrupt_in_cache if was_corrupt else "not in the cache"
        return _Problem(path, f"{why}, and no DVC remote is configured", "`dvc remote add -d NAME URL` adds one")
    where = _remote_display(remote)
    location = remote_odb.fs.unstrip_protocol(remote_odb.oid_to_path(oid))
    try:
        with _quiet_dvc():
            on_remote = remote_odb.fs.exists(remote_odb.oid_to_path(oid))
        intact = on_remote and _intact(remote_odb, oid)
    except Exception:
        on_remote, intact = True, True  # cannot tell: reported as a failed download below
    if not on_remote:
        cache_part = f"{corrupt_in_cache} and " if was_corrupt else ""
        return _Problem(
            path,
            f"{cache_part}missing on {where} (object {oid})",
            "`dvc push` it from a machine that has the file, then pull again",
        )
    if not intact:
        return _Problem(
            path,
            f"corrupt on {where}: {location} does not match its hash {oid}",
            "`dvc push` a good copy from a machine that has the file (after removing the corrupt object), "
            "then pull again",
        )
    if was_corrupt:
        return _Problem(path, corrupt_in_cache, "pull again: the remote holds a good copy")
    return _Problem(path, f"could not be downloaded from {where}", "run the pull again")


_CORRUPT = re.compile(r"^corrupted cache file '(.+)'\.?$")


class _CorruptionHandler(logging.Handler):
    """Collects the objects DVC's cache check found corrupt (it logs them at debug level and deletes them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.oids: dict[str, str] = {}  # object id -> the corrupt file's path

    def emit(self, record: logging.LogRecord) -> None:
        if match := _CORRUPT.match(record.getMessage()):
            path = Path(match.group(1))
            self.oids[path.parent.name + path.name] = str(path)


@contextlib.contextmanager
def _corruption_log() -> Iterator[dict[str, str]]:
    logger = logging.getLogger("dvc_data.hashfile.db")
    handler = _CorruptionHandler()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # debug records stay here
    try:
        yield handler.oids
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


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
    loggers = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.nullcontext() if sys.stderr.isatty() else contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _shown(path: str, root: Path | None) -> str:
    """A target as the user named it (relative to the repository): DVC is given absolute paths."""
    try:
        return Path(path).relative_to(root).as_posix() if root is not None and Path(path).is_absolute() else path
    except ValueError:
        return path


@contextlib.contextmanager
def _translated(action: str, targets: Sequence[str], remote: str | None, root: Path | None = None) -> Iterator[None]:
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
            "`dvc status --cloud` shows what the cache and the remote lack; run again once the remote holds it",
        ) from None
    except UploadError as exc:
        raise DataError(
            f"push: {exc.amount} file(s) of {names} could not be uploaded to {where}", "run again"
        ) from None
    except CheckoutError as exc:
        failed = ", ".join(sorted(_shown(str(t), root) for t in getattr(exc, "target_infos", None) or targets))
        raise DataError(
            f"{action}: DVC could not check out {failed}: some of its files are not in the cache",
            "`dvc status --cloud` shows what the cache and the remote lack",
        ) from None
    except DvcException as exc:
        message = " ".join(str(exc).split())
        raise DataError(f"{action} {names}: {message[:300]}", "run `dvc doctor` for DVC's view of the setup") from None
    finally:
        logging.getLogger("nbenv").debug("dvc %s %s took %.2f s", action, names, time.monotonic() - started)


def hidden_dvc_file(root: Path, declared: str) -> tuple[str, str] | None:
    """(what hides it, the fix) when DVC does not read the DVC file `declared` (repo-relative): a
    `.dvcignore` rule, or a git ignore rule (DVC refuses git-ignored DVC files), else None. Decided by
    DVC's own logic (its DvcIgnoreFilter and its git check); DVC is opened only when a rule of a `.dvcignore`
    on the file's way could match it or git ignores it, so the common case costs one `git check-ignore`."""
    parts = Path(declared).parts
    on_the_way = any(
        _may_hide(root.joinpath(*parts[:depth]) / ".dvcignore", PurePosixPath(*parts[depth:]))
        for depth in range(len(parts))
    )
    git_rule = _git_ignore_rule(root, declared)
    if not on_the_way and git_rule is None:
        return None
    from dvc.dvcfile import is_git_ignored
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with _quiet_dvc():
            repo = Repo(str(root))
    except DvcException:
        return None  # not a DVC repository: pulling says so
    try:
        path = str(root / declared)
        with _quiet_dvc():
            if repo.dvcignore.is_ignored_file(path):
                infos = repo.dvcignore.check_ignore(path).pattern_infos
                rule = infos[-1].file_info if infos else ".dvcignore"
                source = rule.split(":", 1)[0]
                return f"a .dvcignore rule hides it ({rule})", f"remove or narrow that rule in {source}"
            if is_git_ignored(repo, path):
                shown = git_rule or "a git ignore rule"
                source = shown.split(":", 1)[0] if git_rule else ".gitignore"
                return (
                    f"git ignores it ({shown}), and DVC reads no git-ignored DVC file",
                    f"remove that rule from {source}, or add the line `!{declared}` below it",
                )
    finally:
        repo.close()
    return None


def _may_hide(ignore_file: Path, rel: PurePosixPath) -> bool:
    """Whether a rule of this `.dvcignore` could hide `rel` (relative to the file's directory): some rule,
    taken alone and negations included, matches the path or one of its parent directories. Only then
    is DVC opened to decide (its rules are gitignore patterns, so no rule matching means not hidden);
    a file nbenv cannot read or parse is left to DVC too."""
    from pathspec import GitIgnoreSpec

    from nbenv.errors import NbenvError
    from nbenv.safepath import MiB, read_regular

    if not ignore_file.is_file():
        return False
    try:
        text = read_regular(ignore_file, display=str(ignore_file), limit=MiB).decode("utf-8", "replace")
    except NbenvError:
        return True
    candidates = [str(rel), *(f"{parent}/" for parent in rel.parents if str(parent) != ".")]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            spec = GitIgnoreSpec.from_lines([line.removeprefix("!")])
        except Exception:  # any pattern pathspec cannot read: DVC decides
            return True
        if any(spec.match_file(candidate) for candidate in candidates):
            return True
    return False


def _git_ignore_rule(root: Path, declared: str) -> str | None:
    """`SOURCE:LINE:PATTERN` of the git rule that ignores the file (tracked or not), or None."""
    from nbenv.adapters.process import run

    try:
        result = run(["git", "-C", str(root), "check-ignore", "-v", "--no-index", "--", declared], timeout=30)
    except (FileNotFoundError, OSError):
        return None
    if result.returncode != 0:
        return None
    line = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    rule = line.split("\t", 1)[0]
    return rule if rule and not rule.split(":")[-1].startswith("!") else None
