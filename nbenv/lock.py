"""poetry.lock -> the exact pins (versions, hashes, markers) of chosen dependency groups.

Stdlib only, so the project's own bootstrap can use it before anything is installed:
`python -m nbenv.lock --groups main,dev` prints a pip requirements file with hashes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nbenv.errors import LockError

ANY = "*"
_INDEX_SOURCES = {None, "legacy"}


def canonical(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    groups: frozenset[str]
    markers: dict[str, str]  # group -> marker; a missing group (or "*") means "always"
    hashes: tuple[str, ...]
    optional: bool

    def marker_for(self, groups: Iterable[str]) -> str | None:
        """The environment marker under which any of `groups` needs this package (None: always)."""
        chosen = sorted({self.markers.get(g, ANY) for g in groups if g in self.groups})
        if not chosen or ANY in chosen:
            return None
        return chosen[0] if len(chosen) == 1 else " or ".join(f"({m})" for m in chosen)


@dataclass(frozen=True)
class Pin:
    """One line of a requirements file: what pip/uv installs, in which layer."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    layer: str

    def requirement(self) -> str:
        head = f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")
        return " \\\n    ".join([head, *(f"--hash={h}" for h in self.hashes)])


@dataclass(frozen=True)
class Lock:
    display: str
    lock_version: str
    content_hash: str
    packages: tuple[LockedPackage, ...]

    def pins(self, groups: Sequence[str], *, exclude_groups: Sequence[str] = ()) -> list[Pin]:
        """Packages needed by `groups` but not already by `exclude_groups` (a parent image's).

        Each package goes to the first of `groups` that needs it, so layers stay stable when a
        later group is added.
        """
        pins: list[Pin] = []
        for package in sorted(self.packages, key=lambda p: canonical(p.name)):
            if package.optional or not package.groups & set(groups):
                continue
            if package.groups & set(exclude_groups):
                continue
            layer = next(g for g in groups if g in package.groups)
            pins.append(Pin(package.name, package.version, package.marker_for(groups), package.hashes, layer))
        return pins

    def has(self, name: str, groups: Sequence[str]) -> bool:
        return any(canonical(p.name) == canonical(name) and p.groups & set(groups) for p in self.packages)


def requirements_text(pins: Iterable[Pin], *, header: str) -> str:
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [pin.requirement() for pin in pins]
    return "\n".join(lines) + "\n"


def content_hash(pyproject: dict[str, Any], *, with_dependency_groups: bool = True) -> str:
    """Poetry 2.x's content hash of pyproject.toml (mirrors poetry.packages.locker.Locker)."""
    project = pyproject.get("project", {})
    groups = pyproject.get("dependency-groups", {}) if with_dependency_groups else {}
    poetry = pyproject.get("tool", {}).get("poetry", {})
    relevant_project = {
        k: project[k] for k in ("requires-python", "dependencies", "optional-dependencies") if k in project
    }
    legacy = ("dependencies", "source", "extras", "dev-dependencies")
    relevant_poetry: dict[str, Any] = {}
    for key in (*legacy, "group"):
        value = poetry.get(key)
        if value is None and (key not in legacy or relevant_project or groups):
            continue
        relevant_poetry[key] = value
    relevant: dict[str, Any] = {}
    if relevant_project:
        relevant["project"] = relevant_project
    if groups:
        relevant["dependency-groups"] = groups
    content: dict[str, Any] = {**relevant, "tool": {"poetry": relevant_poetry}} if relevant else relevant_poetry
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _line_of(text: str, needle: str) -> str:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(needle):
            return f":{number}"
    return ""


def _cache_file(text: str, cache_dir: Path | None) -> Path | None:
    """tomllib takes ~0.2 s on a large lock; a JSON copy keyed by the lock's hash loads in ~10 ms."""
    return cache_dir / f"poetry-lock-{hashlib.sha256(text.encode()).hexdigest()[:32]}.json" if cache_dir else None


def _parse(text: str, display: str, cached: Path | None) -> tuple[dict[str, Any], bool]:
    """The lock's data, and whether it came from the cache."""
    if cached is not None:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(cached.read_text(encoding="utf-8")), True
    try:
        return tomllib.loads(text), False
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{display}: invalid TOML: {exc}", "run `poetry lock --regenerate`") from None


def _remember(cached: Path, data: dict[str, Any]) -> None:
    """Keep one cached copy, written atomically; a failure only costs speed."""
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        for stale in cached.parent.glob("poetry-lock-*.json"):
            stale.unlink(missing_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, cached)


def read_lock(
    lock_path: Path, pyproject: dict[str, Any], *, display: str = "poetry.lock", cache_dir: Path | None = None
) -> Lock:
    """Parse and check poetry.lock against pyproject.toml; every problem is one LockError line."""
    if not lock_path.is_file():
        raise LockError(f"{display}: not found", "run `poetry lock` (Poetry 2.x) to pin the dependencies")
    text = lock_path.read_text(encoding="utf-8")
    cached = _cache_file(text, cache_dir)
    data, from_cache = _parse(text, display, cached)
    metadata = data.get("metadata", {})
    version = str(metadata.get("lock-version", "1.0"))
    if _version_tuple(version) < (2, 1):
        raise LockError(
            f"{display}{_line_of(text, 'lock-version')}: metadata.lock-version: {version} records no dependency "
            "groups per package (nbenv needs 2.1)",
            "run `poetry lock --regenerate` with Poetry 2.x",
        )
    expected = content_hash(pyproject)
    found = metadata.get("content-hash")
    generator = re.search(r"Poetry ([0-9][^ ]*)", text.split("\n", 1)[0])
    legacy_ok = (
        generator is not None
        and _version_tuple(generator.group(1)) < (2, 3)
        and found == content_hash(pyproject, with_dependency_groups=False)
    )
    if found != expected and not legacy_ok:
        raise LockError(
            f"{display}{_line_of(text, 'content-hash')}: metadata.content-hash: does not match pyproject.toml "
            "(the lock is older than the last dependency change)",
            "run `poetry lock` to update it (pinned versions are kept where possible)",
        )
    lock = Lock(display, version, str(found), tuple(_package(p, display, text) for p in data.get("package", [])))
    if cached is not None and not from_cache:
        _remember(cached, data)  # only a lock that passed every check
    return lock


def _package(entry: dict[str, Any], display: str, text: str) -> LockedPackage:
    name = str(entry.get("name", "?"))
    if "groups" not in entry or entry.get("source", {}).get("type") not in _INDEX_SOURCES or not entry.get("files"):
        return _bad_package(entry, name, f"{display}{_line_of(text, f'name = {json.dumps(name)}')}")
    raw_markers = entry.get("markers", ANY)
    groups = frozenset(entry["groups"])
    markers = {g: raw_markers for g in groups} if isinstance(raw_markers, str) else dict(raw_markers)
    hashes = tuple(sorted(f["hash"] for f in entry["files"] if "hash" in f))
    return LockedPackage(name, str(entry["version"]), groups, markers, hashes, bool(entry.get("optional", False)))


def _bad_package(entry: dict[str, Any], name: str, where: str) -> NoReturn:
    """Raise the one-line error for a package nbenv cannot pin (the slow path: finds the line)."""
    if "groups" not in entry:
        raise LockError(
            f"{where}: package.groups: {name} has no groups (a lock written by Poetry < 2.0?)",
            "run `poetry lock --regenerate` with Poetry 2.x",
        )
    source = entry.get("source", {}).get("type")
    if source not in _INDEX_SOURCES:
        raise LockError(
            f"{where}: package.source: {name} comes from a {source} source, which nbenv cannot pin by hash",
            "publish it to a package index (or a local one) and depend on it by version",
        )
    raise LockError(f"{where}: package.files: {name} has no file hashes", "run `poetry lock --regenerate`")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m nbenv.lock --groups main,dev`: print pinned requirements (used by scripts/)."""
    parser = argparse.ArgumentParser(prog="python -m nbenv.lock", description=main.__doc__)
    parser.add_argument("--groups", required=True, help="comma-separated Poetry groups")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    pyproject = tomllib.loads((args.root / "pyproject.toml").read_text(encoding="utf-8"))
    try:
        lock = read_lock(args.root / "poetry.lock", pyproject)
    except LockError as exc:
        print(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    sys.stdout.write(requirements_text(lock.pins(groups), header=f"Pinned from poetry.lock for groups: {args.groups}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
