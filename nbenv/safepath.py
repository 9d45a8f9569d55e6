"""Paths inside an untrusted repository: confined to it, never followed out of it, never special files.

A cloned repository may hold symlinks that point anywhere (`docker/base -> /`, `.nbenv/run/x -> ~/.ssh`)
and files that are not files (a FIFO named `a.dvc`, `/dev/zero` given as a notebook). Every path nbenv
reads, writes, deletes or mounts goes through one of these functions first:

- `confine`: resolve (following symlinks) and verify that the real path is inside the repository, for
  paths whose symlinks may legitimately point elsewhere *inside* it (mount sources, data, notebooks);
- `owned_dir`: a directory nbenv creates and owns (`docker/NAME`, `.nbenv/run/NAME`): no component
  below the root may be a symlink at all, and it is created component by component;
- `read_regular`: open without blocking, refuse anything but a regular file, and cap the size.

Each refusal is one NbenvError line naming the path and what to do; nothing is touched first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from nbenv.errors import NbenvError, SpecError

MiB = 1024 * 1024


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


def is_inside(root: Path, path: Path) -> bool:
    """Whether `path` (already resolved) is `root` or below it (`root` resolved too)."""
    return path == root or root in path.parents


def confine(
    root: Path,
    path: str | os.PathLike[str],
    *,
    what: str,
    error: type[NbenvError] = SpecError,
) -> Path:
    """`root / path` with every existing symlink followed, refused unless the real path stays inside `root`.

    `path` may be relative to `root` or absolute. Returns the real (resolved) path.
    """
    real_root = root.resolve()
    candidate = Path(path) if os.path.isabs(path) else real_root / path
    try:
        real = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise error(
            f"{_display(real_root, candidate)}: {what} cannot be resolved: {getattr(exc, 'strerror', None) or exc}",
            "remove the symlink loop",
        ) from None
    if not is_inside(real_root, real):
        shown = _display(real_root, candidate)
        raise error(
            f"{shown}: {what} leads outside the repository (to {real}); nbenv touches nothing outside it",
            f"replace the symlink on the way to {shown} with a real directory or file inside the repository",
        )
    return real


def first_symlink(root: Path, rel: PurePosixPath) -> Path | None:
    """The first component of `root / rel` (below `root`) that is a symlink, if any."""
    current = root
    for part in rel.parts:
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return current
        except (FileNotFoundError, NotADirectoryError):
            return None
    return None


def owned_dir(root: Path, rel: str, *, what: str, create: bool = True, error: type[NbenvError] = SpecError) -> Path:
    """`root / rel` for a directory nbenv owns: no component below `root` may be a symlink (even one that
    stays inside), and none may be something other than a directory. Created component by component
    with `create`, so a link placed meanwhile is never followed by `mkdir -p`."""
    real_root = root.resolve()
    relative = PurePosixPath(rel)
    if relative.is_absolute() or ".." in relative.parts:
        raise error(f"{rel}: {what} must be a path inside the repository")
    if link := first_symlink(real_root, relative):
        shown = _display(real_root, link)
        raise error(
            f"{shown}: is a symlink (to {os.readlink(link)}), but nbenv keeps its {what} there and follows no links",
            f"remove it (`rm {shown}`; `git rm` if it is committed) and run the command again",
        )
    current = real_root
    for part in relative.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except NotADirectoryError:
            mode = 0  # a component above is a file: reported below for that component
        except FileNotFoundError:
            if not create:
                return real_root / relative
            try:
                os.mkdir(current)
            except FileExistsError:
                mode = os.lstat(current).st_mode
            except OSError as exc:  # e.g. someone else's workspace: one line, not a traceback
                shown = _display(real_root, current)
                owner = os.stat(current.parent).st_uid
                raise error(
                    f"{shown}: cannot create nbenv's {what} there: {exc.strerror}",
                    f"run nbenv as the owner of {_display(real_root, current.parent)} (UID {owner}), "
                    "or give yourself write access to it",
                ) from None
            else:
                continue
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            shown = _display(real_root, current)
            raise error(
                f"{shown}: is not a directory, but nbenv keeps its {what} there",
                "move it away and run the command again",
            )
    if create and relative.parts and relative.parts[0] == SELF_IGNORING:
        _ignore_itself(real_root / SELF_IGNORING)
    return real_root / relative


SELF_IGNORING = ".nbenv"  # nbenv's state (tokens, caches, run files): never committed, in any repository
_IGNORE_ALL = "# Written by nbenv: its state (tokens, caches, run files) is never committed.\n*\n"


def _ignore_itself(directory: Path) -> None:
    """A `.gitignore` of `*` inside the directory, so git ignores it in any repository, whatever the
    repository's own ignore files say. Only created, never overwritten, never through a symlink."""
    try:
        fd = os.open(directory / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError:  # already there (the user's, or ours), or not writable: nothing to do
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(_IGNORE_ALL)


def existing_non_link(
    path: Path, *, display: str, why: str, hint: str | None = None, error: type[NbenvError] = SpecError
) -> bool:
    """Whether `path` exists; a symlink in its place is refused (one line: `DISPLAY: is a symlink (to X); WHY`).
    For files nbenv itself reads back or replaces (state, generated files, manifests): never followed."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISLNK(mode):
        raise error(
            f"{display}: is a symlink (to {os.readlink(path)}); {why}",
            hint or f"remove it (`rm {display}`; `git rm` if it is committed) and run the command again",
        )
    return True


def regular_file_problem(path: Path) -> str | None:
    """Why `path` (symlinks followed) is not a plain file, or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    return "is not a regular file"


def read_regular(
    path: Path,
    *,
    display: str,
    limit: int,
    error: type[NbenvError] = SpecError,
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A FIFO or a device is refused before it is
    read (opened non-blocking, checked with fstat), so nothing hangs or reads without end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{display}: file not found") from None
    except OSError as exc:
        raise error(f"{display}: cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{display}: {regular_file_problem(path) or 'is not a regular file'}", "nbenv reads only files")
        if info.st_size > limit:
            raise error(
                f"{display}: {info.st_size} bytes, more than the {limit // MiB} MiB nbenv reads from such a file",
                "is it the right file?",
            )
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:  # grew while being read
                raise error(f"{display}: more than the {limit // MiB} MiB nbenv reads from such a file")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{display}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
