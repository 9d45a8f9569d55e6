"""One project: the workspace with what every command loads from it, each loaded once and on first use.

The specs (a Loader), poetry.lock, the build plans and the Docker engine. The engine comes from an
injected factory (the real one by default), so the builder and the launcher run against a fake
engine in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from nbenv.generate import load_lock, plan_for
from nbenv.lock import Lock
from nbenv.plan import BuildPlan
from nbenv.spec.load import Loader
from nbenv.workspace import Workspace

if TYPE_CHECKING:
    from nbenv.adapters.engine import EngineAPI
    from nbenv.build import ImageBuilder
    from nbenv.ui import Say


def real_engine() -> EngineAPI:
    """The Docker engine from the environment (DOCKER_HOST, ...), checked to answer."""
    from nbenv.adapters.engine import Engine

    return Engine.from_env()


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
