"""Target platforms (`platforms = ["linux/amd64", "linux/arm64"]`): their grammar, names and emulation.

Pure, apart from `emulation_problem`, which reads /proc. A platform is `os/arch[/variant]` as OCI
image indexes name it; nbenv builds the two that its Debian base images and BuildKit under QEMU cover
here: linux/amd64 and linux/arm64 (`linux/arm64/v8` is the same platform, written the long way).

No `platforms` anywhere means the engine's native platform only: the same images and tags as before
the setting existed. With it, every listed platform gets its own image; the native one keeps the plain
tags (`:ck-KEY`, `:latest`) and every other one gets them with an `-ARCH` suffix (`:latest-arm64`),
so neither base images nor environment images of two platforms ever share a tag.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbenv.errors import BuildError

PLATFORM_RE = re.compile(r"^(?P<os>[a-z0-9]{1,32})/(?P<arch>[a-z0-9_]{1,32})(?:/(?P<variant>[a-z0-9]{1,16}))?$")
SUPPORTED = ("linux/amd64", "linux/arm64")
PLATFORMS_HINT = 'platforms = ["linux/amd64", "linux/arm64"] (leave it out for the engine\'s own platform only)'
# The long spellings OCI allows for the same platforms.
_ALIASES = {"linux/arm64/v8": "linux/arm64"}
# `docker info`'s Architecture (the kernel's `uname -m`) -> the OCI architecture.
_MACHINE_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Emulator:
    """The QEMU user-mode emulator that runs another architecture's binaries through binfmt_misc."""

    binfmt: str  # its binfmt_misc entry, e.g. qemu-aarch64
    debian_arch: str  # what mmdebstrap --arch and dpkg call the architecture


_EMULATORS = {
    "linux/arm64": Emulator("qemu-aarch64", "arm64"),
    "linux/amd64": Emulator("qemu-x86_64", "amd64"),
}


def platform_problem(value: object) -> str | None:
    """Why `value` is not a platform nbenv builds, or None."""
    if not isinstance(value, str):
        return f"must be a string such as 'linux/arm64', not {type(value).__name__}"
    if not PLATFORM_RE.fullmatch(value):
        return f"{value!r} is not a platform: write os/arch[/variant], e.g. 'linux/arm64'"
    if _ALIASES.get(value, value) not in SUPPORTED:
        return f"{value!r}: nbenv builds {' and '.join(SUPPORTED)} only"
    return None


def canonical(value: str) -> str:
    """The one spelling of a valid platform (`linux/arm64/v8` -> `linux/arm64`)."""
    return _ALIASES.get(value, value)


def platforms_problem(values: Sequence[object]) -> str | None:
    """Why a `platforms` list is unacceptable (empty, a bad entry, a platform twice), or None."""
    if not values:
        return "is empty: list at least one platform, or leave it out for the engine's own platform"
    seen: set[str] = set()
    for value in values:
        if problem := platform_problem(value):
            return problem
        assert isinstance(value, str)
        if canonical(value) in seen:
            return f"{value!r} is listed twice"
        seen.add(canonical(value))
    return None


def arch(platform: str) -> str:
    """`linux/arm64` -> `arm64`: the suffix of that platform's tags."""
    return canonical(platform).split("/")[1]


def native_platform(machine: str) -> str | None:
    """The platform of an engine whose `docker info` Architecture is `machine`, None if nbenv builds none."""
    found = _MACHINE_ARCH.get(machine.strip().lower())
    return f"linux/{found}" if found else None


def platform_tag(ref: str, platform: str, native: str) -> str:
    """The tag of `ref` for `platform`: `ref` itself on the native platform, else `ref-ARCH`
    (`nbenv/debian-python:bookworm` -> `nbenv/debian-python:bookworm-arm64`; no tag: `latest-arm64`)."""
    if canonical(platform) == canonical(native):
        return ref
    return _suffixed(ref, arch(platform))


def _suffixed(ref: str, suffix: str) -> str:
    """`ref` tagged `TAG-SUFFIX` (no tag: `latest-SUFFIX`); a digest names one image of one platform: unchanged."""
    if "@" in ref:
        return ref
    if ":" in ref.rsplit("/", 1)[-1]:
        return f"{ref}-{suffix}"
    return f"{ref}:latest-{suffix}"


def debian_arch(platform: str) -> str:
    return _EMULATORS[canonical(platform)].debian_arch


def emulation_problem(platform: str, native: str, *, proc: Path = Path("/proc/sys/fs/binfmt_misc")) -> str | None:
    """Why this machine cannot run `platform`'s binaries (None: native, or QEMU is registered and enabled).

    Building another architecture's base (mmdebstrap) and images (BuildKit RUN steps) runs its
    binaries through the kernel's binfmt_misc and QEMU; checked before any time is spent."""
    platform = canonical(platform)
    if platform == canonical(native):
        return None
    emulator = _EMULATORS[platform]
    if not (proc / "status").exists():
        return (
            f"building for {platform} on this {native} machine needs QEMU emulation, and binfmt_misc is not mounted: "
            f"mount -t binfmt_misc binfmt_misc {proc} && update-binfmts --enable {emulator.binfmt}"
            " (Debian packages qemu-user-static binfmt-support)"
        )
    entry = proc / emulator.binfmt
    try:
        text = entry.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return (
            f"building for {platform} on this {native} machine needs QEMU emulation, and {emulator.binfmt} is not "
            f"registered: apt-get install qemu-user-static binfmt-support && update-binfmts --enable {emulator.binfmt}"
        )
    lines = text.splitlines()
    if not lines or lines[0].strip() != "enabled":
        return f"{emulator.binfmt} is registered but disabled: update-binfmts --enable {emulator.binfmt}"
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:  # without F the engine's containers cannot find the interpreter in their own root
        return (
            f"{emulator.binfmt} lacks the F (fix binary) flag that containers need: reinstall qemu-user-static "
            f"(Debian's registers it with flags PF), then update-binfmts --enable {emulator.binfmt}"
        )
    return None


def require_emulation(platform: str, native: str) -> None:
    """BuildError (one line naming what to install or enable) unless this machine runs `platform`'s binaries."""
    if problem := emulation_problem(platform, native):
        raise BuildError(problem, "see the README's Platforms section; building under QEMU is slow but faithful")


# --- build caches: one per platform ----------------------------------------------------------------------
# One `nbenv image build` of a multi-platform environment runs one build per platform with the same
# --cache-from/--cache-to. Both would export to the same place, each replacing the other's cache, so every
# build under emulation reads and writes its own: the native build uses the option exactly as given.
GHA_DEFAULT_SCOPE = "buildkit"  # buildx's scope of a type=gha cache that names none


def platform_cache(spec: str, platform: str) -> str:
    """The --cache-from/--cache-to `spec` for the build of a foreign `platform` (`linux/arm64`):
    `type=gha` gets `scope=SCOPE-ARCH` (no scope: `buildkit-ARCH`, buildx's default with the suffix);
    `type=registry`, or a bare reference, gets its ref tagged as that platform's images are
    (`REPO:TAG-ARCH`, no tag: `REPO:latest-ARCH`; a digest stays). Any other type stays as given."""
    suffix = arch(platform)
    if "=" not in spec:  # buildx reads a bare value as type=registry,ref=VALUE
        return _suffixed(spec, suffix) if spec.strip() else spec
    fields = next(csv.reader([spec]), [])  # buildx reads the option as one CSV record of key=value fields
    keys = [field.split("=", 1)[0].strip().lower() if "=" in field else "" for field in fields]
    kinds = [field.split("=", 1)[1].strip().lower() for field, key in zip(fields, keys, strict=True) if key == "type"]
    if kinds == ["gha"]:
        if "scope" not in keys:
            fields.append(f"scope={GHA_DEFAULT_SCOPE}")
            keys.append("scope")
        fields = [f"{field}-{suffix}" if key == "scope" else field for field, key in zip(fields, keys, strict=True)]
    elif kinds == ["registry"]:
        fields = [
            f"{field.split('=', 1)[0]}={_suffixed(field.split('=', 1)[1], suffix)}" if key == "ref" else field
            for field, key in zip(fields, keys, strict=True)
        ]
    else:
        return spec
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()
