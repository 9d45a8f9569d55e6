"""One project: the workspace with what every command loads from it, each loaded once and on first use.

The specs (a Loader), poetry.lock, the build plans (`plan_for`: the plan with every check that needs
both the specs and the lock) and the Docker engine. The engine comes from an
injected factory (the real one by default), so the builder and the launcher run against a fake
engine in unit tests.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from nbenv.errors import SpecError, UsageError
from nbenv.lock import Lock, name_problem, read_lock
from nbenv.plan import BuildPlan, build_plan, import_paths, jupyter_problem, missing_parent_groups
from nbenv.safepath import owned_dir
from nbenv.spec.load import Loader, poetry_groups, project_source_dirs
from nbenv.workspace import STATE_DIR, Workspace, overlaps

if TYPE_CHECKING:
    from nbenv.adapters.engine import EngineAPI
    from nbenv.build import ImageBuilder
    from nbenv.ui import Say


def real_engine() -> EngineAPI:
    """The Docker engine from the environment (DOCKER_HOST, ...), checked to answer."""
    from nbenv.adapters.engine import Engine

    return Engine.from_env()


def load_lock(ws: Workspace) -> Lock:
    # The parse cache lives in .nbenv/cache: owned by nbenv, so a symlinked .nbenv is refused, not followed.
    owned_dir(ws.root, posixpath.join(STATE_DIR, "cache"), what="parse cache", create=False)
    return read_lock(ws.root / "poetry.lock", ws.pyproject.data, cache_root=ws.root)


def plan_for(ws: Workspace, loader: Loader, lock: Lock, name: str, groups: Sequence[str] | None = None) -> BuildPlan:
    """The build plan of `name`, with every cross-check that needs both spec and lock."""
    env = loader.environment(name)
    doc = loader.file(name).doc
    generated = ws.config.generated_dir
    for index, mount in enumerate(env.mounts):
        if mount.source != "." and overlaps(mount.source, generated):
            raise doc.error(
                ("mounts", index, "source"),
                f"{mount.source!r} overlaps generated_dir {generated!r}, where nbenv writes and removes files",
                f"mount another directory, or move generated_dir in {ws.config_display}",
            )
    for index, data in enumerate(env.data):
        if overlaps(data.path, generated):
            raise doc.error(
                ("data", index, "path"),
                f"{data.path!r} overlaps generated_dir {generated!r}, where nbenv writes and removes files",
                f"keep data out of it, or move generated_dir in {ws.config_display}",
            )
    parent = loader.environment(env.extends) if env.extends else None
    if groups is not None:
        known = set(env.groups) | set(poetry_groups(ws))
        for group in groups:
            if problem := name_problem(group, "group name"):
                raise UsageError(f"--groups: {problem}")
            if group not in known:
                raise SpecError(
                    f"--groups: unknown Poetry group {group!r}",
                    f"pyproject.toml defines: {', '.join(poetry_groups(ws))}",
                )
        if parent and (missing := missing_parent_groups(env, groups)):
            raise SpecError(
                f"--groups: must include {', '.join(missing)}: {name} builds FROM {parent.name}'s image, which has them"
            )
    plan = build_plan(
        env,
        lock=lock,
        config=ws.config,
        python_path=import_paths(env, project_source_dirs(ws)) or [],
        parent=parent,
        groups=groups,
    )
    if problem := jupyter_problem(env, lock, plan.groups):
        raise doc.error(
            ("groups",), problem, "add the missing package to one of these groups in pyproject.toml, then `poetry lock`"
        )
    return plan


class Project:
    def __init__(self, ws: Workspace, *, engine_factory: Callable[[], EngineAPI] = real_engine) -> None:
        self.ws = ws
        self._engine_factory = engine_factory
        self._plans: dict[tuple[str, tuple[str, ...] | None], BuildPlan] = {}

    @classmethod
    def discover(cls, repo: Path | None, *, engine_factory: Callable[[], EngineAPI] = real_engine) -> Project:
        return cls(Workspace.discover(repo), engine_factory=engine_factory)

    @cached_property
    def loader(self) -> Loader:
        return Loader(self.ws)

    @cached_property
    def lock(self) -> Lock:
        return load_lock(self.ws)

    @cached_property
    def engine(self) -> EngineAPI:
        """Made on first use: commands that need no engine never ask for one."""
        return self._engine_factory()

    def plan(self, name: str, groups: Sequence[str] | None = None) -> BuildPlan:
        """The build plan of `name` (with `groups`: a local variant), with every spec/lock cross-check."""
        key = (name, tuple(groups) if groups is not None else None)
        if key not in self._plans:
            self._plans[key] = plan_for(self.ws, self.loader, self.lock, name, groups)
        return self._plans[key]

    def builder(self, *, say: Say, live: bool) -> ImageBuilder:
        """An image builder; poetry.lock is read, then the engine asked, before it is returned."""
        from nbenv.build import ImageBuilder

        self.lock  # noqa: B018
        self.engine  # noqa: B018
        return ImageBuilder(self, say=say, live=live)
