"""Images after they are built: inspect their provenance, push them under the tag rules (with the
environment's hub layer, when docker/hub/ serves one built here)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nbenv.adapters.engine import EngineAPI, ImageInfo
from nbenv.adapters.registry import Registry, index_identity, printed_index_digest, private_cli_config
from nbenv.build import BuildOptions, BuiltImage, ImageBuilder
from nbenv.errors import NbenvError, RegistryError, RunError
from nbenv.plan import image_repository
from nbenv.platforms import arch, canonical, platform_tag
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
    platforms: tuple[PlatformImage, ...] = ()  # with `platforms`: each platform's image, the native one too

    def as_json(self) -> dict[str, Any]:
        return {
            "platforms": [p.as_json() for p in self.platforms],
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
        for image in self.platforms:
            out.append(f"platform {image.platform:<12} {image.line()}")
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


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image of an environment: its local tag and id, and its digests in registries."""

    platform: str
    ref: str
    info: ImageInfo | None  # None: not built for this platform yet

    def line(self) -> str:
        if self.info is None:
            return f"{self.ref}: not built (`nbenv image build --platform {self.platform}`)"
        return f"{self.info.id}  {', '.join(self.info.repo_digests) or '(never pushed)'}"

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "image": self.ref,
            "id": self.info.id if self.info else None,
            "repo_digests": list(self.info.repo_digests) if self.info else [],
        }


def inspect(
    engine: EngineAPI, ws: Workspace, name: str, head: GitState, platforms: Sequence[str] | None = None
) -> Inspection:
    """The environment's native image (`:latest`); with `platforms`, each platform's image and digests too."""
    ref = f"{image_repository(ws.config, name)}:latest"
    tags = [(p, platform_tag(ref, p, engine.platform)) for p in platforms or ()]
    images = tuple(PlatformImage(p, tag, engine.inspect(tag)) for p, tag in tags)
    info = engine.inspect(ref)
    if info is None:
        info = next((image.info for image in images if image.info is not None), None)
        if info is None:
            raise RunError(f"no image {ref}: {name} has not been built", f"build it: `nbenv image build {name}`")
    return Inspection(ref, info, ImageProvenance.from_labels(info.labels), head, images)


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
class HubLayer:
    """The environment's hub layer (`PREFIX/NAME:hub-KEY`, built by `nbenv hub generate`): what the hub serves."""

    ref: str
    image_id: str
    tag: str  # hub-KEY


@dataclass(frozen=True)
class PushResult:
    repository: str  # registry/prefix/name
    image_id: str
    decisions: tuple[TagDecision, ...]
    digest: str | None  # manifest digest in the registry (of the image index, with `platforms`)
    hub: TagDecision | None = None  # the hub layer's tag (hub-KEY) in the same repository, when there is one
    platforms: tuple[tuple[str, str], ...] = ()  # with `platforms`: (platform, its manifest digest) each
    # with `platforms` and a hub layer: (platform, manifest digest) of each platform's layer (under hub-KEY-ARCH),
    # and the digest of the index over them (under hub-KEY)
    hub_platforms: tuple[tuple[str, str], ...] = ()
    hub_digest: str | None = None


def _check_git(git: GitState, name: str, allow_dirty: bool) -> None:
    if git.commit is None:
        raise RegistryError(f"cannot push {name}: {git.problem}", "push from a git checkout with at least one commit")
    if git.dirty and not allow_dirty:
        raise RegistryError(
            f"refusing to push {name}: the working tree has uncommitted changes ({git.changes()})",
            f"commit them first, or `--allow-dirty` to push only sha-{git.short}-dirty",
        )


def push(
    builder: ImageBuilder, engine: EngineAPI, ws: Workspace, name: str, *, registry: str, allow_dirty: bool, say: Say
) -> PushResult:
    git = builder.git
    _check_git(git, name, allow_dirty)
    if builder.project.loader.environment(name).platforms is not None:
        return push_index(builder, engine, ws, name, registry=registry, say=say)
    built = builder.build(name, options=BuildOptions(fresh_provenance=True))
    repository = f"{registry}/{image_repository(ws.config, name)}"
    remote = Registry(registry, docker=engine.docker)
    tags = push_tags(git)
    found = {tag: remote.lookup(f"{repository}:{tag}") for tag in tags}
    decisions = plan_push(built.image_id, {tag: held.image if held else None for tag, held in found.items()})
    layer = hub_layer(engine, ws, name, say=say)
    hub: TagDecision | None = None
    if layer is not None:
        held = remote.lookup(f"{repository}:{layer.tag}")
        hub = hub_decision(layer.tag, layer.image_id, held.image if held else None)
    _refuse_conflicts(name, repository, decisions)
    digest: str | None = None
    for target in _targets_to_push(repository, decisions, say):
        engine.tag(built.ref, target)
        say(f"{target}: pushing")
        digest = remote.push(target)
        _verify(remote, target, built.image_id, digest)
    if digest is None and tags and (held := found[tags[0]]):
        digest = held.manifest  # nothing new was pushed: the digest the registry already had
    if layer is not None and hub is not None:
        target = f"{repository}:{layer.tag}"
        if hub.action == "push":
            engine.tag(layer.ref, target)
            say(f"{target}: pushing the hub layer (what `nbenv hub` serves on other hosts)")
            _verify(remote, target, layer.image_id, remote.push(target))
        else:
            say(f"{target}: {_hub_left_alone(hub)}")
    return PushResult(repository, built.image_id, tuple(decisions), digest, hub)


HUB_TAG_RE = re.compile(r"hub-[0-9a-f]{12}")


def hub_decision(tag: str, local_image: str, held: str | None) -> TagDecision:
    """What to do with the hub layer's tag (hub-KEY). The tag names the committed inputs the layer is built
    from, not one build of them: a layer built on another machine, or again here after its environment image
    was relabelled for a newer commit, is another image of the same inputs, and serves the hub as well.
    So the first build pushed stays ("keep"), nothing refuses the push, and only an absent tag is pushed.
    (Refusing, as a `sha-` tag does, would refuse every later push: a new commit does not change the key.)"""
    [decision] = plan_push(local_image, {tag: held})
    return dataclasses.replace(decision, action="keep") if decision.action == "conflict" else decision


def _hub_left_alone(decision: TagDecision, what: str = "hub layer") -> str:
    """Why the hub layer (or its index) is not pushed: the same is there, or another build of its inputs."""
    if decision.action == "present":
        return f"the {what} is already there"
    return f"holds another build of the {what}'s inputs ({decision.remote_image}), which serves as well: left as it is"


def hub_layer(engine: EngineAPI, ws: Workspace, name: str, *, say: Say) -> HubLayer | None:
    """The hub layer `docker/hub/profiles.json` (committed by `nbenv hub generate`) serves for `name`, when
    the hub offers it and the layer is built here; else None, with a line saying why when it is not built."""
    served = served_hub_layer(ws, name, say=say)
    if served is None:
        return None
    ref, tag = served
    image_id = engine.image_id(ref)
    if image_id is None:
        say(f"{name}: its hub layer {ref} is not built here: run `nbenv hub generate`, then push again to push it")
        return None
    return HubLayer(ref, image_id, tag)


def hub_layers(
    engine: EngineAPI, ws: Workspace, name: str, platforms: Sequence[str], *, say: Say
) -> tuple[tuple[str, HubLayer], ...] | None:
    """With `platforms`: the hub layer of each platform (`hub-KEY` natively, `hub-KEY-ARCH` for another,
    as `nbenv hub generate` tags them), or None: the hub does not serve `name`, or a platform's layer is
    not built here (one line naming the platforms and the command; an index missing one is never pushed)."""
    served = served_hub_layer(ws, name, say=say)
    if served is None:
        return None
    ref, tag = served
    found = [(canonical(p), platform_tag(ref, p, engine.platform)) for p in platforms]
    ids = {platform: engine.image_id(local) for platform, local in found}
    if missing := [f"{platform} ({local})" for platform, local in found if ids[platform] is None]:
        say(
            f"{name}: its hub layer is not built here for {', '.join(missing)}: run `nbenv hub generate`, "
            f"then push again to push {tag}"
        )
        return None
    return tuple((platform, HubLayer(local, ids[platform] or "", tag)) for platform, local in found)


def served_hub_layer(ws: Workspace, name: str, *, say: Say) -> tuple[str, str] | None:
    """(ref, tag) of the hub layer `docker/hub/profiles.json` names for `name` (`PREFIX/NAME:hub-KEY`, read
    confined and size-capped, checked against that grammar), or None: no hub, not offered, or unusable
    (then one line saying so)."""
    from nbenv.hub.render import OUT_DIR, PROFILES
    from nbenv.safepath import confine, read_regular

    rel = f"{ws.config.generated_dir}/{OUT_DIR}/{PROFILES}"
    if not (ws.root / rel).exists():
        return None
    try:
        text = read_regular(confine(ws.root, rel, what="hub profiles"), display=rel, limit=4 << 20)
        profiles = json.loads(text)["profiles"]
        images = [p["image"] for p in profiles if isinstance(p, dict) and p.get("name") == name]
    except (NbenvError, ValueError, KeyError, TypeError) as exc:
        say(
            f"{rel}: not read ({str(exc).splitlines()[0][:200]}): no hub layer pushed; `nbenv hub generate` rewrites it"
        )
        return None
    repository = image_repository(ws.config, name)
    if not images:
        return None  # the hub does not offer it
    ref = images[0]
    tag = ref.removeprefix(f"{repository}:") if isinstance(ref, str) else ""
    if not HUB_TAG_RE.fullmatch(tag):
        say(f"{rel}: {name}: {str(ref)[:200]!r} is not its hub layer ({repository}:hub-KEY): no hub layer pushed")
        return None
    return ref, tag


def _refusal(name: str, target: str, held: str | None) -> RegistryError:
    """A fixed tag that holds another image (or index): nothing is pushed."""
    return RegistryError(
        f"refusing to push {name}: {target} already holds another image ({held}); nothing was pushed",
        "tags are immutable: rebuild from a new commit (or delete that tag in the registry on purpose)",
    )


def _refuse_conflicts(name: str, repository: str, decisions: Sequence[TagDecision]) -> None:
    """The first tag that holds another image (or index) refuses the whole push, before anything is pushed."""
    if conflicts := [d for d in decisions if d.action == "conflict"]:
        raise _refusal(name, f"{repository}:{conflicts[0].tag}", conflicts[0].remote_image)


def _targets_to_push(repository: str, decisions: Sequence[TagDecision], say: Say) -> Iterator[str]:
    """`REPOSITORY:TAG` of each tag to push, in order; for each other one, in its place, a line saying why
    it is left alone (the registry holds this image there already, or a newer release)."""
    for decision in decisions:
        target = f"{repository}:{decision.tag}"
        if decision.action == "push":
            yield target
        else:
            say(f"{target}: {'already there' if decision.action == 'present' else 'left on a newer release'}")


def _verify(remote: Registry, target: str, image_id: str, pushed_digest: str) -> None:
    """After a push, the registry must serve exactly the local image under the tag."""
    held = remote.lookup(target)
    found, digest = (held.image, held.manifest) if held else (None, None)
    if found != image_id or digest != pushed_digest:
        raise RegistryError(
            f"{target}: the registry serves {digest} (image {found}), not the pushed {pushed_digest} ({image_id})",
            "someone pushed to the same tag meanwhile; check the registry",
        )


# --- multi-platform push: one image per platform, then an image index over them ----------------------------


def push_index(
    builder: ImageBuilder, engine: EngineAPI, ws: Workspace, name: str, *, registry: str, say: Say
) -> PushResult:
    """Build one image per platform, push each under `TAG-ARCH` (its digest verified against the local
    image), then publish an image index over them BY DIGEST under the tag rules (`sha-...`, releases) with
    the docker CLI's `docker manifest` (its credentials, any registry), verified platform by platform.
    The registry is asked before the (emulated, slow) builds, and every tag is checked after them, before
    anything is pushed: a fixed tag holding another index is refused."""
    repository = f"{registry}/{image_repository(ws.config, name)}"
    tags = push_tags(builder.git)
    with private_cli_config() as env:
        remote = Registry(registry, docker=engine.docker, env=env)
        remote.lookup(f"{repository}:{tags[0]}")  # a registry that does not answer or refuses: before the builds
        layers = hub_layers(engine, ws, name, builder.platforms(name), say=say)  # before the builds too
        built = builder.build_platforms(name, options=BuildOptions(fresh_provenance=True))
        held = {tag: remote.lookup(f"{repository}:{tag}") for tag in tags}  # after the builds: what is there now
        identity = index_identity([(canonical(platform), image.image_id) for platform, image in built])
        decisions = plan_push(identity, {tag: found.image if found else None for tag, found in held.items()})
        per_platform = {platform: f"{repository}:{tags[0]}-{arch(platform)}" for platform, _ in built}
        for platform, image in built:
            there = remote.lookup(per_platform[platform])
            if there is not None and there.image != image.image_id:
                raise _refusal(name, per_platform[platform], there.image)
        _refuse_conflicts(name, repository, decisions)
        hub = _plan_hub_index(remote, repository, layers) if layers else None
        children = [
            (platform, _push_platform(remote, engine, image, per_platform[platform], say)) for platform, image in built
        ]
        digest: str | None = None
        for target in _targets_to_push(repository, decisions, say):
            say(f"{target}: publishing the index of {', '.join(p for p, _ in built)}")
            published = remote.publish_index(target, children)
            remote.verify_index(target, published, dict(children))
            digest = digest or published
        if digest is None and tags:
            digest = _index_digest(remote, f"{repository}:{tags[0]}")  # nothing new: the index already there
        hub_children, hub_digest = _push_hub_index(remote, engine, repository, layers or (), hub, say)
    return PushResult(
        repository,
        identity,
        tuple(decisions),
        digest,
        hub,
        platforms=tuple(children),
        hub_platforms=hub_children,
        hub_digest=hub_digest,
    )


def hub_child_tag(tag: str, platform: str) -> str:
    """Where one platform's hub layer goes beside the index `tag` (hub-KEY): hub-KEY-ARCH."""
    return f"{tag}-{arch(platform)}"


def _plan_hub_index(remote: Registry, repository: str, layers: Sequence[tuple[str, HubLayer]]) -> TagDecision:
    """What to do with the hub index (hub-KEY): "present" when the same index is there, "keep" when another
    build's index of the same inputs is (see `hub_decision`), else "push"."""
    tag = layers[0][1].tag
    identity = index_identity([(platform, layer.image_id) for platform, layer in layers])
    held = remote.lookup(f"{repository}:{tag}")
    return hub_decision(tag, identity, held.image if held else None)


def _push_hub_index(
    remote: Registry,
    engine: EngineAPI,
    repository: str,
    layers: Sequence[tuple[str, HubLayer]],
    decision: TagDecision | None,
    say: Say,
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """Push each platform's hub layer under hub-KEY-ARCH (digest verified), then publish and verify the
    index over them under hub-KEY; ((platform, manifest digest) each, the index digest). Already there:
    the index's own entries and digest, nothing written."""
    if decision is None or not layers:
        return (), None
    target = f"{repository}:{decision.tag}"
    if decision.action != "push":
        said = _hub_left_alone(decision, what="hub layer's index")
        say(f"{target}: {said}")
        held = remote.lookup(target)
        entries = tuple((entry.platform, entry.digest) for entry in held.entries) if held else ()
        return entries, _index_digest(remote, target)
    children = tuple(
        (platform, _hub_child(remote, engine, layer, f"{repository}:{hub_child_tag(layer.tag, platform)}", say))
        for platform, layer in layers
    )
    say(f"{target}: publishing the hub layer's index of {', '.join(p for p, _ in layers)} (what `nbenv hub` serves)")
    published = remote.publish_index(target, children)
    remote.verify_index(target, published, dict(children))
    return children, published


def _hub_child(remote: Registry, engine: EngineAPI, layer: HubLayer, target: str, say: Say) -> str:
    """One platform's hub layer under `target` (hub-KEY-ARCH): pushed unless an image is there already; an
    image another build of the same inputs put there (a push cut short before its index) is used as it is."""
    held = remote.lookup(target)
    if held is not None and not held.is_index and held.manifest is not None and held.image != layer.image_id:
        say(f"{target}: holds another build of the hub layer's inputs ({held.image}): the index uses it")
        return held.manifest
    return _push_child(remote, engine, layer.ref, layer.image_id, target, say)


def _index_digest(remote: Registry, ref: str) -> str | None:
    """The digest of the index the registry holds under `ref` (as `docker manifest create` made it)."""
    text = remote.inspect_index(ref)
    return printed_index_digest(text) if text is not None else None


def _push_platform(remote: Registry, engine: EngineAPI, image: BuiltImage, target: str, say: Say) -> str:
    """Push one platform's image under `target` (unless it is there already); its verified manifest digest."""
    return _push_child(remote, engine, image.ref, image.image_id, target, say)


def _push_child(remote: Registry, engine: EngineAPI, ref: str, image_id: str, target: str, say: Say) -> str:
    """Push the local image `ref` (`image_id`) under `target` (unless it is there already); its verified
    manifest digest."""
    held = remote.lookup(target)
    if held is None:
        engine.tag(ref, target)
        say(f"{target}: pushing")
        pushed = remote.push(target)
        held = remote.lookup(target)
        if held is None or held.manifest != pushed:
            raise RegistryError(f"{target}: the registry does not serve the pushed {pushed}", "push again")
    if held.is_index or held.image != image_id or held.manifest is None:
        raise RegistryError(
            f"{target}: the registry serves {held.manifest or 'an index'} (image {held.image}), not {image_id}",
            "someone pushed to the same tag meanwhile; check the registry",
        )
    return held.manifest
