"""Where an image came from: git state, build records, labels, the banner and push tags (pure functions).

Every image carries its lineage twice: as lines of `HISTORY_PATH` inside the image (each build
appends one, so a child image built FROM its parent keeps the parent's line) and as the JSON
label `nbenv.history`, so `nbenv image inspect` reads it without starting a container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

HISTORY_PATH = "/opt/nbenv/history.jsonl"
HISTORY_LABEL = "nbenv.history"
OCI = "org.opencontainers.image"

_VERSION_TAG = re.compile(
    r"^v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@dataclass(frozen=True)
class GitState:
    commit: str | None  # full hash; None outside a git repository or before the first commit
    dirty: bool  # uncommitted changes (tracked or untracked files) at build time
    tag: str | None = None  # the release tag pointing exactly at HEAD, e.g. "v1.2.3"
    source: str = ""  # browsable repository URL, credentials stripped
    problem: str | None = None  # why the commit is unknown
    changed: tuple[str, ...] = ()  # what makes it dirty: `git status --porcelain` paths

    def changes(self, limit: int = 5) -> str:
        """The first few changed paths, for a message: `src/a.py, notes.md and 3 more`."""
        shown = ", ".join(self.changed[:limit])
        more = len(self.changed) - limit
        return f"{shown} and {more} more" if more > 0 else shown

    @property
    def short(self) -> str:
        return (self.commit or "unknown")[:12]


def release_tag(tags: Iterable[str]) -> str | None:
    """Of the tags at HEAD, the `vX.Y.Z` one with the highest version (a release beats its pre-releases)."""
    best: tuple[tuple[int, int, int, int], str] | None = None
    for tag in tags:
        match = _VERSION_TAG.match(tag)
        if match is None:
            continue
        key = (int(match["major"]), int(match["minor"]), int(match["patch"]), 0 if match["pre"] else 1)
        if best is None or key > best[0]:
            best = (key, tag)
    return best[1] if best else None


def image_version(git: GitState) -> str:
    """The OCI version label: the release (`1.2.3`), else `sha-<12 hex>`, `-dirty` when so."""
    if git.commit is None:
        return "unknown"
    match = _VERSION_TAG.match(git.tag or "")
    version = git.tag[1:] if match and git.tag else f"sha-{git.short}"
    return f"{version}-dirty" if git.dirty else version


# --- build records and labels ---------------------------------------------------------------


def build_record(
    *,
    environment: str,
    image: str,
    base_image: str,
    groups: Sequence[str],
    lock_hash: str,
    content_key: str,
    git: GitState,
    created: str,
    nbenv_version: str,
) -> dict[str, Any]:
    """One line of the build history: what this build added, on what, from which commit."""
    return {
        "date": created,
        "environment": environment,
        "image": image,
        "version": image_version(git),
        "commit": git.commit,
        "dirty": git.dirty,
        "groups": list(groups),
        "lock_hash": lock_hash,
        "base_image": base_image,
        "content_key": content_key,
        "nbenv": nbenv_version,
    }


def record_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def build_labels(
    record: Mapping[str, Any], *, history: Sequence[Mapping[str, Any]], source: str, parent_digest: str
) -> dict[str, str]:
    """The labels given at build time; the static ones (title, environment, groups...) are in the Dockerfile."""
    return {
        f"{OCI}.revision": record["commit"] or "",
        f"{OCI}.source": source,
        f"{OCI}.created": record["date"],
        f"{OCI}.version": record["version"],
        "nbenv.lock-hash": record["lock_hash"],
        "nbenv.content-key": record["content_key"],
        "nbenv.dirty": "true" if record["dirty"] else "false",
        "nbenv.parent.digest": parent_digest,
        "nbenv.version": record["nbenv"],
        HISTORY_LABEL: json.dumps([*history, record], sort_keys=True, separators=(",", ":")),
    }


def history_of(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The lineage recorded in an image's labels, oldest first; [] for an image nbenv did not build."""
    try:
        value = json.loads(labels.get(HISTORY_LABEL) or "[]")
    except json.JSONDecodeError:
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class ImageProvenance:
    """What an image's labels say about it."""

    environment: str
    commit: str | None
    dirty: bool
    created: str
    version: str
    groups: tuple[str, ...]
    content_key: str
    history: tuple[dict[str, Any], ...]

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> ImageProvenance:
        return cls(
            environment=labels.get("nbenv.environment", ""),
            commit=labels.get(f"{OCI}.revision") or None,
            dirty=labels.get("nbenv.dirty") != "false",
            created=labels.get(f"{OCI}.created", ""),
            version=labels.get(f"{OCI}.version", ""),
            groups=tuple(g for g in labels.get("nbenv.groups", "").split(",") if g),
            content_key=labels.get("nbenv.content-key", ""),
            history=tuple(history_of(labels)),
        )

    def matches(self, git: GitState) -> bool:
        """Built from this commit, and from a dirty tree exactly when the tree is dirty now."""
        return git.commit is not None and self.commit == git.commit and self.dirty == git.dirty

    def commit_text(self) -> str:
        if self.commit is None:
            return "unknown (not built from a git commit)"
        return f"{self.commit[:12]}{' (dirty: uncommitted changes at build time)' if self.dirty else ''}"


def banner(ref: str, image_id: str, provenance: ImageProvenance) -> list[str]:
    """The block `nbenv up` prints when an environment starts."""
    lineage = " <- ".join(str(r.get("environment", "?")) for r in provenance.history) or provenance.environment
    return [
        f"image    {ref} ({image_id.removeprefix('sha256:')[:12]})",
        f"commit   {provenance.commit_text()}",
        f"built    {provenance.created or 'unknown'}",
        f"groups   {', '.join(provenance.groups) or 'none'}",
        f"lineage  {lineage}",
        f"history  {HISTORY_PATH} in the container; `nbenv image inspect {provenance.environment}` here",
    ]


# --- pushing --------------------------------------------------------------------------------


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


def is_floating(tag: str) -> bool:
    """`X.Y`, `X` and `latest` move to each newer release; every other tag names one image forever."""
    return tag == "latest" or re.fullmatch(r"\d+(\.\d+)?", tag) is not None


Action = Literal["push", "present", "conflict", "keep"]


@dataclass(frozen=True)
class TagDecision:
    tag: str
    action: Action  # push it; already there (same image); there with another image (refuse); leave it
    remote_image: str | None  # the image (config digest) the registry has under the tag now


def plan_push(local_image: str, remote: Mapping[str, str | None]) -> list[TagDecision]:
    """What to do with each tag, given what the registry holds (`remote[tag]`: config digest or None).

    A fixed tag holding another image is a conflict: the caller pushes nothing. A floating tag
    holding another image moves only when this push publishes something new under a fixed tag,
    so re-pushing an old release never moves `latest` back.
    """
    publishes_new = any(found is None for tag, found in remote.items() if not is_floating(tag))
    return [TagDecision(tag, _action(tag, found, local_image, publishes_new), found) for tag, found in remote.items()]


def _action(tag: str, found: str | None, local_image: str, publishes_new: bool) -> Action:
    if found is None:
        return "push"
    if found == local_image:
        return "present"
    if not is_floating(tag):
        return "conflict"
    return "push" if publishes_new else "keep"
