"""The git state an image is built from: commit, dirty flag, release tag, source URL.

Read with the git CLI (no library), once per command. Outside a repository, before the first
commit, or when git refuses the directory (another user's checkout), the commit is unknown:
builds still work and say so, pushes refuse.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from nbenv.adapters.process import run
from nbenv.provenance import GitState, release_tag

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.+)$")  # git@host:org/repo.git


def _git(root: Path, *args: str) -> tuple[int, str, str]:
    try:
        result = run(["git", "-C", str(root), *args], timeout=30)
    except FileNotFoundError:
        return 127, "", "git is not installed"
    return result.returncode, result.stdout.strip(), result.stderr.strip()


def git_state(root: Path) -> GitState:
    code, commit, error = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if code != 0:
        problem = _problem(error) or "no commit yet"
        return GitState(None, dirty=True, problem=problem)
    _, status, _ = _git(root, "status", "--porcelain", "--untracked-files=normal")
    _, tags, _ = _git(root, "tag", "--points-at", "HEAD")
    # `XY path` lines (the output is stripped, so the first one may have lost X's space).
    changed = tuple(parts[1] for line in status.splitlines() if len(parts := line.split(None, 1)) == 2)
    return GitState(commit, dirty=bool(status), tag=release_tag(tags.split()), source=source_url(root), changed=changed)


def _problem(stderr: str) -> str | None:
    if "dubious ownership" in stderr:
        return "git refuses this checkout (owned by another user; see `git config --global safe.directory`)"
    if "not a git repository" in stderr:
        return "not a git repository"
    if "not installed" in stderr:
        return "git is not installed"
    return None


def source_url(root: Path) -> str:
    """The `origin` remote as a browsable https URL, credentials stripped; '' when there is none."""
    code, url, _ = _git(root, "remote", "get-url", "origin")
    return public_url(url) if code == 0 else ""


def public_url(url: str) -> str:
    """A remote URL without credentials or `.git`, scp-like SSH forms turned into https."""
    if not url or url.startswith(("/", ".", "file:")):
        return ""  # a local path says nothing useful outside this machine
    if "://" not in url and (match := _SCP_LIKE.match(url)):
        url = f"https://{match['host']}/{match['path']}"
    parts = urlsplit(url)
    via_ssh = parts.scheme in ("ssh", "git", "git+ssh")
    host = parts.hostname or ""
    if parts.port and not via_ssh:  # an SSH port says nothing about the web address
        host = f"{host}:{parts.port}"
    scheme = "https" if via_ssh else parts.scheme
    path = parts.path.removesuffix(".git")
    return urlunsplit((scheme, host, path, "", ""))


# --- the repository-local ignore file ---------------------------------------------------------

EXCLUDE_COMMENT = "# Added by nbenv: what `nbenv run` writes beside a notebook (not committed, not a change)."
_MAX_EXCLUDE = 1024 * 1024


def _open_dir(path: str | Path, *, dir_fd: int | None = None) -> int:
    """A directory opened without following a symlink in its place (OSError otherwise)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _common_dir(root: Path) -> int | None:
    """An open fd of the git directory whose `info/exclude` this checkout reads, or None when there is
    none nbenv may write to. `.git` must be a real directory of the checkout, or (a linked worktree)
    a `gitdir:` file whose git directory links back to this very `.git` file, as `git worktree add`
    makes it: a `.git` symlink, or a `gitdir:` pointing to a directory that does not name this
    checkout (a hostile or copied repository), is not followed."""
    dot_git = root / ".git"
    try:
        info = os.lstat(dot_git)
    except OSError:
        return None
    if stat.S_ISDIR(info.st_mode):
        try:
            return _open_dir(dot_git)
        except OSError:
            return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
        return None  # a symlink (never followed), a FIFO, a device
    try:
        fd = os.open(dot_git, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            text = handle.read(4096).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir: "):
        return None
    gitdir = (root / text[len("gitdir: ") :].strip()).resolve()
    try:
        back = (gitdir / "gitdir").read_text(encoding="utf-8").strip()
        common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    except (OSError, UnicodeDecodeError):
        return None  # not a linked worktree (a submodule, or a made-up pointer): left alone
    if (gitdir / back).resolve() != dot_git.resolve():  # absolute, or relative to the git directory
        return None
    try:
        return _open_dir(common)
    except OSError:
        return None


def exclude_locally(root: Path, pattern: str) -> bool:
    """Append `pattern` to the repository's `info/exclude` (git's own, never committed ignore file)
    unless a line already says it; True if the file has it afterwards. Written atomically (a
    temporary file renamed over it, relative to an open directory), never through a symlink: `info`
    and `exclude` must be a real directory and file, else nothing is written."""
    git_fd = _common_dir(root)
    if git_fd is None:
        return False
    try:
        try:
            os.mkdir("info", 0o755, dir_fd=git_fd)
            _owned_like(git_fd, "info")
        except FileExistsError:
            pass
        info_fd = _open_dir("info", dir_fd=git_fd)
    except OSError:
        os.close(git_fd)
        return False
    os.close(git_fd)
    try:
        return _append_line(info_fd, "exclude", pattern)
    finally:
        os.close(info_fd)


def _owned_like(dir_fd: int, name: str) -> None:
    """As root, give what nbenv created the owner of its directory (the git directory is the user's)."""
    if os.geteuid() == 0:
        owner = os.fstat(dir_fd)
        os.chown(name, owner.st_uid, owner.st_gid, dir_fd=dir_fd, follow_symlinks=False)


def _append_line(dir_fd: int, name: str, line: str) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        current, mode = "", 0o644
    except OSError:
        return False  # a symlink in its place (ELOOP), or unreadable
    else:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_EXCLUDE:
                return False
            try:
                current = handle.read(_MAX_EXCLUDE).decode("utf-8")
            except UnicodeDecodeError:
                return False
            mode = stat.S_IMODE(info.st_mode)
    if line in (existing.strip() for existing in current.splitlines()):
        return True
    text = current + ("" if not current or current.endswith("\n") else "\n") + f"{EXCLUDE_COMMENT}\n{line}\n"
    temporary = f".{name}.nbenv-{os.getpid()}.tmp"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, mode, dir_fd=dir_fd)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        _owned_like(dir_fd, temporary)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        return False
    return True
