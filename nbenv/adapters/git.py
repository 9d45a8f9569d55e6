"""The git state an image is built from: commit, dirty flag, release tag, source URL.

Read with the git CLI (no library), once per command. Outside a repository, before the first
commit, or when git refuses the directory (another user's checkout), the commit is unknown:
builds still work and say so, pushes refuse.
"""

from __future__ import annotations

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


EXECUTED_NOTEBOOKS = "*.out.ipynb"
_EXCLUDE_NOTE = "# Executed notebooks that `nbenv run` writes beside their input (NAME.out.ipynb): never committed.\n"


def exclude_locally(root: Path, pattern: str = EXECUTED_NOTEBOOKS) -> Path | None:
    """Make git ignore `pattern` in this clone: a line in `$GIT_DIR/info/exclude` (never committed, the
    project's own .gitignore untouched). Returns the exclude file when a line was added; None when it was
    there already, or there is no repository, or the file is not a plain file nbenv may append to (a
    symlink is never followed). `pattern` is one of nbenv's constants, never a value from the repository."""
    if pattern != EXECUTED_NOTEBOOKS:
        raise ValueError(f"not a pattern nbenv writes: {pattern!r}")
    code, git_path, _ = _git(root, "rev-parse", "--git-path", "info/exclude")
    if code != 0 or not git_path:
        return None
    exclude = root / git_path  # relative to `root` (git -C), unless git answers an absolute path
    try:
        exclude.parent.mkdir(mode=0o755, exist_ok=True)  # `info/` is missing in a `git init --template=`
        fd = os.open(exclude, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device: never read, never written
        os.close(fd)
        return None
    with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as handle:
        text = handle.read(1 << 20)
        if pattern in (line.strip() for line in text.splitlines()):
            return None
        handle.write(("" if not text or text.endswith("\n") else "\n") + _EXCLUDE_NOTE + pattern + "\n")
    return exclude
