"""One build cache per platform (issue 18, arm64 and multi-arch; `nbenv ci github`'s `type=gha` cache).

`nbenv image build` of an environment with `platforms` runs one build per platform with the same
`--cache-from`/`--cache-to`: with one scope, the second export replaced the first, so each run of the
workflow rebuilt one platform from nothing. nbenv now gives a build under emulation its own cache
(`type=gha` scope `NAME-ARCH`, a `type=registry` ref tagged `TAG-ARCH`), the native one the option as
typed: what the same `--cache-to` on the command line gets too.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.platforms import GHA_DEFAULT_SCOPE, SUPPORTED, arch, platform_cache

CASES = [
    # type=gha: the scope gets the architecture; buildx's default scope when none is named
    ("type=gha,scope=base", "linux/arm64", "type=gha,scope=base-arm64"),
    ("type=gha,mode=max,scope=base", "linux/arm64", "type=gha,mode=max,scope=base-arm64"),
    ("type=gha,scope=base", "linux/arm64/v8", "type=gha,scope=base-arm64"),
    ("type=gha,scope=base", "linux/amd64", "type=gha,scope=base-amd64"),  # amd64 emulated on an arm64 engine
    ("type=gha", "linux/arm64", f"type=gha,scope={GHA_DEFAULT_SCOPE}-arm64"),
    ("type=gha,mode=max", "linux/arm64", "type=gha,mode=max,scope=buildkit-arm64"),
    ("TYPE=GHA,Scope=x", "linux/arm64", "TYPE=GHA,Scope=x-arm64"),
    (
        "type=gha,url=http://cache.example/?a=b,scope=s",
        "linux/arm64",
        "type=gha,url=http://cache.example/?a=b,scope=s-arm64",
    ),
    ('type=gha,"scope=a,b"', "linux/arm64", 'type=gha,"scope=a,b-arm64"'),  # CSV quoting kept
    # type=registry, and a bare reference (buildx: type=registry,ref=VALUE): the tag rule of images
    (
        "type=registry,ref=127.0.0.1:5000/team/cache:base",
        "linux/arm64",
        "type=registry,ref=127.0.0.1:5000/team/cache:base-arm64",
    ),
    (
        "type=registry,ref=127.0.0.1:5000/team/cache",
        "linux/arm64",
        "type=registry,ref=127.0.0.1:5000/team/cache:latest-arm64",
    ),
    ("type=registry,ref=cache:x,mode=max", "linux/arm64", "type=registry,ref=cache:x-arm64,mode=max"),
    ("127.0.0.1:5000/team/cache:base", "linux/arm64", "127.0.0.1:5000/team/cache:base-arm64"),
    ("type=registry,ref=cache@sha256:" + "0" * 64, "linux/arm64", "type=registry,ref=cache@sha256:" + "0" * 64),
    # anything else is passed as given
    ("type=local,dest=/tmp/cache", "linux/arm64", "type=local,dest=/tmp/cache"),
    ("type=inline", "linux/arm64", "type=inline"),
    ("scope=x", "linux/arm64", "scope=x"),  # no type: buildx's to refuse
    ("type=gha,type=registry,scope=x", "linux/arm64", "type=gha,type=registry,scope=x"),
    ("", "linux/arm64", ""),
]


@pytest.mark.fault
@pytest.mark.parametrize(("spec", "platform", "expected"), CASES)
def test_a_foreign_platforms_cache(spec: str, platform: str, expected: str) -> None:
    assert platform_cache(spec, platform) == expected


SCOPE = st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\r\n\x00'), max_size=30)


@pytest.mark.fault
@settings(max_examples=300, deadline=None)
@given(scope=SCOPE, mode=st.sampled_from(["", "mode=max,", "mode=min,"]))
def test_gha_scopes_of_two_platforms_never_meet(scope: str, mode: str) -> None:
    """Any scope (quoted as CSV, as buildx reads the option): each platform's is the scope with its
    architecture, the other fields stay, and no two platforms (nor one and the native option) share one."""
    spec = f'type=gha,{mode}"scope={scope}"'
    seen = {f"scope={scope}"}
    for platform in SUPPORTED:
        fields = next(csv.reader([platform_cache(spec, platform)]))
        assert fields == ["type=gha", *([mode.rstrip(",")] if mode else []), f"scope={scope}-{arch(platform)}"]
        seen.add(fields[-1])
    assert len(seen) == 1 + len(SUPPORTED)


# --- the builds of one `nbenv image build` -----------------------------------------------------------------


@pytest.mark.fault
def test_each_platforms_build_reads_and_writes_its_own_cache(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the workflow's build step runs (`--cache-from/--cache-to type=gha,scope=ENV`) for a two-platform
    environment: the native builds (parent, then child) use the option as typed, the arm64 ones scope ENV-arm64."""
    from nbenv import build
    from nbenv.build import BuildOptions
    from nbenv.ui import quiet
    from tests.unit.test_fake_engine import BASE, FakeEngine, _project

    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(build, "require_emulation", lambda platform, native: None)
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'image_prefix = "nbenv"\n', 'image_prefix = "nbenv"\nplatforms = ["linux/amd64", "linux/arm64"]\n'
        )
    )
    fake = FakeEngine()
    fake.add_image(f"{BASE}-arm64", labels={})
    options = BuildOptions(
        cache_from=("type=gha,scope=traffic-analysis",),
        cache_to=("type=gha,mode=max,scope=traffic-analysis",),
    )
    builder = _project(workspace, fake).builder(say=quiet, live=False)
    builder.build_platforms("traffic-analysis", options=options)
    assert [(r.platform, r.cache_from, r.cache_to) for r in fake.build_requests] == [
        (None, ("type=gha,scope=traffic-analysis",), ("type=gha,mode=max,scope=traffic-analysis",)),
        (None, ("type=gha,scope=traffic-analysis",), ("type=gha,mode=max,scope=traffic-analysis",)),
        (
            "linux/arm64",
            ("type=gha,scope=traffic-analysis-arm64",),
            ("type=gha,mode=max,scope=traffic-analysis-arm64",),
        ),
        (
            "linux/arm64",
            ("type=gha,scope=traffic-analysis-arm64",),
            ("type=gha,mode=max,scope=traffic-analysis-arm64",),
        ),
    ]


@pytest.mark.fault
def test_one_platform_on_the_command_line_gets_that_platforms_cache(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nbenv image build base --platform linux/arm64 --cache-to type=registry,ref=R:cache`: the same rule
    with no `platforms` set, so a later two-platform build finds that cache where it looks."""
    from nbenv import build
    from nbenv.build import BuildOptions
    from nbenv.ui import quiet
    from tests.unit.test_fake_engine import BASE, FakeEngine, _project

    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(build, "require_emulation", lambda platform, native: None)
    fake = FakeEngine()
    fake.add_image(f"{BASE}-arm64", labels={})
    options = BuildOptions(cache_to=("type=registry,ref=127.0.0.1:5000/cache:base,mode=max",))
    builder = _project(workspace, fake).builder(say=quiet, live=False)
    builder.build("base", options=options, platform="linux/arm64")
    builder.build("base", options=options)
    assert [(r.platform, r.cache_to) for r in fake.build_requests] == [
        ("linux/arm64", ("type=registry,ref=127.0.0.1:5000/cache:base-arm64,mode=max",)),
        (None, ("type=registry,ref=127.0.0.1:5000/cache:base,mode=max",)),
    ]
