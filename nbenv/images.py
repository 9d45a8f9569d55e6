"""Images after they are built: inspect their provenance, push them under the tag rules."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from nbenv.adapters.engine import EngineAPI, ImageInfo
from nbenv.adapters.registry import Registry
from nbenv.build import BuildOptions, ImageBuilder
from nbenv.errors import RegistryError, RunError
from nbenv.plan import image_repository
from nbenv.provenance import GitState, ImageProvenance, TagDecision, plan_push, push_tags
from nbenv.ui import Say
from nbenv.workspace import REGISTRY_HINT, Workspace, registry_problem

# --- inspect --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inspection:
    ref: str
    info: ImageInfo
    provenance: ImageProvenance
    head: GitState

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.ref,
            "id": self.info.id,
            "repo_tags": list(self.info.repo_tags),
            "repo_digests": list(self.info.repo_digests),
            "size": self.info.size,
            "labels": {k: v for k, v in sorted(self.info.labels.items()) if k != "nbenv.history"},
            "history": list(self.provenance.history),
            "built_from_head": self.provenance.matches(self.head),
        }

    def lines(self) -> list[str]:
        labels = self.info.labels
        rows = [
            ("image", f"{self.ref} ({self.info.id})"),
            ("commit", self.provenance.commit_text()),
            ("head", _head_note(self.provenance, self.head)),
            ("version", self.provenance.version or "unknown"),
            ("built", self.provenance.created or "unknown"),
            ("groups", ", ".join(self.provenance.groups) or "none"),
            ("source", labels.get("org.opencontainers.image.source") or "(no origin remote)"),
            ("digests", ", ".join(self.info.repo_digests) or "(never pushed)"),
        ]
        out = [f"{key:<9}{value}" for key, value in rows]
        out += ["labels"] + [f"  {k} = {v}" for k, v in sorted(labels.items()) if k != "nbenv.history"]
        out += [f"lineage ({len(self.provenance.history)} build record(s), oldest first)"]
        for record in self.provenance.history:
            commit = str(record.get("commit") or "unknown")[:12] + (" dirty" if record.get("dirty") else "")
            out.append(
                f"  {record.get('date', '?')}  {record.get('environment', '?'):<20} commit {commit}"
                f"  groups {','.join(record.get('groups', []))}  lock {str(record.get('lock_hash', ''))[:12]}"
                f"  FROM {record.get('base_image', '?')}"
            )
        return out


def _head_note(provenance: ImageProvenance, head: GitState) -> str:
    if head.commit is None:
        return f"unknown ({head.problem})"
    if provenance.matches(head):
        return f"{head.short}: the image was built from it"
    dirty = ", uncommitted changes now" if head.dirty else ""
    return f"{head.short}{dirty}: the image was built elsewhere (a build or push relabels it)"


def inspect(engine: EngineAPI, ws: Workspace, name: str, head: GitState) -> Inspection:
    ref = f"{image_repository(ws.config, name)}:latest"
    info = engine.inspect(ref)
    if info is None:
        raise RunError(f"no image {ref}: {name} has not been built", f"build it: `nbenv image build {name}`")
    return Inspection(ref, info, ImageProvenance.from_labels(info.labels), head)


# --- push -----------------------------------------------------------------------------------


def registry_of(ws: Workspace, option: str | None) -> str:
    """Where pushes go: --registry, else NBENV_REGISTRY, else the repo-wide `registry` setting."""
    for source, value in (
        ("--registry", option),
        ("NBENV_REGISTRY", os.environ.get("NBENV_REGISTRY")),
        (f"{ws.config_display}: registry", ws.config.registry),
    ):
        if value:
            if problem := registry_problem(value):
                raise RegistryError(f"{source}: {problem}", REGISTRY_HINT)
            return value
    raise RegistryError(
        "no registry to push to",
        f'set `registry = "HOST[:PORT][/PATH]"` in {ws.config_display}, NBENV_REGISTRY, or pass --registry',
    )


@dataclass(frozen=True)
class PushResult:
    repository: str  # registry/prefix/name
    image_id: str
    decisions: tuple[TagDecision, ...]
    digest: str | None  # manifest digest in the registry


def push(
    builder: ImageBuilder, engine: EngineAPI, ws: Workspace, name: str, *, registry: str, allow_dirty: bool, say: Say
) -> PushResult:
    git = builder.git
    if git.commit is None:
        raise RegistryError(f"cannot push {name}: {git.problem}", "push from a git checkout with at least one commit")
    if git.dirty and not allow_dirty:
        raise RegistryError(
            f"refusing to push {name}: the working tree has uncommitted changes ({git.changes()})",
            f"commit them first, or `--allow-dirty` to push only sha-{git.short}-dirty",
        )
    built = builder.build(name, options=BuildOptions(fresh_provenance=True))
    repository = f"{registry}/{image_repository(ws.config, name)}"
    remote = Registry(registry, docker=engine.docker)
    tags = push_tags(git)
    found = {tag: remote.lookup(f"{repository}:{tag}") for tag in tags}
    decisions = plan_push(built.image_id, {tag: held.image if held else None for tag, held in found.items()})
    if conflicts := [d for d in decisions if d.action == "conflict"]:
        first = conflicts[0]
        raise RegistryError(
            f"refusing to push {name}: {repository}:{first.tag} already holds another image "
            f"({first.remote_image}); nothing was pushed",
            "tags are immutable: rebuild from a new commit (or delete that tag in the registry on purpose)",
        )
    digest: str | None = None
    for decision in decisions:
        target = f"{repository}:{decision.tag}"
        if decision.action != "push":
            say(f"{target}: {'already there' if decision.action == 'present' else 'left on a newer release'}")
            continue
        engine.tag(built.ref, target)
        say(f"{target}: pushing")
        digest = remote.push(target)
        _verify(remote, target, built.image_id, digest)
    if digest is None and tags and (held := found[tags[0]]):
        digest = held.manifest  # nothing new was pushed: the digest the registry already had
    return PushResult(repository, built.image_id, tuple(decisions), digest)


def _verify(remote: Registry, target: str, image_id: str, pushed_digest: str) -> None:
    """After a push, the registry must serve exactly the local image under the tag."""
    held = remote.lookup(target)
    found, digest = (held.image, held.manifest) if held else (None, None)
    if found != image_id or digest != pushed_digest:
        raise RegistryError(
            f"{target}: the registry serves {digest} (image {found}), not the pushed {pushed_digest} ({image_id})",
            "someone pushed to the same tag meanwhile; check the registry",
        )
