"""Where an image came from: git state, labels, and the tags a push may use (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION_TAG = re.compile(
    r"^v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@dataclass(frozen=True)
class GitState:
    commit: str | None  # full hash; None outside a git repository or before the first commit
    dirty: bool  # uncommitted changes (tracked or untracked files) at build time
    tag: str | None = None  # a tag pointing exactly at HEAD, e.g. "v1.2.3"

    @property
    def short(self) -> str:
        return (self.commit or "unknown")[:12]


def push_tags(git: GitState) -> list[str]:
    """Registry tags for an image built from `git`.

    `sha-<12 hex>` always; from a `vX.Y.Z` tag also `X.Y.Z` and `X.Y`, plus `X` from 1.0 on
    (a bare `0` would claim API stability 0.x does not promise); `latest` only for a release.
    A pre-release (`v1.2.0-rc.1`) gets its exact version only. A dirty tree gets `-dirty` tags
    only (and only when the caller allowed pushing it).
    """
    if git.commit is None:
        return []
    if git.dirty:
        return [f"sha-{git.short}-dirty"]
    tags = [f"sha-{git.short}"]
    match = _VERSION_TAG.match(git.tag or "")
    if match is None:
        return tags
    major, minor, patch, pre = match["major"], match["minor"], match["patch"], match["pre"]
    if pre:
        return [*tags, f"{major}.{minor}.{patch}-{pre}"]
    tags += [f"{major}.{minor}.{patch}", f"{major}.{minor}"]
    if major != "0":
        tags.append(major)
    return [*tags, "latest"]
