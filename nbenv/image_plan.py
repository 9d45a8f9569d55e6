"""Pure planning of one image build: its content key, reference and tags, build record, labels and
build arguments. `build.py` executes the plan (regenerate, build context, engine build, tag).

The content key is the hash of everything that determines the image: the image it is built FROM
(by id), the generated build inputs (every generated file but the run-time ones) and nbenv's version.
An image whose key exists already is up to date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv import __version__
from nbenv.plan import BuildPlan
from nbenv.provenance import GitState, build_labels, build_record, history_of, record_line

RUN_TIME_FILES = ("compose.yaml",)  # how to run the image (ports, mounts, data), not what is in it


def build_inputs(out: Path, rendered: Mapping[Path, str]) -> dict[str, str]:
    """The generated files an image is built from, by path relative to `out`: everything but the
    run-time files, so a new host port or data mount never makes the image stale."""
    return {
        rel: text for path, text in rendered.items() if (rel := path.relative_to(out).as_posix()) not in RUN_TIME_FILES
    }


def content_key(*, from_image_id: str, files: Mapping[str, str]) -> str:
    """Hash of everything that determines the image: base/parent image id, the generated files, nbenv."""
    payload = {"nbenv": __version__, "from": from_image_id, "files": dict(sorted(files.items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ImageTarget:
    """The image a plan builds: its content key, the reference unique to that key, the tags to set."""

    key: str
    ref: str  # repository:ck-<first 12 hex of the key>
    tags: tuple[str, ...]  # the ref, then `:latest` (not for a --groups variant: it moves no shared tag)


def image_target(plan: BuildPlan, *, from_image_id: str, inputs: Mapping[str, str]) -> ImageTarget:
    """The image `plan` builds FROM `from_image_id` out of the build `inputs` (see `build_inputs`)."""
    key = content_key(from_image_id=from_image_id, files=inputs)
    ref = f"{plan.image}:ck-{key[:12]}"
    return ImageTarget(key, ref, (ref,) if plan.is_variant else (ref, f"{plan.image}:latest"))


@dataclass(frozen=True)
class BuildMetadata:
    record: dict[str, Any]  # this build's line of the image's history
    labels: dict[str, str]  # the labels given at build time (the static ones are in the Dockerfile)
    build_args: dict[str, str]


def build_metadata(
    plan: BuildPlan,
    target: ImageTarget,
    *,
    from_ref: str,
    from_image_id: str,
    parent_labels: Mapping[str, str] | None,
    lock_hash: str,
    git: GitState,
    created: str,
    base_image: str | None = None,
) -> BuildMetadata:
    """The record, labels and build arguments of building `target` FROM `from_ref` (the base image, or
    the parent's image, whose labels carry the history this build extends). `base_image`: the chain's
    base for this build's platform (its own tag for another platform); None: the spec's."""
    record = build_record(
        environment=plan.env.name,
        image=target.ref,
        base_image=from_ref,
        groups=plan.groups,
        lock_hash=lock_hash,
        content_key=target.key,
        git=git,
        created=created,
        nbenv_version=__version__,
    )
    history = history_of(parent_labels) if parent_labels is not None else []
    labels = build_labels(record, history=history, source=git.source, parent_digest=from_image_id)
    arg = "PARENT_IMAGE" if plan.env.extends else "BASE_IMAGE"
    base = base_image or plan.env.base_image
    build_args = {arg: from_ref, "BASE_IMAGE": base, "NBENV_BUILD_RECORD": record_line(record)}
    return BuildMetadata(record, labels, build_args)
