"""Building environment images: parents first, skipped when the content key already exists."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from nbenv.adapters.engine import BuildRequest, EngineAPI
from nbenv.adapters.git import git_state
from nbenv.base_image import PYTHON_LABEL
from nbenv.certs import ExtraCA, host_ca_bundle, repo_ca_bundle
from nbenv.errors import BuildError
from nbenv.fs import atomic_write
from nbenv.generate import generate
from nbenv.image_plan import BuildMetadata, ImageTarget, build_inputs, build_metadata, image_target
from nbenv.plan import BuildPlan
from nbenv.platforms import canonical, platform_cache, platform_tag, require_emulation
from nbenv.provenance import GitState, ImageProvenance
from nbenv.pyversion import choose_suite, python_problem
from nbenv.render.dockerfile import CA_SECRET, INDEX_SECRET
from nbenv.spec.load import Loader, base_recipe
from nbenv.ui import Say
from nbenv.workspace import Workspace

if TYPE_CHECKING:
    from nbenv.project import Project


@dataclass(frozen=True)
class BuiltImage:
    name: str
    ref: str  # repository:ck-<key>, unique to the content
    image_id: str
    key: str
    built: bool  # False: an image with this content key already existed
    seconds: float
    labels: dict[str, str] = field(default_factory=dict)
    platform: str | None = None  # built for another platform than the engine's (under emulation)

    @property
    def provenance(self) -> ImageProvenance:
        return ImageProvenance.from_labels(self.labels)


def extra_ca_bundle(ws: Workspace) -> ExtraCA | None:
    """The extra CA for builds (certificates only): the repo setting (a file inside the repository),
    else NBENV_CA_BUNDLE, else the host pip's PIP_CERT (the user's own environment: any host file)."""
    if ws.config.ca_bundle:
        return repo_ca_bundle(ws.root, ws.config.ca_bundle)
    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT"):
        if value := os.environ.get(variable):
            return host_ca_bundle(variable, value)
    return None


def index_url(ws: Workspace) -> str | None:
    return os.environ.get("NBENV_INDEX_URL") or ws.config.index_url


@dataclass(frozen=True)
class BuildOptions:
    no_cache: bool = False
    fresh_provenance: bool = False  # rebuild an up-to-date image whose labels do not match HEAD (for pushes)
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()


class ImageBuilder:
    """Builds a project's images on its engine (`Project.builder`); each image once per builder."""

    def __init__(self, project: Project, *, say: Say, live: bool) -> None:
        self.project, self.ws = project, project.ws
        self.say, self.live = say, live
        self._done: dict[tuple[str, tuple[str, ...] | None, str | None], BuiltImage] = {}
        self._announced_builder = False

    @property
    def loader(self) -> Loader:
        return self.project.loader

    @property
    def engine(self) -> EngineAPI:
        return self.project.engine

    @cached_property
    def git(self) -> GitState:
        state = git_state(self.ws.root)
        if state.problem:
            self.say(f"git: {state.problem}: images are labelled with an unknown commit")
        elif state.dirty:
            self.say(
                f"git: uncommitted changes ({state.changes()}): images built now are labelled dirty ({state.short})"
            )
        return state

    def build(
        self,
        name: str,
        *,
        groups: Sequence[str] | None = None,
        options: BuildOptions = BuildOptions(),
        platform: str | None = None,
    ) -> BuiltImage:
        """Build `name`'s image (parents first) for `platform`; None or the engine's own: the native image."""
        foreign = self.foreign(platform)
        key = (name, tuple(groups) if groups is not None else None, foreign)
        if key not in self._done:
            self._done[key] = self._build(name, groups, options, foreign)
        return self._done[key]

    def build_platforms(self, name: str, *, options: BuildOptions = BuildOptions()) -> list[tuple[str, BuiltImage]]:
        """One image per platform of `name` (its `platforms`, else the engine's own), one after the other,
        each with the same provenance; (platform, image) in the spec's order. This is where a wheel
        pre-flight of `self.platforms(name)` belongs, before the first (emulated) build starts."""
        return [(platform, self.build(name, options=options, platform=platform)) for platform in self.platforms(name)]

    def platforms(self, name: str) -> tuple[str, ...]:
        """The platforms `name` is built for: its `platforms` (spec, parent, [tool.nbenv]), else the engine's."""
        return self.project.loader.environment(name).platforms or (self.engine.platform,)

    def foreign(self, platform: str | None) -> str | None:
        """`platform` when it is not the engine's own (a build under emulation, checked possible), else None."""
        if (other := self._other_platform(platform)) is not None:
            require_emulation(other, self.engine.platform)
        return other

    def _other_platform(self, platform: str | None) -> str | None:
        """`platform`, canonical, when it is not the engine's own; else None."""
        return None if platform is None or canonical(platform) == self.engine.platform else canonical(platform)

    def platform_ref(self, ref: str, foreign: str | None) -> str:
        """The tag of `ref` for a foreign platform (`ref-ARCH`); `ref` itself for the native one."""
        return platform_tag(ref, foreign, self.engine.platform) if foreign else ref

    def _build(self, name: str, groups: Sequence[str] | None, options: BuildOptions, foreign: str | None) -> BuiltImage:
        started = time.monotonic()
        plan = self.project.plan(name, groups)
        parent_labels: dict[str, str] | None = None
        base_ref = self.platform_ref(plan.env.base_image, foreign)
        if plan.env.extends:
            parent = self.build(plan.env.extends, options=options, platform=foreign)
            from_ref, from_id, parent_labels = parent.ref, parent.image_id, parent.labels
        else:
            from_ref = base_ref
            from_id = self._ensure_base(plan.env.base_image, env_file=plan.env.file, platform=foreign)
            self._check_base_python(name, plan.env.base_image, from_id)  # before anything is written or built
        files = self._regenerate(plan)
        target = self._target(plan, from_id, files, foreign)
        ref, key = target.ref, target.key
        existing = self.engine.inspect(ref)
        if existing and not options.no_cache and self._keep(existing.labels, options):
            for tag in target.tags[1:]:
                self.engine.tag(ref, tag)
            self.say(f"{name}: up to date ({ref})")
            return BuiltImage(name, ref, existing.id, key, False, time.monotonic() - started, existing.labels, foreign)
        if not self._announced_builder:
            self.say(f"builder: {self.engine.builder.describe()}")
            self._announced_builder = True
        where = f"; {foreign}, emulated" if foreign else ""
        self.say(f"{name}: building {ref} (groups {', '.join(plan.groups)}; FROM {from_ref}{where})")
        meta = build_metadata(
            plan,
            target,
            from_ref=from_ref,
            from_image_id=from_id,
            parent_labels=parent_labels,
            lock_hash=self.project.lock.content_hash,
            git=self.git,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            base_image=base_ref,
        )
        if plan.env.extends:  # a child's tools stage is FROM the chain's base image, like its root's
            self._ensure_base(plan.env.base_image, env_file=plan.env.file, platform=foreign)
        self._check_from(from_ref, from_id)
        image_id = self._engine_build(plan, files, target, meta, options, foreign)
        seconds = time.monotonic() - started
        self.say(f"{name}: built {ref} in {seconds:.1f} s")
        built_labels = info.labels if (info := self.engine.inspect(image_id)) else meta.labels
        if existing and existing.id != image_id:
            self.engine.remove_if_untagged(existing.id)  # the image this rebuild replaced (same content key)
        return BuiltImage(name, ref, image_id, key, True, seconds, built_labels, foreign)

    def _engine_build(
        self,
        plan: BuildPlan,
        files: dict[Path, str],
        target: ImageTarget,
        meta: BuildMetadata,
        options: BuildOptions,
        foreign: str | None = None,
    ) -> str:
        """Build `target` on the engine from a fresh context, the index URL and extra CA as build secrets;
        the new image's id."""
        with tempfile.TemporaryDirectory(prefix="nbenv-context-") as tmp:
            context = self._context(plan, files, Path(tmp))
            return self._build_context(context, target.tags, meta.build_args, meta.labels, options, foreign)

    def _build_context(
        self,
        context: Path,
        tags: tuple[str, ...],
        build_args: dict[str, str],
        labels: dict[str, str],
        options: BuildOptions,
        platform: str | None = None,
    ) -> str:
        ca = extra_ca_bundle(self.ws)
        with tempfile.TemporaryDirectory(prefix="nbenv-secret-") as secret_dir:
            secrets: dict[str, Path] = {}
            url = index_url(self.ws)
            if url:  # a secret, not an ARG: BuildKit records ARG values in the build stages' image history
                secrets[INDEX_SECRET] = Path(secret_dir) / "index-url"
                atomic_write(secrets[INDEX_SECRET], url, mode=0o600)
            if ca:
                secrets[CA_SECRET] = Path(secret_dir) / "extra-ca.pem"
                atomic_write(secrets[CA_SECRET], ca.pem, mode=0o600)
                self.say(
                    f"extra CA: {ca.count} certificate(s) from {ca.path} ({ca.source}), "
                    "a build secret: never in a layer or the build cache"
                )
            request = BuildRequest(
                context,
                tags,
                build_args,
                labels,
                no_cache=options.no_cache,
                # a foreign platform's build reads and writes its own cache (scope/ref -ARCH), not the native one's
                cache_from=tuple(platform_cache(c, platform) if platform else c for c in options.cache_from),
                cache_to=tuple(platform_cache(c, platform) if platform else c for c in options.cache_to),
                secrets=secrets,
                masked=(url,) if url else (),
                platform=platform,
            )
            return self.engine.build(
                request, on_line=lambda line: self.say(f"  {line}") if line.strip() else None, live=self.live
            )

    def build_files(
        self,
        files: Mapping[str, str],
        *,
        tags: Sequence[str],
        labels: Mapping[str, str],
        build_args: Mapping[str, str] | None = None,
        platform: str | None = None,
    ) -> str:
        """Build an image nbenv renders outside the environments (the hub image, a hub layer) from `files`
        (relative path -> text: the whole context), with the same build secrets, for `platform` (None: the
        engine's own; another one under emulation, checked first); the new image's id."""
        foreign = self.foreign(platform)
        with tempfile.TemporaryDirectory(prefix="nbenv-context-") as tmp:
            for rel, text in files.items():
                target = Path(tmp) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            return self._build_context(
                Path(tmp), tuple(tags), dict(build_args or {}), dict(labels), BuildOptions(), foreign
            )

    def ensure_base(self, ref: str, *, what: str) -> str:
        """The id of base image `ref`, made from Debian packages first if nbenv makes it and it is missing."""
        return self._ensure_base(ref, env_file=what)

    def current(self, name: str) -> tuple[str, str] | None:
        """(ref, image id) of `name`'s image if it is up to date, else None; builds and writes nothing."""
        image_id, ref = self._current(name, None)
        return (ref, image_id) if image_id else None

    def status(self, name: str, platform: str | None = None) -> tuple[str, str | None]:
        """("up to date" or "stale: why", the image id if up to date) of `name`'s image for `platform`
        (None: the engine's), without building or writing anything."""
        image_id, why = self._current(name, self._other_platform(platform))
        return ("up to date", image_id) if image_id else (f"stale: {why}", None)

    def _current(self, name: str, foreign: str | None) -> tuple[str | None, str]:
        """(the image id of `name` if it is up to date, else None; its ref, or why it is stale)."""
        plan = self.project.plan(name)
        if plan.env.extends:
            from_id, why = self._current(plan.env.extends, foreign)
            if from_id is None:
                return None, f"its parent {plan.env.extends} is ({why})"
        else:
            base = self.platform_ref(plan.env.base_image, foreign)
            from_id = self.engine.image_id(base)
            if from_id is None:
                return None, f"base image {base} is missing"
        files = generate(self.ws, [plan], check=True).rendered
        ref = self._target(plan, from_id, files, foreign).ref
        image_id = self.engine.image_id(ref)
        return (image_id, ref) if image_id else (None, f"no image {ref} yet")

    def _target(self, plan: BuildPlan, from_id: str, files: dict[Path, str], foreign: str | None = None) -> ImageTarget:
        target = image_target(plan, from_image_id=from_id, inputs=build_inputs(self.ws.root / plan.out_dir, files))
        if foreign is None:
            return target
        tags = tuple(self.platform_ref(tag, foreign) for tag in target.tags)
        return ImageTarget(target.key, tags[0], tags)

    def _keep(self, labels: dict[str, str], options: BuildOptions) -> bool:
        """Reuse an image with the same content key, unless a push needs labels that match HEAD."""
        if not options.fresh_provenance or ImageProvenance.from_labels(labels).matches(self.git):
            return True
        built_from = ImageProvenance.from_labels(labels).commit_text()
        self.say(f"relabelling: the image was built from {built_from}; rebuilding at {self.git.short} (cached)")
        return False

    def _check_from(self, ref: str, expected_id: str) -> None:
        """Build FROM exactly the image the content key was computed from (a tag may move meanwhile)."""
        if self.engine.image_id(ref) != expected_id:
            raise BuildError(f"{ref} changed while building (expected {expected_id[:19]})", "run the build again")

    def _regenerate(self, plan: BuildPlan) -> dict[Path, str]:
        """Bring the generated files up to date with the spec (so what is built is what is committed)."""
        result = generate(self.ws, [plan], check=False)
        for path in result.changed + result.stale:
            self.say(f"regenerated {path} (the spec or poetry.lock changed)")
        return result.rendered

    def _context(self, plan: BuildPlan, files: dict[Path, str], tmp: Path) -> Path:
        """The build context: the generated build inputs only (the extra CA is a build secret, not in it)."""
        for rel, text in build_inputs(self.ws.root / plan.out_dir, files).items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return tmp

    def _check_base_python(self, name: str, ref: str, image_id: str) -> None:
        """Before building FROM a base whose Python is not known from its recipe (any image nbenv did not
        make, or a Debian suite nbenv has no table entry for), check it against the project's constraint:
        the image's `nbenv.base.python` label, else what its python3 answers."""
        recipe = base_recipe(self.ws, ref)
        if recipe is not None and recipe.python is not None:
            return  # checked where the environment was loaded
        info = self.engine.inspect(image_id)
        label = (info.labels if info else {}).get(PYTHON_LABEL, "")
        python: str | None = label if label and python_problem(label) is None else None
        if python is None:
            python, why = self.engine.python_version(image_id)
            if python is None:
                raise self.loader.base_error(
                    name,
                    f"{ref} has no python3 that runs ({why}), and nbenv installs the environment with it",
                    "name a base image with Python 3 as python3 on its PATH, or remove the field "
                    "(nbenv then makes one from Debian packages)",
                )
        refusing = self.loader.python.refusing(python)
        if refusing is not None:
            raise self.loader.base_error(
                name,
                f"{ref} has Python {python}, but {refusing.shown()} ({refusing.where.rsplit(': ', 1)[0]}) excludes it",
                self.loader.base_hint(name),
            )
        self.say(f"base image {ref}: Python {python}, as the project needs")

    def _ensure_base(self, base: str, *, env_file: str, platform: str | None = None) -> str:
        """The id of base image `base` for `platform` (None: the engine's), made first if nbenv makes it."""
        ref = self.platform_ref(base, platform)
        if image_id := self.engine.image_id(ref):
            return image_id
        if (recipe := base_recipe(self.ws, base)) is not None:
            option = f" --platform {platform}" if platform else ""
            self.say(
                f"base image {ref} not found: building it from Debian {recipe.suite} packages "
                f"(`nbenv image base --tag {base}{option}`)"
            )
            from nbenv.base_image import base_image_plan, build_base_image

            return build_base_image(
                base_image_plan(
                    tag=ref, suite=recipe.suite, extra_packages=recipe.packages, cuda=recipe.cuda, platform=platform
                ),
                engine=self.engine,
                log=lambda line: self.say(f"  {line}"),
            )
        if platform:  # a pull would fetch the engine's own platform under the suffixed tag: never that
            raise BuildError(
                f"{env_file}: base_image: {ref} (the {platform} image of {base}) is not available locally",
                f"tag a {platform} image of {base} as {ref} (`docker pull --platform {platform} {base}` "
                f"then `docker tag`), or use a base nbenv makes",
            )
        self.say(f"base image {ref} not found locally: pulling it")
        if self.engine.pull(ref) and (image_id := self.engine.image_id(ref)):
            return image_id
        raise BuildError(
            f"{env_file}: base_image: {ref} is not available locally and cannot be pulled",
            self._make_base_hint(ref),
        )

    def _make_base_hint(self, ref: str) -> str:
        suite = choose_suite(self.loader.python)
        if suite is None:
            return f"make one from Debian packages: `nbenv image base --tag {ref}` (or `docker load` it)"
        return (
            f"make one from Debian packages: `nbenv image base --tag {ref} --suite {suite}` (or `docker load` it); "
            f'[tool.nbenv.base_images."{ref}"] suite = "{suite}" has nbenv make it when missing'
        )
