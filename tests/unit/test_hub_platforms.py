"""The hub layer on the multi-platform path (issue 18 with issue 17's hub): with `platforms`, `nbenv hub
generate` builds the hub layer of every platform (FROM that platform's environment image; another platform's
under emulation, tagged `hub-KEY-ARCH`), with the same stale check, and writes the same docker/hub/ on any
machine; `nbenv image push` pushes each platform's layer under `hub-KEY-ARCH` and publishes an image index
under `hub-KEY`; another build of the same inputs already there stays. Before, the layer was built for the engine's
platform only and silently not pushed at all.

Decisions are proven here against the in-memory engine (tests/unit/test_fake_engine.py) and an in-memory
registry; tests/e2e/test_platforms.py pushes the real index to a real registry and runs the arm64 layer."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from nbenv import build, images
from nbenv.adapters.registry import IndexEntry, RemoteTag, index_identity, printed_index_digest
from nbenv.errors import BuildError
from nbenv.hub.generate import FROM_LABEL, HubResult, LayerSource, hub_generate
from nbenv.images import PushResult, push
from nbenv.provenance import TagDecision
from nbenv.ui import quiet
from nbenv.workspace import Workspace
from tests.conftest import run_cli
from tests.unit.test_fake_engine import BASE, FakeEngine, _project

TWO = '["linux/amd64", "linux/arm64"]'
LAB = 'spec_version = 1\nname = "lab"\nextends = "base"\ngroups = ["nbenv-singleuser"]\n'
REGISTRY = "127.0.0.1:5000"
REPO = f"{REGISTRY}/nbenv/lab"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@nbenv.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@nbenv.invalid",
}


class ArmEngine(FakeEngine):
    """The in-memory engine of an arm64 machine (Apple silicon, an arm64 server)."""

    @property
    def platform(self) -> str:
        return "linux/arm64"


def hub_workspace(root: Path, platforms: str | None = TWO) -> Path:
    """The demo workspace offering `lab` (the demo's JupyterLab with the hub's jupyterhub) on a hub."""
    (root / "environments" / "lab.toml").write_text(LAB)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    line = f"\nplatforms = {platforms}" if platforms else ""
    text = text.replace('image_prefix = "nbenv"', f'image_prefix = "nbenv"{line}', 1)
    pyproject.write_text(text + '\n[tool.nbenv.hub]\nenvironments = ["lab"]\n')
    return root


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """QEMU available (checked, recorded); no host CA or index URL leaks into the fake builds."""
    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    checked: list[tuple[str, str]] = []
    monkeypatch.setattr(build, "require_emulation", lambda platform, native: checked.append((platform, native)))
    return checked


def engine_with_bases(engine: FakeEngine) -> FakeEngine:
    other = "arm64" if engine.platform == "linux/amd64" else "amd64"
    engine.add_image(f"{BASE}-{other}", labels={})
    return engine


def generate(
    root: Path, engine: FakeEngine, *, native_only: bool = False, preflight: list[object] | None = None
) -> tuple[HubResult, list[str]]:
    said: list[str] = []
    project = _project(root, engine)

    def before_builds(name: str, platforms: Sequence[str]) -> None:
        if preflight is not None:
            preflight.append((name, list(platforms), len(engine.build_requests)))

    result = hub_generate(
        project, check=False, say=said.append, live=False, native_only=native_only, preflight=before_builds
    )
    return result, said


def layer_builds(engine: FakeEngine) -> list[tuple[str | None, str, str, str]]:
    """(platform, tag, BASE_IMAGE, FROM label) of each hub layer build, in order."""
    return [
        (r.platform, r.tags[0], r.build_args["BASE_IMAGE"], r.labels[FROM_LABEL])
        for r in engine.build_requests
        if FROM_LABEL in r.labels
    ]


# --- nbenv hub generate ---------------------------------------------------------------------------------------


@pytest.mark.fault
def test_generate_builds_the_hub_layer_of_every_platform_from_that_platforms_image(
    workspace: Path, emulated: list[tuple[str, str]]
) -> None:
    root = hub_workspace(workspace)
    engine = engine_with_bases(FakeEngine())
    preflight: list[object] = []
    result, said = generate(root, engine, preflight=preflight)
    assert preflight == [("lab", ["linux/arm64"], 0)], "the wheel pre-flight's warnings come before any build"
    ref = result.layer_refs["lab"]
    native_image = engine.inspect("nbenv/lab:latest")
    arm_image = engine.inspect("nbenv/lab:latest-arm64")
    assert native_image is not None and arm_image is not None
    arm_ck = next(tag for tag in arm_image.repo_tags if ":ck-" in tag)
    native_ck = next(tag for tag in native_image.repo_tags if ":ck-" in tag)
    assert layer_builds(engine) == [
        (None, ref, native_ck, native_image.id),
        ("linux/arm64", f"{ref}-arm64", arm_ck, arm_image.id),
    ], "each platform's layer FROM that platform's image, the foreign one under --platform"
    assert arm_ck.endswith("-arm64") and ref.startswith("nbenv/lab:hub-")
    assert result.sources["lab"] == (
        LayerSource(None, ref, native_ck, native_image.id),
        LayerSource("linux/arm64", f"{ref}-arm64", arm_ck, arm_image.id),
    )
    assert ("linux/arm64", "linux/amd64") in emulated
    assert any("building its hub layer" in line and "linux/arm64, emulated" in line for line in said), said
    # the same stale check per platform: nothing is rebuilt, then only the platform whose image changed
    before = len(engine.build_requests)
    again, said = generate(root, engine)
    assert len(engine.build_requests) == before and again.layer_refs == result.layer_refs
    assert sum("hub layer up to date" in line for line in said) == 2, said
    engine.add_image(arm_ck, "nbenv/lab:latest-arm64", labels=dict(arm_image.labels))  # another arm64 image there
    generate(root, engine)
    rebuilt = layer_builds(engine)[2:]
    assert [(platform, tag) for platform, tag, _, _ in rebuilt] == [("linux/arm64", f"{ref}-arm64")], rebuilt


@pytest.mark.fault
def test_nbenv_hub_up_builds_only_what_the_local_hub_spawns(workspace: Path, emulated: list[tuple[str, str]]) -> None:
    root = hub_workspace(workspace)
    engine = engine_with_bases(FakeEngine())
    preflight: list[object] = []
    result, _ = generate(root, engine, native_only=True, preflight=preflight)
    assert all(r.platform is None for r in engine.build_requests) and emulated == [] and preflight == []
    assert [s.platform for s in result.sources["lab"]] == [None]
    assert "emulat" not in (root / "docker/hub/profiles.json").read_text()


def committed(root: Path, engine: FakeEngine) -> dict[str, str]:
    result, _ = generate(root, engine)
    return result.files


@pytest.mark.fault
@pytest.mark.parametrize("platforms", [TWO, '["linux/arm64", "linux/amd64"]', '["linux/arm64"]', '["linux/amd64"]'])
def test_docker_hub_is_the_same_on_every_machine_and_says_nothing_per_platform(
    workspace: Path, tmp_path: Path, emulated: list[tuple[str, str]], platforms: str
) -> None:
    """The committed files: the same from an amd64 and an arm64 machine, in any order of `platforms`, and
    the native-only environment's files but for the layer's key (hub-KEY is an index over the platforms
    then: never the same content-key tag as one image)."""
    import shutil

    other = tmp_path / "elsewhere"
    shutil.copytree(workspace, other)
    amd = committed(hub_workspace(workspace, platforms), engine_with_bases(FakeEngine()))
    arm = committed(hub_workspace(other, platforms), engine_with_bases(ArmEngine()))
    assert amd == arm, "machine-independent: committed inputs only"
    assert not any("arm64" in path or "amd64" in path or "arm64" in text for path, text in amd.items())
    native_root = tmp_path / "native"
    shutil.copytree(workspace, native_root)
    pyproject = native_root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f"\nplatforms = {platforms}", ""))
    native = committed(native_root, engine_with_bases(FakeEngine()))
    assert native.keys() == amd.keys()
    assert {p for p in amd if amd[p] != native[p]} == {"profiles.json"}
    key, native_key = (json.loads(files["profiles.json"])["profiles"][0]["image"] for files in (amd, native))
    assert key != native_key
    assert amd["profiles.json"] == native["profiles.json"].replace(native_key, key)


@pytest.mark.badinput
def test_no_emulation_for_a_platform_is_one_line_before_anything_is_built_or_written(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nbenv import platforms

    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    real = platforms.emulation_problem
    monkeypatch.setattr(platforms, "emulation_problem", lambda p, n: real(p, n, proc=tmp_path / "no-binfmt"))
    root = hub_workspace(workspace)
    engine = engine_with_bases(FakeEngine())
    with pytest.raises(BuildError) as raised:
        generate(root, engine)
    assert "needs QEMU emulation, and binfmt_misc is not mounted" in raised.value.message
    assert "\n" not in raised.value.message
    assert engine.build_requests == [] and not (root / "docker" / "hub").exists()


# --- nbenv image push ------------------------------------------------------------------------------------------


class MemoryRegistry:
    """A registry in memory, speaking nbenv.adapters.registry.Registry's interface: tags hold one image
    (its config digest and manifest digest) or an index (its platforms' manifests)."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.tags: dict[str, RemoteTag] = {}
        self.texts: dict[str, str] = {}  # an index's text, as `docker manifest inspect` prints it
        self.images: dict[str, str] = {}  # manifest digest -> config digest
        self.writes: list[str] = []

    def __call__(self, host: str, *, docker: str = "docker", env: Mapping[str, str] | None = None) -> MemoryRegistry:
        return self

    def lookup(self, ref: str) -> RemoteTag | None:
        return self.tags.get(ref)

    def inspect_index(self, ref: str) -> str | None:
        return self.texts.get(ref)

    def hold_image(self, ref: str, image: str) -> str:
        manifest = "sha256:" + hashlib.sha256(f"manifest of {image}".encode()).hexdigest()
        self.images[manifest] = image
        self.tags[ref] = RemoteTag(image, manifest)
        return manifest

    def hold_index(self, ref: str, children: Sequence[tuple[str, str]]) -> str:
        entries = tuple(IndexEntry(platform, digest, self.images[digest]) for platform, digest in children)
        self.tags[ref] = RemoteTag(index_identity([(e.platform, e.image) for e in entries]), None, entries)
        self.texts[ref] = json.dumps({"manifests": [[p, d] for p, d in children]}, indent=3) + "\n"
        return printed_index_digest(self.texts[ref])

    def push(self, ref: str) -> str:
        image = self.engine.image_id(ref)
        assert image is not None, ref
        self.writes.append(ref)
        return self.hold_image(ref, image)

    def publish_index(self, target: str, children: Sequence[tuple[str, str]]) -> str:
        self.writes.append(target)
        return self.hold_index(target, children)

    def verify_index(self, target: str, digest: str, expected: Mapping[str, str]) -> None:
        held = self.tags[target]
        assert {e.platform: e.digest for e in held.entries} == dict(expected)
        assert printed_index_digest(self.texts[target]) == digest


@contextmanager
def _no_cli_config() -> Iterator[dict[str, str]]:
    yield {}


class Pushed:
    def __init__(self, root: Path, engine: FakeEngine, registry: MemoryRegistry) -> None:
        self.root, self.engine, self.registry = root, engine, registry
        self.layers = generate(root, engine)[0].sources["lab"]
        self.tag = self.layers[0].ref.rsplit(":", 1)[1]
        git = {**GIT_ENV, "PATH": "/usr/bin:/bin"}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "hub"]):
            subprocess.run(["git", *args], cwd=root, env=git, check=True, capture_output=True)

    def push(self) -> tuple[PushResult, list[str]]:
        said: list[str] = []
        builder = _project(self.root, self.engine).builder(say=quiet, live=False)
        ws = Workspace(self.root.resolve())
        result = push(builder, self.engine, ws, "lab", registry=REGISTRY, allow_dirty=False, say=said.append)
        return result, said

    def layer_id(self, platform: str | None) -> str:
        found = self.engine.image_id(next(s.ref for s in self.layers if s.platform == platform))
        assert found is not None
        return found


@pytest.fixture
def pushed(workspace: Path, emulated: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> Pushed:
    engine = engine_with_bases(FakeEngine())
    registry = MemoryRegistry(engine)
    monkeypatch.setattr(images, "Registry", registry)
    monkeypatch.setattr(images, "private_cli_config", _no_cli_config)
    return Pushed(hub_workspace(workspace), engine, registry)


@pytest.mark.fault
def test_push_publishes_the_hub_layers_as_an_index_and_a_repush_writes_nothing(pushed: Pushed) -> None:
    result, said = pushed.push()
    tag, registry = pushed.tag, pushed.registry
    amd, arm = pushed.layer_id(None), pushed.layer_id("linux/arm64")
    assert result.hub == TagDecision(tag, "push", None)
    assert registry.tags[f"{REPO}:{tag}-amd64"].image == amd and registry.tags[f"{REPO}:{tag}-arm64"].image == arm
    index = registry.tags[f"{REPO}:{tag}"]
    assert index.is_index and index.image == index_identity([("linux/amd64", amd), ("linux/arm64", arm)])
    assert result.hub_platforms == (
        ("linux/amd64", registry.tags[f"{REPO}:{tag}-amd64"].manifest),
        ("linux/arm64", registry.tags[f"{REPO}:{tag}-arm64"].manifest),
    )
    assert result.hub_digest == printed_index_digest(registry.texts[f"{REPO}:{tag}"])
    assert registry.writes[-3:] == [f"{REPO}:{tag}-amd64", f"{REPO}:{tag}-arm64", f"{REPO}:{tag}"], "the index last"
    assert result.digest is not None and result.digest != result.hub_digest, "the environment's index as before"
    assert any("publishing the hub layer's index of linux/amd64, linux/arm64" in line for line in said), said
    writes = list(registry.writes)
    again, said = pushed.push()
    assert registry.writes == writes, "an identical index is already there: nothing is written"
    assert again.hub == TagDecision(tag, "present", index.image)
    assert again.hub_platforms == result.hub_platforms and again.hub_digest == result.hub_digest
    assert any("the hub layer's index is already there" in line for line in said), said


@pytest.mark.fault
@pytest.mark.parametrize("held", ["one image under hub-KEY", "another index under hub-KEY"])
def test_another_build_under_hub_key_stays_and_the_push_goes_on(pushed: Pushed, held: str) -> None:
    """hub-KEY names the committed inputs, not one build of them: another machine's layer (or this one's,
    rebuilt after its environment image was relabelled for a newer commit) is another image of the same
    inputs. It stays as it is and the environment's images are still pushed. Refusing (as before) refused
    every later push for good: a new commit does not change the key."""
    tag, registry = pushed.tag, pushed.registry
    other = "sha256:" + "e" * 64
    target = f"{REPO}:{tag}"
    if held == "another index under hub-KEY":
        registry.hold_index(target, [("linux/amd64", registry.hold_image(f"{REPO}:elsewhere", other))])
    else:
        registry.hold_image(target, other)
    before = registry.tags[target]
    result, said = pushed.push()
    assert result.hub is not None and result.hub.action == "keep"
    assert registry.tags[target] == before, "the build already there is left as it is"
    assert not any(":hub-" in ref for ref in registry.writes), registry.writes
    assert result.digest is not None, "the environment's own index is pushed"
    assert any("holds another build of the hub layer's index's inputs" in line for line in said), said


@pytest.mark.fault
@pytest.mark.parametrize("platform", ["linux/arm64", "linux/amd64"])
def test_a_platforms_layer_left_by_another_build_goes_into_the_index(pushed: Pushed, platform: str) -> None:
    """A push cut short after one platform's hub-KEY-ARCH and before the index (another build's): the index
    is published over that layer and this build's other one, never refused."""
    tag, registry = pushed.tag, pushed.registry
    arch_tag = f"{REPO}:{tag}-{platform.rsplit('/', 1)[1]}"
    left = registry.hold_image(arch_tag, "sha256:" + "e" * 64)
    result, said = pushed.push()
    assert result.hub is not None and result.hub.action == "push"
    assert dict(result.hub_platforms)[platform] == left, "the index uses the layer already there"
    assert arch_tag not in registry.writes
    index = registry.tags[f"{REPO}:{tag}"]
    assert index.is_index and {e.platform: e.digest for e in index.entries} == dict(result.hub_platforms)
    assert any(f"{arch_tag}: holds another build of the hub layer's inputs" in line for line in said), said


@pytest.mark.fault
def test_a_platform_whose_hub_layer_is_not_built_here_is_one_line_and_no_hub_index(pushed: Pushed) -> None:
    arm_ref = next(s.ref for s in pushed.layers if s.platform == "linux/arm64")
    del pushed.engine.images[arm_ref]
    result, said = pushed.push()
    lines = [line for line in said if "hub layer" in line]
    assert lines == [
        f"lab: its hub layer is not built here for linux/arm64 ({arm_ref}): run `nbenv hub generate`, "
        f"then push again to push {pushed.tag}"
    ]
    assert result.hub is None and result.hub_platforms == () and result.hub_digest is None
    assert not any(":hub-" in ref for ref in pushed.registry.writes), "never an index missing a platform"
    assert result.digest is not None, "the environment's own index is still pushed"


def test_image_push_prints_the_hub_layers_platforms_and_index_before_the_images_index(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbenv import api

    digest = {n: "sha256:" + n * 64 for n in "abcdef"}
    result = PushResult(
        REPO,
        "index:...",
        (TagDecision("sha-0123456789ab", "push", None),),
        digest["e"],
        TagDecision(f"hub-{'1' * 12}", "push", None),
        platforms=(("linux/amd64", digest["a"]), ("linux/arm64", digest["b"])),
        hub_platforms=(("linux/amd64", digest["c"]), ("linux/arm64", digest["d"])),
        hub_digest=digest["f"],
    )
    monkeypatch.setattr(api, "image_push", lambda **_: result)
    out = run_cli("image", "push", "lab", cwd=workspace)
    assert out.code == 0, out.err
    hub = f"hub-{'1' * 12}"
    assert out.out.splitlines() == [
        f"{REPO}:sha-0123456789ab\tpush",
        f"{REPO}:{hub}\tpush",
        f"{REPO}@{digest['a']}\tlinux/amd64",
        f"{REPO}@{digest['b']}\tlinux/arm64",
        f"{REPO}@{digest['c']}\tlinux/amd64\t{hub}",
        f"{REPO}@{digest['d']}\tlinux/arm64\t{hub}",
        f"{REPO}@{digest['f']}\t{hub}",
        f"{REPO}@{digest['e']}",
    ], "the environment's digest stays the last line; the hub's lines name their tag in a third column"
