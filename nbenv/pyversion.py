"""The project's Python: its constraint, and which Python X.Y satisfies it.

A project states the Pythons it runs on in up to three places, which all have to hold:
`[project] requires-python` (PEP 440), `[tool.poetry.dependencies] python` (Poetry's syntax:
`^`, `~`, `*`, `||`) and poetry.lock's `[metadata] python-versions` (Poetry's syntax, what the
lock was resolved for). A base image's Python is known as X.Y (Debian's python3 of a suite, or
the `nbenv.base.python` label); it fits when some X.Y.Z satisfies every constraint.

Pure: the callers read the files; parsing is poetry-core's own (`parse_constraint`), with
PEP 440 syntax checked by `packaging` first. Every bad value is one SpecError (LockError for the
lock) at its file and line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from poetry.core.constraints.version import Version, VersionConstraint, VersionRange, parse_constraint

from nbenv.constants import AUTO_SUITES, SUITE_PYTHON
from nbenv.errors import LockError
from nbenv.tomlio import TomlDocument

MAX_CONSTRAINT = 200  # longer is no Python constraint (and would only make the parser work)
PYTHON_RE = re.compile(r"^3\.[0-9]{1,3}$")  # a base image's Python, X.Y
_PEP440_ONLY = re.compile(r"^[\s0-9A-Za-z.,*<>=!~+-]*$")  # what a PEP 440 specifier set is made of
_POETRY_ONLY = re.compile(r"^[\s0-9A-Za-z.,*<>=!~^|+-]*$")  # and Poetry's ^ and ||
_LAST_PATCH = 2**31  # 3.11.0 ... 3.11.2147483648: every release of a minor, none of the next one's pre-releases


@dataclass(frozen=True)
class PythonSource:
    """One place that constrains the project's Python."""

    where: str  # "pyproject.toml:6: project.requires-python", for messages
    field: str  # "requires-python", "python", "python-versions"
    text: str  # as written
    constraint: VersionConstraint

    def allows(self, python: str) -> bool:
        return allows_minor(self.constraint, python)

    def shown(self) -> str:
        return f"{self.field} {self.text!r}"


@dataclass(frozen=True)
class ProjectPython:
    """Every constraint on the project's Python (none: any Python fits)."""

    sources: tuple[PythonSource, ...] = ()

    def allows(self, python: str) -> bool:
        return all(source.allows(python) for source in self.sources)

    def refusing(self, python: str) -> PythonSource | None:
        """The first constraint that `python` (X.Y) does not satisfy, or None when it fits."""
        return next((source for source in self.sources if not source.allows(python)), None)

    def describe(self) -> str:
        """`requires-python '>=3.12'` (and the others that add something), for messages."""
        return " and ".join(dict.fromkeys(source.shown() for source in self.sources)) or "any Python"


def _checked_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"must be a string such as '>=3.11', not {_type(text)}")
    if len(text) > MAX_CONSTRAINT:
        raise ValueError(f"{text[:24]!r}... ({len(text)} characters) is too long for a {what}")
    if not text.strip():
        raise ValueError(f"is empty: write a {what} such as '>=3.11'")
    return text


def parse_pep440(text: object) -> VersionConstraint:
    """`requires-python` as PEP 440 reads it; ValueError with the reason when it is not a specifier set."""
    text = _checked_text(text, "PEP 440 version specifier")
    try:
        if not _PEP440_ONLY.fullmatch(text):
            raise InvalidSpecifier(text)
        SpecifierSet(text)
    except InvalidSpecifier:
        poetry = (
            " (Poetry's ^ and ~ belong in [tool.poetry.dependencies] python)" if re.search(r"\^|~(?!=)", text) else ""
        )
        raise ValueError(
            f"{text!r} is not a PEP 440 version specifier (e.g. '>=3.11' or '>=3.11,<3.14'){poetry}"
        ) from None
    return _poetry_parse(text, "PEP 440 version specifier")


def parse_poetry(text: object) -> VersionConstraint:
    """Poetry's `python` / `python-versions` (^, ~, *, ||, commas); ValueError when it does not parse."""
    text = _checked_text(text, "Poetry version constraint")
    if not _POETRY_ONLY.fullmatch(text):
        raise ValueError(f"{text!r} is not a version constraint (e.g. '^3.11' or '>=3.11,<3.14')")
    return _poetry_parse(text, "version constraint")


def _poetry_parse(text: str, what: str) -> VersionConstraint:
    try:
        return parse_constraint(text)
    except (ValueError, IndexError, AttributeError, TypeError):  # ParseConstraintError is a ValueError
        raise ValueError(f"{text!r} is not a {what} nbenv can read (e.g. '>=3.11,<3.14')") from None


def minor_range(python: str) -> VersionRange:
    """Every release of Python X.Y (3.11.0 up to any 3.11.Z), no pre-release of the next minor."""
    major, minor = (int(part) for part in python.split(".")[:2])
    return VersionRange(
        Version.from_parts(major, minor, 0),
        Version.from_parts(major, minor, _LAST_PATCH),
        include_min=True,
        include_max=True,
    )


def allows_minor(constraint: VersionConstraint, python: str) -> bool:
    """Whether some release of Python X.Y satisfies `constraint`."""
    return bool(constraint.allows_any(minor_range(python)))


def choose_suite(project: ProjectPython, suites: Sequence[str] = AUTO_SUITES) -> str | None:
    """The first Debian suite whose python3 fits the project, or None."""
    return next((suite for suite in suites if project.allows(SUITE_PYTHON[suite])), None)


def suites_shown(suites: Sequence[str] = AUTO_SUITES) -> str:
    """`bookworm: Python 3.11, trixie: Python 3.13`."""
    return ", ".join(f"{suite}: Python {SUITE_PYTHON[suite]}" for suite in suites)


def read_project_python(
    pyproject: TomlDocument, lock_text: str | None, lock_display: str = "poetry.lock"
) -> ProjectPython:
    """The project's constraints, from pyproject.toml and (when given) poetry.lock's text."""
    sources: list[PythonSource] = []
    project = pyproject.data.get("project")
    if isinstance(project, dict) and "requires-python" in project:
        sources.append(
            _source(
                pyproject, ("project", "requires-python"), "requires-python", project["requires-python"], parse_pep440
            )
        )
    tool = pyproject.data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    dependencies = poetry.get("dependencies") if isinstance(poetry, dict) else None
    if isinstance(dependencies, dict) and "python" in dependencies:
        loc = ("tool", "poetry", "dependencies", "python")
        sources.append(_source(pyproject, loc, "python", dependencies["python"], parse_poetry))
    if lock_text is not None and (found := lock_python_versions(lock_text)) is not None:
        value, line = found
        try:
            constraint = parse_poetry(value)
        except ValueError as exc:
            where = f"{lock_display}:{line}" if line else lock_display
            raise LockError(f"{where}: metadata.python-versions: {exc}", "run `poetry lock`") from None
        where = f"{lock_display}:{line}: metadata.python-versions" if line else lock_display
        sources.append(PythonSource(where, "python-versions", str(value), constraint))
    return ProjectPython(tuple(sources))


def _source(
    doc: TomlDocument, loc: tuple[str, ...], field: str, value: object, parse: Callable[[object], VersionConstraint]
) -> PythonSource:
    try:
        constraint = parse(value)
    except ValueError as exc:
        raise doc.error(loc, str(exc), _FIX[field]) from None
    line = doc.line(loc)
    where = f"{doc.display}:{line}" if line else doc.display
    return PythonSource(f"{where}: {'.'.join(loc)}", field, str(value), constraint)


_FIX = {
    "requires-python": 'write a PEP 440 specifier set, e.g. requires-python = ">=3.11"',
    "python": 'write a Poetry constraint, e.g. python = "^3.11" or ">=3.11,<3.14"',
}

_METADATA = re.compile(r"^\[metadata\][ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_NEXT_TABLE = re.compile(r"^[ \t]*\[", re.MULTILINE)
_PYTHON_VERSIONS = re.compile(r"^[ \t]*[\"']?python-versions[\"']?[ \t]*=", re.MULTILINE)


def lock_python_versions(text: str) -> tuple[object, int | None] | None:
    """poetry.lock's `[metadata] python-versions` and its line, read from that table alone (the
    lock itself, every package, is parsed and checked elsewhere); None when it is not there."""
    match = _METADATA.search(text)
    if match is None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:  # the lock reader reports it
            return None
        metadata = data.get("metadata")
        return (
            (metadata["python-versions"], None)
            if isinstance(metadata, dict) and "python-versions" in metadata
            else None
        )
    following = _NEXT_TABLE.search(text, match.end())
    section = text[match.end() : following.start() if following else len(text)]
    try:
        data = tomllib.loads(section)
    except tomllib.TOMLDecodeError:
        return None
    if "python-versions" not in data:
        return None
    key = _PYTHON_VERSIONS.search(section)
    line = text.count("\n", 0, match.end() + key.start()) + 1 if key else None
    return data["python-versions"], line


def _type(value: object) -> str:
    return {list: "an array", dict: "a table", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def python_problem(value: str) -> str | None:
    """Why `value` is not a Python X.Y (a label or a probe's answer), or None."""
    return None if PYTHON_RE.fullmatch(value) else f"{value[:40]!r} is not a Python version X.Y"
