"""Issue 17: docker/hub/ pins each environment's hub layer by `PREFIX/NAME:hub-KEY`. KEY used to hash the
environment image's ID, which is local to each machine (its base image is made here) and changes with every
relabel, so two machines wrote different committed files from one commit and `nbenv hub generate --check`
failed elsewhere. KEY now hashes committed inputs only; the layer records the image it was built FROM."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from nbenv.hub.generate import FROM_LABEL, layer_key, layer_ref, stale_layer
from nbenv.hub.profiles import profile
from nbenv.hub.render import layer
from nbenv.project import Project
from nbenv.workspace import Workspace


def key_of(root: Path, name: str = "traffic-analysis", requirements: str | None = None) -> tuple[str, str]:
    project = Project(Workspace(root.resolve()))
    plan = project.plan(name)
    item = layer(profile(plan, image="ignored"), from_image=f"{plan.image}:latest", requirements=requirements)
    return layer_ref(plan, layer_key(project, plan, item)), item.dockerfile


@pytest.mark.fault
def test_the_hub_layer_tag_depends_on_committed_inputs_only(workspace: Path, tmp_path: Path) -> None:
    first, dockerfile = key_of(workspace)
    assert first.startswith("nbenv/traffic-analysis:hub-") and len(first.rsplit("-", 1)[1]) == 12
    assert "ck-" not in dockerfile and "ARG BASE_IMAGE=nbenv/traffic-analysis:latest" in dockerfile
    other = tmp_path / "elsewhere"  # another checkout of the same commit, another machine's images
    import shutil

    shutil.copytree(workspace, other, symlinks=True)
    assert key_of(other)[0] == first
    # What the layer is built from changes its tag: a parent's spec, the layer's own files.
    assert key_of(workspace, requirements="jupyterhub==6.1.1\n")[0] != first
    base = workspace / "environments" / "base.toml"
    base.write_text(base.read_text() + '\nsystem_packages = ["graphviz"]\n')
    assert key_of(workspace)[0] != first


class Engine:
    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = labels

    def inspect(self, ref: str) -> object:
        return None if self.labels is None else SimpleNamespace(labels=self.labels)


@pytest.mark.fault
@pytest.mark.parametrize(
    ("labels", "stale"),
    [(None, True), ({}, True), ({FROM_LABEL: "sha256:old"}, True), ({FROM_LABEL: "sha256:now"}, False)],
)
def test_a_layer_built_from_another_image_is_rebuilt(labels: dict[str, str] | None, stale: bool) -> None:
    """The same tag on a machine whose environment image changed (a new base, a relabel): rebuilt FROM it."""
    project = SimpleNamespace(engine=Engine(labels))
    assert stale_layer(project, "nbenv/x:hub-0123456789ab", "sha256:now") is stale  # type: ignore[arg-type]
