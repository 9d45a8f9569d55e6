"""`nbenv image push` finds the environment's hub layer in docker/hub/profiles.json (committed, so read like
any file of an untrusted repository): only `PREFIX/NAME:hub-KEY` of that environment, from a regular file
inside the repository, is ever tagged and pushed; anything else is one line and no hub layer. The push
itself is proven against a real registry in tests/e2e/test_hub_push.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nbenv.images import HubLayer, hub_layer
from nbenv.workspace import Workspace

GOOD = "nbenv/base:hub-0123456789ab"


class Engine:
    def __init__(self, images: dict[str, str]) -> None:
        self.images = images

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)


def write_profiles(root: Path, profiles: object) -> Path:
    path = root / "docker" / "hub" / "profiles.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"profiles": profiles}))
    return path


def find(root: Path, engine: Engine) -> tuple[HubLayer | None, list[str]]:
    said: list[str] = []
    return hub_layer(engine, Workspace(root), "base", say=said.append), said  # type: ignore[arg-type]


def test_the_served_hub_layer_is_found(workspace: Path) -> None:
    write_profiles(
        workspace,
        [
            {"name": "traffic-analysis", "image": "nbenv/traffic-analysis:hub-aaaaaaaaaaaa"},
            {"name": "base", "image": GOOD},
        ],
    )
    layer, said = find(workspace, Engine({GOOD: "sha256:" + "1" * 64}))
    assert layer == HubLayer(GOOD, "sha256:" + "1" * 64, "hub-0123456789ab") and said == []


def test_no_hub_or_not_offered_is_no_layer_and_no_line(workspace: Path) -> None:
    assert find(workspace, Engine({})) == (None, [])
    write_profiles(workspace, [{"name": "traffic-analysis", "image": "nbenv/traffic-analysis:hub-aaaaaaaaaaaa"}])
    assert find(workspace, Engine({})) == (None, [])


def test_a_layer_not_built_here_is_one_line_naming_the_fix(workspace: Path) -> None:
    write_profiles(workspace, [{"name": "base", "image": GOOD}])
    layer, said = find(workspace, Engine({}))
    assert layer is None and len(said) == 1 and "run `nbenv hub generate`" in said[0], said


@pytest.mark.security
@pytest.mark.parametrize(
    "image",
    [
        "nbenv/traffic-analysis:hub-0123456789ab",  # another environment's repository
        "evil.example/nbenv/base:hub-0123456789ab",
        "nbenv/base:latest",
        "nbenv/base:hub-0123456789AB",
        "nbenv/base:hub-0123456789ab\n",
        "nbenv/base:hub-0123456789ab --all-tags",
        "nbenv/base@sha256:" + "a" * 64,
        "",
        None,
        42,
        ["nbenv/base:hub-0123456789ab"],
    ],
)
def test_a_profile_naming_anything_else_is_never_pushed(workspace: Path, image: object) -> None:
    write_profiles(workspace, [{"name": "base", "image": image}])
    layer, said = find(workspace, Engine({str(image): "sha256:" + "2" * 64}))
    assert layer is None and len(said) == 1 and "no hub layer pushed" in said[0], said


@pytest.mark.security
@pytest.mark.parametrize("kind", ["symlink-out", "fifo", "not-json", "no-profiles", "profiles-not-a-list"])
def test_a_hostile_profiles_file_is_one_line_and_nothing_hangs(workspace: Path, tmp_path: Path, kind: str) -> None:
    path = write_profiles(workspace, [{"name": "base", "image": GOOD}])
    if kind == "symlink-out":
        outside = tmp_path / "outside.json"
        outside.write_text(path.read_text())
        path.unlink()
        path.symlink_to(outside)
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "not-json":
        path.write_text("{")
    elif kind == "no-profiles":
        path.write_text("{}")
    else:
        path.write_text('{"profiles": 3}')
    layer, said = find(workspace, Engine({GOOD: "sha256:" + "3" * 64}))
    assert layer is None and len(said) == 1 and "no hub layer pushed" in said[0], said


@pytest.mark.fault
@pytest.mark.parametrize(
    ("held", "action"),
    [(None, "push"), ("sha256:" + "a" * 64, "present"), ("sha256:" + "e" * 64, "keep")],
)
def test_hub_key_is_pushed_once_and_another_build_of_its_inputs_stays(held: str | None, action: str) -> None:
    """hub-KEY names committed inputs: a layer rebuilt after its environment image was relabelled (or built on
    another machine) is another image under the same key. It is left as it is, never a refusal of the push
    (which no new commit could lift: the key stays) and never overwritten."""
    from nbenv.images import hub_decision

    decision = hub_decision("hub-0123456789ab", "sha256:" + "a" * 64, held)
    assert (decision.tag, decision.action, decision.remote_image) == ("hub-0123456789ab", action, held)
