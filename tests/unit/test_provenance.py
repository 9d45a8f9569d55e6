"""Provenance as pure rules: push tags, release tags, records, labels, push decisions, URLs."""

from __future__ import annotations

import pytest

from nbenv.adapters.git import public_url
from nbenv.adapters.registry import is_loopback
from nbenv.provenance import (
    HISTORY_LABEL,
    GitState,
    ImageProvenance,
    TagDecision,
    banner,
    build_labels,
    build_record,
    history_of,
    image_version,
    plan_push,
    push_tags,
    release_tag,
)
from nbenv.workspace import registry_problem

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("tag", "dirty", "expected"),
    [
        (None, False, ["sha-0123456789ab"]),
        ("v1.2.3", False, ["sha-0123456789ab", "1.2.3", "1.2", "1", "latest"]),
        ("v0.3.1", False, ["sha-0123456789ab", "0.3.1", "0.3", "latest"]),
        ("v2.0.0-rc.1", False, ["sha-0123456789ab", "2.0.0-rc.1"]),
        ("v1.2.3+build.7", False, ["sha-0123456789ab", "1.2.3", "1.2", "1", "latest"]),
        ("release-7", False, ["sha-0123456789ab"]),
        ("v1.2", False, ["sha-0123456789ab"]),
        ("v01.2.3", False, ["sha-0123456789ab"]),
        ("v1.2.3", True, ["sha-0123456789ab-dirty"]),
        (None, True, ["sha-0123456789ab-dirty"]),
    ],
)
def test_push_tags(tag: str | None, dirty: bool, expected: list[str]) -> None:
    assert push_tags(GitState(SHA, dirty, tag)) == expected


def test_no_commit_means_no_tags() -> None:
    assert push_tags(GitState(None, False, None)) == []


# --- release tags, versions, records, labels ---------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], None),
        (["nightly", "release-7"], None),
        (["v1.2.3"], "v1.2.3"),
        (["v1.2.3-rc.1", "v1.2.3"], "v1.2.3"),
        (["v1.2.3", "v1.10.0"], "v1.10.0"),
        (["v2.0.0-rc.1", "v1.9.9"], "v2.0.0-rc.1"),
        (["v01.2.3", "v1.2"], None),
    ],
)
def test_release_tag_picks_the_highest_version_at_head(tags: list[str], expected: str | None) -> None:
    assert release_tag(tags) == expected


@pytest.mark.parametrize(
    ("git", "expected"),
    [
        (GitState(SHA, False), "sha-0123456789ab"),
        (GitState(SHA, True), "sha-0123456789ab-dirty"),
        (GitState(SHA, False, "v1.2.3"), "1.2.3"),
        (GitState(SHA, True, "v1.2.3"), "1.2.3-dirty"),
        (GitState(None, True, problem="not a git repository"), "unknown"),
    ],
)
def test_image_version(git: GitState, expected: str) -> None:
    assert image_version(git) == expected


def record(environment: str, git: GitState, *, base: str = "nbenv/debian-python:bookworm") -> dict[str, object]:
    return build_record(
        environment=environment,
        image=f"nbenv/{environment}:ck-0000",
        base_image=base,
        groups=["notebook"],
        lock_hash="ab" * 32,
        content_key="cd" * 32,
        git=git,
        created="2026-11-21T15:00:00Z",
        nbenv_version="0.1.0",
    )


def test_labels_carry_the_oci_set_and_the_lineage() -> None:
    git = GitState(SHA, False, "v1.2.3", source="https://example.invalid/team/repo")
    parent = record("base", git)
    child = record("child", git, base="nbenv/base:ck-0000")
    labels = build_labels(child, history=[parent], source=git.source, parent_digest="sha256:" + "e" * 64)
    assert labels["org.opencontainers.image.revision"] == SHA
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    assert labels["org.opencontainers.image.created"] == "2026-11-21T15:00:00Z"
    assert labels["org.opencontainers.image.source"] == "https://example.invalid/team/repo"
    assert labels["nbenv.dirty"] == "false"
    assert labels["nbenv.parent.digest"] == "sha256:" + "e" * 64
    assert history_of(labels) == [parent, child]
    provenance = ImageProvenance.from_labels({**labels, "nbenv.environment": "child", "nbenv.groups": "notebook"})
    assert provenance.matches(git)
    assert not provenance.matches(GitState("f" * 40, False))
    assert not provenance.matches(GitState(SHA, True))
    lines = banner("nbenv/child:ck-0000", "sha256:" + "9" * 64, provenance)
    assert lines[1] == "commit   0123456789ab"
    assert lines[4] == "lineage  base <- child"


def test_a_dirty_build_says_so_and_an_unknown_label_is_not_trusted() -> None:
    labels = build_labels(record("base", GitState(SHA, True)), history=[], source="", parent_digest="")
    provenance = ImageProvenance.from_labels(labels)
    assert provenance.dirty and provenance.commit_text().endswith("(dirty: uncommitted changes at build time)")
    assert ImageProvenance.from_labels({}).dirty, "an image without nbenv's labels is never called clean"
    assert history_of({HISTORY_LABEL: "not json"}) == []
    assert history_of({HISTORY_LABEL: '{"a": 1}'}) == []


# --- push decisions ----------------------------------------------------------------------------

LOCAL, OTHER = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def actions(decisions: list[TagDecision]) -> dict[str, str]:
    return {d.tag: d.action for d in decisions}


def test_a_new_release_pushes_every_tag_and_moves_floating_ones() -> None:
    remote = {"sha-0123456789ab": None, "1.2.3": None, "1.2": OTHER, "1": OTHER, "latest": OTHER}
    assert actions(plan_push(LOCAL, remote)) == {t: "push" for t in remote}


def test_repushing_the_same_image_is_a_no_op_and_never_moves_latest_back() -> None:
    remote = {"sha-0123456789ab": LOCAL, "1.2.3": LOCAL, "1.2": OTHER, "1": OTHER, "latest": OTHER}
    assert actions(plan_push(LOCAL, remote)) == {
        "sha-0123456789ab": "present",
        "1.2.3": "present",
        "1.2": "keep",
        "1": "keep",
        "latest": "keep",
    }


@pytest.mark.parametrize("fixed", ["sha-0123456789ab", "1.2.3", "sha-0123456789ab-dirty", "2.0.0-rc.1"])
def test_a_fixed_tag_holding_another_image_is_a_conflict(fixed: str) -> None:
    assert actions(plan_push(LOCAL, {fixed: OTHER}))[fixed] == "conflict"


# --- URLs and registry names -------------------------------------------------------------------


@pytest.mark.security
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:team/repo.git", "https://github.com/team/repo"),
        ("https://user:token@git.example.invalid/team/repo.git", "https://git.example.invalid/team/repo"),
        ("ssh://git@git.example.invalid:2222/team/repo.git", "https://git.example.invalid/team/repo"),
        ("https://git.example.invalid:8443/team/repo", "https://git.example.invalid:8443/team/repo"),
        ("/srv/git/repo.git", ""),
        ("", ""),
    ],
)
def test_source_urls_never_carry_credentials(url: str, expected: str) -> None:
    assert public_url(url) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000/team", True),
        ("ghcr.io/my-team/sub.path", True),
        ("[::1]:5000", True),
        ("https://ghcr.io", False),
        ("user:secret@ghcr.io", False),
        ("GHCR.io", False),
        ("ghcr.io/team/", False),
        ("a b", False),
        ("ghcr.io;rm -rf /", False),
    ],
)
def test_registry_values(value: str, ok: bool) -> None:
    assert (registry_problem(value) is None) is ok


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("127.8.9.1", True), ("[::1]:5000", True), ("ghcr.io", False)],
)
def test_loopback_registries_are_reached_over_http(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
