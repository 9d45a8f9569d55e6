"""poetry.lock -> the exact pins (versions, hashes, markers) of chosen dependency groups.

Stdlib only, so the project's own bootstrap can use it before anything is installed:
`python -m nbenv.lock --groups main,dev` prints a pip requirements file with hashes.

A cloned repository's lock is untrusted: every field nbenv reads is checked against its grammar
(names per PEP 508/503, versions per PEP 440, markers parsed per PEP 508, hashes `algo:hex`, group
names as names) before it can reach a requirements file, so no value can add a line (an option such
as `--extra-index-url` or `-r FILE`) to one. The grammars are small stdlib regexes and a marker
parser, not `packaging`, because of the bootstrap.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nbenv.errors import LockError
from nbenv.safepath import MiB, owned_dir, read_regular

ANY = "*"
LOCK_LIMIT = 32 * MiB
CACHE_REL = ".nbenv/cache"

# The grammars. `fullmatch` and re.ASCII throughout: `$` would accept a trailing newline, and
# re.IGNORECASE without ASCII lets `[a-z]` match the Kelvin sign and a dotless i.
_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.I | re.A)
_NAME_MAX = 200
# PEP 440, Appendix B (packaging's VERSION_PATTERN): any version pip accepts, local part included.
_VERSION = re.compile(
    r"""
    v?
    (?:[0-9]+!)?
    [0-9]+(?:\.[0-9]+)*
    (?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?
    (?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?
    (?:[-_.]?dev[-_.]?[0-9]*)?
    (?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?
    """,
    re.I | re.A | re.X,
)
_VERSION_MAX = 128
# A wheel's or an sdist's file name (PEP 427/625, plus the older sdist names): no path, no space.
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!%-]*", re.A)
_FILE_MAX = 1024
HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HASH = re.compile(r"(sha256|sha384|sha512):([0-9a-f]+)", re.A)
# PEP 508 environment markers. Strings hold no quote of their own kind, no control character, and
# none of `#` (a comment in a requirements file), `$` (pip expands `${VAR}`) or a backslash.
MARKER_VARIABLES = frozenset(
    {
        "python_version",
        "python_full_version",
        "os_name",
        "sys_platform",
        "platform_release",
        "platform_system",
        "platform_version",
        "platform_machine",
        "platform_python_implementation",
        "implementation_name",
        "implementation_version",
        "extra",
    }
)
_MARKER_TOKEN = re.compile(
    r"""[ \t]*(?:
      (?P<string>"[ !%-\[\]-~]*"|'[ !"%&(-\[\]-~]*')
    | (?P<op>===|==|!=|<=|>=|~=|<|>|\(|\))
    | (?P<word>[a-z_]+)
    )[ \t]*""",
    re.A | re.X,
)
_MARKER_MAX = 4096
_MARKER_DEPTH = 32
# What a rendered requirement may hold at all (the defensive check of Pin.requirement).
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!:-]*", re.A)
_MARKER_TEXT = re.compile(r"[ -\"%-\[\]-~]+", re.A)
_COMPARE = {"===", "==", "!=", "<=", ">=", "~=", "<", ">", "in", "not in"}


def _printable(text: str) -> str:
    return "".join(char if " " <= char <= "~" else ascii(char)[1:-1] for char in text)


def _shown(value: object) -> str:
    """A hostile value, quoted and escaped (never a line break), clipped to a readable length."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def name_problem(value: object, what: str = "name") -> str | None:
    """Why `value` is not a PEP 508 project name (or, `what="group name"`, a PEP 735 group name), or None."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if len(value) > _NAME_MAX or not _NAME.fullmatch(value):
        return (
            f"{_shown(value)} is not a valid {what} "
            "(ASCII letters, digits and . _ -, starting and ending with a letter or digit)"
        )
    return None


def version_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if len(value) > _VERSION_MAX or not _VERSION.fullmatch(value):
        return f"{_shown(value)} is not a PEP 440 version"
    return None


def file_name_problem(value: object) -> str | None:
    """Why `value` is not the name of a distribution file (a wheel or an sdist: no path, no space), or None."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if len(value) > _FILE_MAX or not _FILE.fullmatch(value):
        return f"{_shown(value)} is not a distribution file name (ASCII letters, digits and . _ - + ! %)"
    return None


def hash_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    match = _HASH.fullmatch(value)
    if match is None:
        return f"{_shown(value)} is not ALGORITHM:HEX with ALGORITHM one of {', '.join(HASH_LENGTHS)} (lowercase hex)"
    if len(match.group(2)) != HASH_LENGTHS[match.group(1)]:
        return f"{_shown(value)}: a {match.group(1)} digest has {HASH_LENGTHS[match.group(1)]} hex digits"
    return None


def _marker_tokens(value: str) -> list[tuple[str, str]] | None:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(value):
        match = _MARKER_TOKEN.match(value, position)
        if match is None or match.end() == position:
            return None
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def marker_problem(value: object) -> str | None:
    """Why `value` is not a PEP 508 environment marker, or None (a parser, not a regex: and/or,
    parentheses, comparisons of a known variable with a quoted string)."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    tokens = _marker_tokens(value) if len(value) <= _MARKER_MAX else None
    if not tokens or not _MarkerParser(tokens).complete():
        return f"{_shown(value)} is not a PEP 508 environment marker"
    return None


class _MarkerParser:
    """marker := and ('or' and)*; and := atom ('and' atom)*; atom := '(' marker ')' | value OP value."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def complete(self) -> bool:
        return self._marker(0) and self.at == len(self.tokens)

    def _peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("", "")

    def _marker(self, depth: int) -> bool:
        if depth > _MARKER_DEPTH or not self._and(depth):
            return False
        while self._peek() == ("word", "or"):
            self.at += 1
            if not self._and(depth):
                return False
        return True

    def _and(self, depth: int) -> bool:
        if not self._atom(depth):
            return False
        while self._peek() == ("word", "and"):
            self.at += 1
            if not self._atom(depth):
                return False
        return True

    def _atom(self, depth: int) -> bool:
        if self._peek() == ("op", "("):
            self.at += 1
            if not self._marker(depth + 1) or self._peek() != ("op", ")"):
                return False
            self.at += 1
            return True
        if not self._value():
            return False
        if self._peek() == ("word", "not") and self._peek(1) == ("word", "in"):
            self.at += 2
        elif self._peek()[0] in {"op", "word"} and self._peek()[1] in _COMPARE:
            self.at += 1
        else:
            return False
        return self._value()

    def _value(self) -> bool:
        kind, text = self._peek()
        if kind == "string" or (kind == "word" and text in MARKER_VARIABLES):
            self.at += 1
            return True
        return False


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
    # The file names the lock lists (`files = [{file = ..., hash = ...}]`): wheels and sdists, in the
    # lock's order. Only the wheel pre-flight (nbenv.wheel_preflight) reads them; pins go by hash.
    files: tuple[str, ...] = ()

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
        """`name==version ; marker` and its hashes, one logical line. The lock's fields were checked on
        reading; this refuses, once more, anything that could end the line or start an option."""
        words = (self.name, self.version, *self.hashes)
        if any(not _WORD.fullmatch(w) for w in words) or (self.marker and not _MARKER_TEXT.fullmatch(self.marker)):
            raise LockError(f"poetry.lock: package {_shown(self.name)}: a field would break the requirements file")
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
    """A requirements file: `header` as comment lines (printable ASCII, anything else escaped), then the pins."""
    lines = [f"# {_printable(line)}".rstrip() for line in header.splitlines()]
    lines += [pin.requirement() for pin in pins]
    return "\n".join(lines) + "\n"


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    return value if isinstance(value, dict) else {}  # pyproject.toml's own checks report the wrong type


def content_hash(pyproject: dict[str, Any], *, with_dependency_groups: bool = True) -> str:
    """Poetry 2.x's content hash of pyproject.toml (mirrors poetry.packages.locker.Locker)."""
    project = _table(pyproject, "project")
    groups = _table(pyproject, "dependency-groups") if with_dependency_groups else {}
    poetry = _table(_table(pyproject, "tool"), "poetry")
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
    return tuple(int(x) for x in re.findall(r"[0-9]{1,9}", text)[:3])


def _lines(text: str) -> list[str]:
    return text.split("\n")  # not splitlines(): TOML breaks lines only at \n, not at U+2028 or U+0085


def _line_of(text: str, needle: str) -> str:
    for number, line in enumerate(_lines(text), start=1):
        if line.startswith(needle):
            return f":{number}"
    return ""


def _package_line(text: str, index: int, field: str, item: int | None = None) -> str:
    """`:LINE` of `field` in the `index`-th `[[package]]` table (of its header if not found), or ""."""
    lines = _lines(text)
    headers = [n for n, line in enumerate(lines) if line.strip() == "[[package]]"]
    if index >= len(headers):
        return ""
    start = headers[index]
    stop = headers[index + 1] if index + 1 < len(headers) else len(lines)
    for n in range(start + 1, stop):
        line = lines[n]
        if field and (re.match(rf"{re.escape(field)}\s*=", line) or line.strip() == f"[package.{field}]"):
            if item is not None and line.rstrip().endswith("[") and n + 1 + item < stop:
                return f":{n + 2 + item}"  # one array item per line, as Poetry writes `files`
            return f":{n + 1}"
    return f":{start + 1}"


def _read_text(lock_path: Path, display: str) -> str:
    if not os.path.lexists(lock_path):
        raise LockError(f"{display}: not found", "run `poetry lock` (Poetry 2.x) to pin the dependencies")
    raw = read_regular(lock_path, display=display, limit=LOCK_LIMIT, error=LockError)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockError(f"{display}: not UTF-8 text (byte {exc.start})", "run `poetry lock --regenerate`") from None


def _parse_toml(text: str, display: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line ([0-9]+), column [0-9]+\)$", message)
        message = re.sub(r"\s*\(at (?:line [0-9]+, column [0-9]+|end of document)\)$", "", message)
        where = f"{display}:{match.group(1)}" if match else display
        what = message[:1].lower() + message[1:]
        raise LockError(f"{where}: invalid TOML: {what}", "run `poetry lock --regenerate`") from None
    except (RecursionError, MemoryError):
        raise LockError(f"{display}: invalid TOML: nested too deeply", "run `poetry lock --regenerate`") from None


# The parse cache: tomllib takes ~0.1 s on a large lock; a JSON copy loads in a few ms. It lives in
# the repository (.nbenv/cache, ignored), so it is as untrusted as the lock: it records the sha256 of
# the lock text it was parsed from, every hash it pins must occur in that text, and its data goes
# through exactly the checks fresh data does.
def _cache_name(digest: str) -> str:
    return f"poetry-lock-{digest[:32]}.json"


def _cache_dir(root: Path, *, create: bool) -> Path | None:
    try:
        return owned_dir(root, CACHE_REL, what="parse cache", create=create, error=LockError)
    except LockError:
        return None  # a symlink or a file on the way: no cache (it only saves time)


def _cached(root: Path, digest: str) -> dict[str, Any] | None:
    directory = _cache_dir(root, create=False)
    if directory is None:
        return None
    try:
        raw = read_regular(directory / _cache_name(digest), display="cache", limit=4 * LOCK_LIMIT, error=LockError)
        stored = json.loads(raw.decode("utf-8"))
    except (LockError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(stored, dict) or stored.get("sha256") != digest or not isinstance(stored.get("data"), dict):
        return None
    data: dict[str, Any] = stored["data"]
    return data


def _remember(root: Path, digest: str, data: dict[str, Any]) -> None:
    """Keep one cached copy, written atomically under a unique temp name that is removed on any failure
    (a full disk leaves nothing behind); a failure only costs speed."""
    directory = _cache_dir(root, create=True)
    if directory is None:
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".poetry-lock-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"sha256": digest, "data": data}, handle)
        os.replace(tmp, directory / _cache_name(digest))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(exc, (OSError, ValueError)):
            raise
        return
    with contextlib.suppress(OSError):
        for stale in [*directory.glob("poetry-lock-*.json"), *directory.glob("poetry-lock-*.tmp")]:
            if stale.name != _cache_name(digest):
                stale.unlink(missing_ok=True)


def _hashes_in(text: str) -> set[str]:
    return set(re.findall(r"sha(?:256|384|512):[0-9a-f]+", text))


def read_lock(
    lock_path: Path, pyproject: dict[str, Any], *, display: str = "poetry.lock", cache_root: Path | None = None
) -> Lock:
    """Parse and check poetry.lock against pyproject.toml; every problem is one LockError line.

    With `cache_root` (the repository root), a parsed copy is kept in `.nbenv/cache/`."""
    text = _read_text(lock_path, display)
    digest = hashlib.sha256(text.encode()).hexdigest()
    cached = _cached(cache_root, digest) if cache_root is not None else None
    if cached is not None:
        with contextlib.suppress(LockError):  # not what the lock says: the lock itself reports its problem
            lock = _check(cached, text, display, pyproject)
            if {h for package in lock.packages for h in package.hashes} <= _hashes_in(text):
                return lock
    data = _parse_toml(text, display)
    lock = _check(data, text, display, pyproject)
    if cache_root is not None:
        _remember(cache_root, digest, data)  # only a lock that passed every check
    return lock


def _check(data: dict[str, Any], text: str, display: str, pyproject: dict[str, Any]) -> Lock:
    """The lock's data, every field checked against its grammar: the same for fresh and cached data."""
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise LockError(f"{display}{_line_of(text, 'metadata')}: metadata: must be a table", "run `poetry lock`")
    version = metadata.get("lock-version", "1.0")
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,3}", version):
        raise LockError(
            f"{display}{_line_of(text, 'lock-version')}: metadata.lock-version: {_shown(version)} is not a version",
            "run `poetry lock --regenerate` with Poetry 2.x",
        )
    if _version_tuple(version) < (2, 1):
        raise LockError(
            f"{display}{_line_of(text, 'lock-version')}: metadata.lock-version: {version} records no dependency "
            "groups per package (nbenv needs 2.1)",
            "run `poetry lock` with Poetry 2.x: it upgrades the format and changes no pinned version",
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
    entries = data.get("package", [])
    if not isinstance(entries, list):
        raise LockError(f"{display}{_line_of(text, 'package')}: package: must be an array of tables", REGENERATE)
    packages = tuple(_package(entry, index, display, text) for index, entry in enumerate(entries))
    return Lock(display, version, str(found), packages)


REGENERATE = "run `poetry lock --regenerate`"


def _type(value: object) -> str:
    return {str: "a string", list: "an array", dict: "a table", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )


def _package(entry: object, index: int, display: str, text: str) -> LockedPackage:
    """One `[[package]]` table, each field nbenv reads checked before it is used."""
    table = _PackageTable(index, display, text)
    if not isinstance(entry, dict):
        table.fail("", f"entry {index + 1} must be a table, not {_type(entry)}")
    name = table.name(entry)
    groups = table.groups(entry, name)
    table.check_source(entry, name)
    hashes, files = table.files(entry, name)
    markers = table.markers(entry, name, groups)
    optional = entry.get("optional", False)
    if not isinstance(optional, bool):
        table.fail("optional", f"{name}: must be true or false, not {_type(optional)}")
    return LockedPackage(name, entry["version"], groups, markers, hashes, optional, files)


class _PackageTable:
    """The checks of one `[[package]]` table; each failure is one line at the field's line in the lock."""

    def __init__(self, index: int, display: str, text: str) -> None:
        self.index, self.display, self.text = index, display, text

    def fail(self, field: str, what: str, hint: str = REGENERATE, item: int | None = None) -> NoReturn:
        where = f"{self.display}{_package_line(self.text, self.index, field.split('[')[0].split('.')[0], item)}"
        raise LockError(f"{where}: package.{field}: {what}" if field else f"{where}: package: {what}", hint)

    def name(self, entry: dict[str, Any]) -> str:
        """The name, then the version (both checked against their grammar)."""
        if "name" not in entry:
            self.fail("name", f"entry {self.index + 1} has no name")
        if problem := name_problem(entry["name"]):
            self.fail("name", problem)
        name: str = entry["name"]
        if "version" not in entry:
            self.fail("version", f"{name} has no version")
        if problem := version_problem(entry["version"]):
            self.fail("version", f"{name}: {problem}")
        return name

    def groups(self, entry: dict[str, Any], name: str) -> frozenset[str]:
        if "groups" not in entry:
            self.fail(
                "groups", f"{name} has no groups (a lock written by Poetry < 2.0?)", f"{REGENERATE} with Poetry 2.x"
            )
        raw_groups = entry["groups"]
        if not isinstance(raw_groups, list):
            self.fail("groups", f"{name}: must be an array of group names, not {_type(raw_groups)}")
        for group in raw_groups:
            if problem := name_problem(group, "group name"):
                self.fail("groups", f"{name}: {problem}")
        return frozenset(raw_groups)

    def check_source(self, entry: dict[str, Any], name: str) -> None:
        """An index (Poetry writes no source) or a legacy one: what hashes can pin."""
        source = entry.get("source", {})
        if not isinstance(source, dict):
            self.fail("source", f"{name}: must be a table, not {_type(source)}")
        kind = source.get("type")
        if not (kind is None or kind == "legacy"):
            shown = kind if isinstance(kind, str) and re.fullmatch(r"[a-z]{1,20}", kind) else _shown(kind)
            self.fail(
                "source",
                f"{name} comes from a {shown} source, which nbenv cannot pin by hash",
                "publish it to a package index (or a local one) and depend on it by version",
            )

    def files(self, entry: dict[str, Any], name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the sorted hashes, the file names) of `files`; a name, where given, is a plain file name."""
        files = entry.get("files")
        if files is None or files == []:
            self.fail("files", f"{name} has no file hashes")
        if not isinstance(files, list):
            self.fail("files", f"{name}: must be an array of tables, not {_type(files)}")
        hashes: list[str] = []
        names: list[str] = []
        for number, file in enumerate(files):
            if not isinstance(file, dict):
                self.fail(f"files[{number}]", f"{name}: must be a table, not {_type(file)}", item=number)
            if "hash" not in file:
                self.fail(f"files[{number}]", f"{name}: has no hash", item=number)
            if problem := hash_problem(file["hash"]):
                self.fail(f"files[{number}].hash", f"{name}: {problem}", item=number)
            hashes.append(file["hash"])
            if "file" in file:
                if problem := file_name_problem(file["file"]):
                    self.fail(f"files[{number}].file", f"{name}: {problem}", item=number)
                names.append(file["file"])
        return tuple(sorted(hashes)), tuple(names)

    def markers(self, entry: dict[str, Any], name: str, groups: frozenset[str]) -> dict[str, str]:
        """Group -> PEP 508 marker: one string for every group, or a table per group."""
        raw_markers = entry.get("markers", ANY)
        if isinstance(raw_markers, str):
            markers = {g: raw_markers for g in groups}
        elif isinstance(raw_markers, dict):
            markers = dict(raw_markers)
        else:
            self.fail("markers", f"{name}: must be a string or a table of group = marker, not {_type(raw_markers)}")
        for group, marker in markers.items():
            if problem := name_problem(group, "group name"):
                self.fail("markers", f"{name}: {problem}")
            if marker != ANY and (problem := marker_problem(marker)):
                self.fail("markers", f"{name}: {problem}")
        return markers


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
