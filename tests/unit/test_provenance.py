"""The push tag table (issue: provenance): pure rules, every row a case."""

from __future__ import annotations

import pytest

from nbenv.provenance import GitState, push_tags

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
