"""Issue 17: `nbenv image push` pushes the environment's hub layer too (`PREFIX/NAME:hub-KEY`, what
docker/hub/profiles.json serves), to a real registry on 127.0.0.1, verified by digest like the image itself,
so a hub on other hosts (swarm nodes, a cluster) can pull exactly what `nbenv hub generate` built here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PREFIX, commit_all, docker, nbenv, session_images_kept
from tests.e2e.test_hub import hub_workspace
from tests.e2e.test_images import image_id, registry_config_digest, registry_tags

pytestmark = pytest.mark.e2e


@pytest.mark.fault
def test_push_sends_the_hub_layer_verified_and_a_repush_is_a_no_op(
    e2e_workspace: Path, base_image: str, registry: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root, _ = hub_workspace(e2e_workspace, tmp_path_factory, network=f"{PREFIX}-push", environments=("hub-lab",))
    generated = nbenv("hub", "generate", cwd=root)
    assert generated.returncode == 0, generated.stderr
    [served] = json.loads((root / "docker" / "hub" / "profiles.json").read_text())["profiles"]
    layer = served["image"]
    assert layer.startswith(f"{PREFIX}/hub-lab:hub-"), layer
    tag = layer.rsplit(":", 1)[1]
    head = commit_all(root, "docker/hub")
    repository = f"{PREFIX}/hub-lab"
    # The push rebuilds the chain at this copy's commit under the session's tags: they come back after.
    with session_images_kept(("base",)):  # hub-lab extends base
        _push_and_check(root, registry, repository, layer, tag, head)


def _push_and_check(root: Path, registry: str, repository: str, layer: str, tag: str, head: str) -> None:
    try:
        pushed = nbenv("image", "push", "hub-lab", "--registry", registry, cwd=root)
        assert pushed.returncode == 0, pushed.stderr
        assert f"{registry}/{repository}:{tag}\tpush" in pushed.stdout, pushed.stdout
        assert "pushing the hub layer" in pushed.stderr + pushed.stdout
        assert registry_tags(registry, repository) == sorted([f"sha-{head[:12]}", tag])
        assert registry_config_digest(registry, repository, tag) == image_id(layer), "exactly the local hub layer"
        assert "@sha256:" in pushed.stdout.strip().splitlines()[-1], "the image's digest stays the last line"
        again = nbenv("image", "push", "hub-lab", "--registry", registry, cwd=root)
        assert again.returncode == 0, again.stderr
        assert f"{registry}/{repository}:{tag}\tpresent" in again.stdout, again.stdout
        _another_build_stays(root, registry, repository, layer, tag)
    finally:
        for ref in (f"{registry}/{repository}:{tag}", f"{registry}/{repository}:sha-{head[:12]}"):
            docker("rmi", ref, check=False)


def _another_build_stays(root: Path, registry: str, repository: str, layer: str, tag: str) -> None:
    """The layer built again under the same hub-KEY (as `nbenv hub generate` does after its environment
    image was relabelled for a newer commit, or another machine does): another image of the same inputs.
    The push goes on and the registry keeps the build it has; before, the whole push was refused for good."""
    original = image_id(layer)
    rebuilt = subprocess.run(
        ["docker", "build", "-q", "-t", layer, "-"],
        input=f"FROM {layer}\nLABEL nbenv.test.rebuilt=1\n",
        capture_output=True,
        text=True,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    other = image_id(layer)
    try:
        assert other != original
        pushed = nbenv("image", "push", "hub-lab", "--registry", registry, cwd=root)
        assert pushed.returncode == 0, pushed.stderr
        assert f"{registry}/{repository}:{tag}\tkeep" in pushed.stdout, pushed.stdout
        assert "holds another build of the hub layer's inputs" in pushed.stderr + pushed.stdout
        assert registry_config_digest(registry, repository, tag) == original, "the build already there stays"
    finally:
        docker("tag", original, layer)  # the session's layer as `hub generate` built it
        docker("rmi", other, check=False)
