"""The image builder and the launcher against a fake engine, injected through `Project(engine_factory=...)`.

The fake implements `nbenv.adapters.engine.EngineAPI` in memory: images by tag and id, containers with
labels. It proves decisions (what is built, in which order, what is refused), not that Docker does
them: the real-engine e2e tests (tests/e2e/test_up.py, test_run.py) stay the proof of that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nbenv.adapters.compose import CONFIG_FILES_LABEL, PROJECT_LABEL
from nbenv.adapters.engine import Builder, BuildRequest, ContainerInfo, EngineAPI, ImageInfo
from nbenv.constants import NBENV_BASE_REPOSITORY
from nbenv.errors import RunError
from nbenv.plan import compose_project
from nbenv.project import Project
from nbenv.running import lifecycle as launch
from nbenv.ui import quiet
from nbenv.workspace import Workspace
from tests.conftest import run_cli

BASE = f"{NBENV_BASE_REPOSITORY}:bookworm"


class FakeEngine:
    """An engine in memory: a build stores an image under its tags; nothing runs."""

    docker = "/nonexistent/docker"  # compose would fail loudly if a test reached it

    def __init__(self) -> None:
        self.images: dict[str, ImageInfo] = {}  # by tag and by id
        self.built: list[tuple[str, ...]] = []  # the tags of each build, in order
        self.build_requests: list[BuildRequest] = []  # each build's request, in order
        self.running: list[ContainerInfo] = []
        self.removed: list[str] = []
        self.add_image(BASE, labels={})

    def add_image(self, *tags: str, labels: dict[str, str]) -> ImageInfo:
        digest = hashlib.sha256(repr((tags, len(self.images))).encode()).hexdigest()
        info = ImageInfo(id=f"sha256:{digest}", labels=labels, repo_digests=(), repo_tags=tags, size=1)
        for key in (*tags, info.id):
            self.images[key] = info
        return info

    @property
    def security_options(self) -> tuple[str, ...]:
        return ()

    @property
    def builder(self) -> Builder:
        return Builder("buildx", self.docker)

    @property
    def platform(self) -> str:
        return "linux/amd64"

    def check(self) -> str:
        return "fake"

    def image_id(self, ref: str) -> str | None:
        info = self.images.get(ref)
        return info.id if info else None

    def inspect(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def containers(self, labels: Sequence[str]) -> list[ContainerInfo]:
        wanted = dict(label.split("=", 1) for label in labels)
        return [c for c in self.running if all(c.labels.get(k) == v for k, v in wanted.items())]

    def container_state(self, container: str) -> str:
        return next((c.state for c in self.running if container in (c.id, c.name)), "")

    def remove_containers(self, containers: Sequence[str]) -> None:
        self.removed += containers

    def kill(self, container: str) -> None:
        self.removed.append(container)

    def remove_network(self, network: str) -> bool:
        return True

    def python_version(self, image: str) -> tuple[str | None, str]:
        return "3.11.2", ""

    def pull(self, ref: str) -> bool:
        return False

    def remove_if_untagged(self, image_id: str) -> None:
        pass

    def tag(self, source: str, target: str) -> None:
        self.images[target] = self.images[source]

    def import_tarball(self, tarball: Path, ref: str, *, changes: Sequence[str], message: str) -> str:
        raise AssertionError("no base image is made in these tests")

    def load_archive(self, archive: Path, ref: str) -> str:
        raise AssertionError("no base image is made in these tests")

    def build(self, request: BuildRequest, *, on_line: Callable[[str], None], live: bool) -> str:
        self.built.append(request.tags)
        self.build_requests.append(request)
        return self.add_image(*request.tags, labels=dict(request.labels)).id


def _project(root: Path, engine: FakeEngine) -> Project:
    return Project(Workspace(root.resolve()), engine_factory=lambda: engine)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    return FakeEngine()


def test_the_fake_engine_is_an_engine() -> None:
    engine: EngineAPI = FakeEngine()  # mypy checks the fake against the adapter's interface
    assert engine.check() == "fake"


def test_parents_are_built_first_and_each_image_once(workspace: Path, fake: FakeEngine) -> None:
    builder = _project(workspace, fake).builder(say=quiet, live=False)
    child = builder.build("traffic-analysis")
    parent = builder.build("base")  # already built for the child: not again
    assert [tags[0].split(":")[0] for tags in fake.built] == [parent.ref.split(":")[0], child.ref.split(":")[0]]
    assert child.built and parent.built
    assert fake.built[0] == (parent.ref, parent.ref.split(":")[0] + ":latest")


def test_a_fresh_image_is_not_rebuilt(workspace: Path, fake: FakeEngine) -> None:
    first = _project(workspace, fake).builder(say=quiet, live=False).build("traffic-analysis")
    assert len(fake.built) == 2
    said: list[str] = []
    again = _project(workspace, fake).builder(say=said.append, live=False).build("traffic-analysis")
    assert len(fake.built) == 2, "nothing is rebuilt when the content key's image exists"
    assert (again.ref, again.image_id, again.built) == (first.ref, first.image_id, False)
    assert f"traffic-analysis: up to date ({first.ref})" in said


def test_a_new_base_image_makes_the_images_stale(workspace: Path, fake: FakeEngine) -> None:
    first = _project(workspace, fake).builder(say=quiet, live=False).build("traffic-analysis")
    fake.add_image(BASE, labels={})  # the base tag moved to another image
    status = _project(workspace, fake).builder(say=quiet, live=False).status("traffic-analysis")
    assert status[0].startswith("stale: ") and status[1] is None
    again = _project(workspace, fake).builder(say=quiet, live=False).build("traffic-analysis")
    assert again.built and again.ref != first.ref and len(fake.built) == 4


def _foreign_container(ws: Path, name: str) -> ContainerInfo:
    project = compose_project(Workspace(ws.resolve()).config, name)
    return ContainerInfo(
        id="f" * 64,
        name=f"{project}-jupyter-1",
        state="running",
        health="healthy",
        image="someone-elses:latest",
        labels={PROJECT_LABEL: project, CONFIG_FILES_LABEL: f"/home/other/clone/docker/{name}/compose.yaml"},
    )


@pytest.mark.security
@pytest.mark.parametrize("command", ["up", "down", "logs", "shell"])
def test_a_container_from_another_checkout_is_left_alone(workspace: Path, fake: FakeEngine, command: str) -> None:
    """`nbenv up|down|logs|shell` refuse, before touching it, a container another checkout's compose file started
    under the same compose project (another user's clone on a shared engine)."""
    name = "base"
    assert run_cli("generate", cwd=workspace).code == 0
    fake.running.append(_foreign_container(workspace, name))
    project = _project(workspace, fake)
    options = launch.UpOptions(port=None, timeout=1, pull=False, allow_missing=True, live=False)
    actions: dict[str, Callable[[], object]] = {
        "up": lambda: launch.up(project, name, options, say=quiet),
        "down": lambda: launch.down(project, name=name, say=quiet),
        "logs": lambda: launch.logs(project, name=name, follow=False, tail=None),
        "shell": lambda: launch.shell(project, name=name, command=[]),
    }
    with pytest.raises(RunError, match="running from another checkout") as caught:
        actions[command]()
    assert "/home/other/clone/docker/base/compose.yaml" in caught.value.message
    assert fake.removed == []


def test_the_project_loads_each_thing_once_and_the_engine_only_when_asked(workspace: Path) -> None:
    made: list[FakeEngine] = []

    def factory() -> FakeEngine:
        made.append(FakeEngine())
        return made[-1]

    project = Project(Workspace(workspace.resolve()), engine_factory=factory)
    plan = project.plan("traffic-analysis")
    assert project.plan("traffic-analysis") is plan and project.plan("traffic-analysis", ["notebook"]) is not plan
    assert project.lock is project.lock and project.loader is project.loader
    assert made == [], "planning never asks the engine"
    builder = project.builder(say=quiet, live=False)
    assert len(made) == 1 and builder.engine is made[0] is project.engine
