"""The wheel pre-flight: which packages an image selects from poetry.lock have no wheel that a target
platform's Python can install, so that pip/uv would compile them from the sdist (or fail without one).

A user learns this in a second, before a 20-minute emulated arm64 build, not after it. Pure: the
packages (from `lock.py`'s parsed lock: the file names each `[[package]]` lists), the image's Python
X.Y and glibc X.Y (a Debian suite's: `constants.SUITE_PYTHON`, `SUITE_GLIBC`) and the target platforms
in; the packages that would compile, each with its reason, out.

What a platform installs is `packaging.tags`' answer for CPython X.Y on Linux: `cpXY-cpXY`, `abi3` down
to cp32, `none`, `pyX`/`pyXY`, `any`, on `manylinux_2_Y_ARCH` for every Y up to the suite's glibc
(with the legacy names manylinux1/2010/2014 for 2.5/2.12/2.17) and `linux_ARCH`. musllinux wheels
(Alpine's musl) never count on Debian. Wheel names are parsed by `packaging.utils.parse_wheel_filename`.

Lock formats: Poetry 1.2+ (lock-version 1.1, 2.0, 2.1) lists `files = [{file = NAME, hash = ...}]` in each
`[[package]]`; lock-version 1.0 and older kept them in `[metadata.files]`, which nbenv does not read
(lock.py refuses anything older than 2.1 anyway). A lock entry without file names cannot be judged and
is reported as such. Only the project's own lock is checked: nbenv's pinned Jupyter server and ipykernel
sets (nbenv.server_env) carry hashes, not file names, and are pure Python or have wheels for both
platforms at the suites' Pythons (their pins are tested where they are made).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from nbenv.errors import UsageError
from nbenv.lock import Lock, LockedPackage, canonical

# The platforms nbenv builds for (OCI `os/arch[/variant]`) and the machine name wheels and markers use.
PLATFORM_MACHINE = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64"}
# The oldest manylinux each machine has (PEP 600: manylinux1 was x86_64/i686 only; aarch64 starts at 2014).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
# PEP 600's legacy aliases: manylinux1 = 2.5, manylinux2010 = 2.12, manylinux2014 = 2.17.
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_LEGACY_MACHINES = {"manylinux1": {"x86_64"}, "manylinux2010": {"x86_64"}, "manylinux2014": {"x86_64", "aarch64"}}
_LINUX_PLATFORM = re.compile(
    r"(?P<family>manylinux|musllinux)_(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<arch>\w+)"
    r"|(?P<legacy>manylinux1|manylinux2010|manylinux2014)_(?P<legacy_arch>\w+)"
    r"|linux_(?P<plain_arch>\w+)",
    re.A,
)
_X_Y = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})", re.A)
_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar")
NO_FILE_NAMES = "poetry.lock lists no file names for it, so nbenv cannot tell which wheels exist"


def platform_problem(platform: str) -> str | None:
    """Why `platform` is not one the pre-flight knows (OCI `os/arch`), or None."""
    if platform in PLATFORM_MACHINE:
        return None
    return f"{platform[:40]!r} is not a platform nbenv builds for (one of {', '.join(PLATFORM_MACHINE)})"


_EXAMPLE = {"--python": "3.11", "--glibc": "2.36"}


def _x_y(value: str, what: str) -> tuple[int, int]:
    match = _X_Y.fullmatch(value)
    if match is None:
        raise UsageError(f"{what} {value[:40]!r} is not a version X.Y", f"e.g. {what} {_EXAMPLE[what]}")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Target:
    """One platform an image is built for: OCI platform, the image's Python X.Y and its glibc X.Y."""

    platform: str  # "linux/arm64"
    python: str  # "3.11"
    glibc: str  # "2.36"

    def __post_init__(self) -> None:
        if problem := platform_problem(self.platform):
            raise UsageError(f"--platform: {problem}")
        _x_y(self.python, "--python")
        _x_y(self.glibc, "--glibc")

    @property
    def machine(self) -> str:
        return PLATFORM_MACHINE[self.platform]

    @property
    def glibc_version(self) -> tuple[int, int]:
        return _x_y(self.glibc, "--glibc")

    @property
    def python_version(self) -> tuple[int, int]:
        return _x_y(self.python, "--python")

    def linux_platforms(self) -> list[str]:
        """Newest first, as pip orders them: manylinux_2_Y (and its legacy name) down to the oldest, then linux."""
        major, newest = self.glibc_version
        aliases = {version: name for name, version in _LEGACY.items()}
        found: list[str] = []
        for minor in range(newest, _OLDEST_GLIBC_MINOR[self.machine] - 1, -1):
            found.append(f"manylinux_{major}_{minor}_{self.machine}")
            if (alias := aliases.get((major, minor))) and self.machine in _LEGACY_MACHINES[alias]:
                found.append(f"{alias}_{self.machine}")
        return [*found, f"linux_{self.machine}"]

    @cached_property
    def tags(self) -> frozenset[Tag]:
        """Every tag CPython X.Y on this platform's Debian installs (packaging.tags)."""
        platforms = self.linux_platforms()
        version = self.python_version
        interpreter = f"cp{version[0]}{version[1]}"
        return frozenset(
            [
                *cpython_tags(python_version=version, platforms=platforms),
                *compatible_tags(python_version=version, interpreter=interpreter, platforms=platforms),
            ]
        )

    @cached_property
    def _abis(self) -> frozenset[tuple[str, str]]:
        return frozenset((tag.interpreter, tag.abi) for tag in self.tags)

    def marker_environment(self, patch: int) -> dict[str, str]:
        """PEP 508 marker values of this platform's CPython X.Y.`patch` on Debian."""
        full = f"{self.python}.{patch}"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.python,
            "sys_platform": "linux",
            "extra": "",
        }

    def needs(self, marker: str | None) -> bool:
        """Whether a package under `marker` is installed here (a marker nbenv cannot evaluate: yes)."""
        if marker is None:
            return True
        try:
            parsed = Marker(marker)
            return any(parsed.evaluate(self.marker_environment(patch)) for patch in (0, 99))
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            return True

    def why_not(self, files: Sequence[str]) -> str | None:
        """None when one of `files` is a wheel this platform installs; else why none is."""
        if not files:
            return NO_FILE_NAMES
        wheels = [tags for tags in map(_wheel_tags, files) if tags is not None]
        if any(tags & self.tags for tags in wheels):
            return None
        has_sdist = any(name.lower().endswith(_SDIST_SUFFIXES) for name in files)
        then = "would be built from its sdist" if has_sdist else "no sdist either: the install would fail"
        return f"{self._diagnosis(wheels)}; {then}"

    def _diagnosis(self, wheels: Sequence[frozenset[Tag]]) -> str:
        if not wheels:
            return "no wheel at all (sdist only)"
        here = f"Python {self.python} on {self.platform}"
        ours = [tag for tags in wheels for tag in tags if (tag.interpreter, tag.abi) in self._abis]
        needed = sorted({glibc for tag in ours if (glibc := _manylinux_glibc(tag.platform, self.machine)) is not None})
        if needed:
            oldest = needed[0]
            return (
                f"its {self.machine} wheels for {here} need glibc {oldest[0]}.{oldest[1]} or newer "
                f"(manylinux_{oldest[0]}_{oldest[1]}); the base has glibc {self.glibc}"
            )
        if any(_is_musl(tag.platform, self.machine) for tag in ours):
            return f"only musllinux {self.machine} wheels for {here} (musl, Alpine): Debian's glibc cannot use them"
        other = sorted(
            {tag.interpreter for tags in wheels for tag in tags if _machine_of(tag.platform) == self.machine},
            key=_interpreter_order,
        )
        if other:
            return f"its Linux {self.machine} wheels are for {', '.join(other[:6])}, not {here}"
        return f"no wheel for Linux {self.machine} among its {len(wheels)} wheel(s)"


def _interpreter_order(interpreter: str) -> tuple[str, int]:
    digits = re.sub(r"[^0-9]", "", interpreter)[:6]
    return re.sub(r"[0-9]", "", interpreter), int(digits or 0)


def _wheel_tags(filename: str) -> frozenset[Tag] | None:
    """A wheel's tags, or None for an sdist or any other file (a name packaging cannot parse is no wheel)."""
    if not filename.lower().endswith(".whl"):
        return None
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None


def _linux(platform: str) -> re.Match[str] | None:
    return _LINUX_PLATFORM.fullmatch(platform)


def _machine_of(platform: str) -> str | None:
    match = _linux(platform)
    if match is None:
        return None
    return match.group("arch") or match.group("legacy_arch") or match.group("plain_arch")


def _manylinux_glibc(platform: str, machine: str) -> tuple[int, int] | None:
    """The glibc a manylinux tag for `machine` needs, or None (another machine, musl, not manylinux)."""
    match = _linux(platform)
    if match is None or _machine_of(platform) != machine:
        return None
    if match.group("legacy"):
        return _LEGACY[match.group("legacy")]
    if match.group("family") == "manylinux":
        return int(match.group("major")), int(match.group("minor"))
    return None


def _is_musl(platform: str, machine: str) -> bool:
    match = _linux(platform)
    return match is not None and match.group("family") == "musllinux" and match.group("arch") == machine


@dataclass(frozen=True)
class Selected:
    """A package an image installs, and the marker under which it does (None: always)."""

    package: LockedPackage
    marker: str | None


@dataclass(frozen=True)
class Compiles:
    """A package that a platform would compile (or fail to install), and why."""

    name: str
    version: str
    platform: str
    reason: str

    def line(self) -> str:
        return f"{self.name}\t{self.version}\t{self.platform}\t{self.reason}"


def selected(lock: Lock, groups: Sequence[str]) -> list[Selected]:
    """The packages `groups` install (the image's whole chain: a parent's groups are built for the
    platform too), with their markers: the same selection as the image's requirements files."""
    # By name and version: a lock may hold two versions of one package under exclusive markers.
    by_pin = {(canonical(p.name), p.version): p for p in lock.packages}
    return [Selected(by_pin[(canonical(pin.name), pin.version)], pin.marker) for pin in lock.pins(groups)]


def targets(platforms: Sequence[str], *, python: str, glibc: str) -> list[Target]:
    """One Target per platform (each checked), in the order given, without repeats."""
    if not platforms:
        raise UsageError("name at least one target platform", f"e.g. --platform {next(iter(PLATFORM_MACHINE))}")
    return [Target(platform, python, glibc) for platform in dict.fromkeys(platforms)]


def would_compile(packages: Iterable[Selected], platforms: Sequence[Target]) -> list[Compiles]:
    """Every (package, platform) with no installable wheel, by package name then platform order."""
    found: list[Compiles] = []
    for item in sorted(packages, key=lambda s: canonical(s.package.name)):
        for target in platforms:
            if not target.needs(item.marker):
                continue
            if (reason := target.why_not(item.package.files)) is not None:
                found.append(Compiles(item.package.name, item.package.version, target.platform, reason))
    return found


# The platforms checked when none is named (the integrator's `platforms` setting replaces this default).
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class Preflight:
    """The pre-flight of one environment's image: its base, the targets checked and what would compile."""

    name: str
    base_image: str
    targets: tuple[Target, ...]
    checked: int  # selected packages
    compiles: tuple[Compiles, ...]

    def summary(self) -> str:
        platforms = ", ".join(target.platform for target in self.targets)
        first = self.targets[0]
        where = f"{platforms} (Python {first.python}, glibc {first.glibc}, base {self.base_image})"
        if not self.compiles:
            return f"all wheels present: {self.checked} package(s) of {self.name} for {where}"
        packages = len({item.name for item in self.compiles})
        return f"{packages} package(s) of {self.name} have no wheel for {where} and would be compiled"


def preflight(
    name: str, base_image: str, packages: Sequence[Selected], platforms: Sequence[str], *, python: str, glibc: str
) -> Preflight:
    """The whole check of one image: `packages` (see `selected`) against each of `platforms`."""
    checked = targets(platforms, python=python, glibc=glibc)
    return Preflight(name, base_image, tuple(checked), len(packages), tuple(would_compile(packages, checked)))
