"""The image index of a multi-platform push through the docker CLI (issue 18, "publishes an image index on
push" for any registry): the argv nbenv builds (`docker manifest create --amend` over each platform's image
BY DIGEST, arm64's variant, `push --purge`, `--insecure` only for a registry on this machine), the parsing
of `docker manifest inspect` (fixtures captured from Debian's docker-registry with the docker CLIs 20.10
and 28), the per-platform and index-digest verification, the private DOCKER_CONFIG the CLI keeps its
local lists in, and one-line errors that never carry a credential. The real-registry proof is
tests/e2e/test_platforms.py::test_push_publishes_an_index_and_each_platform_pulls_back_by_digest."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.adapters import registry as registry_module
from nbenv.adapters.registry import (
    CLI_ENV,
    IndexEntry,
    Registry,
    index_commands,
    parse_inspect,
    printed_index_digest,
    private_cli_config,
    repository_of,
)
from nbenv.errors import RegistryError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "manifest_inspect"
REPO = "127.0.0.1:5917/idxtest/x"
AMD = "sha256:8c391b4b1f78a179ad84fb8a1f4e3e30b9a5f14c183ef075f8bea7e2d4a02e5b"  # manifest digests, as pushed
ARM = "sha256:b5e9d523a9f0650abae470c09d2b4826226e75f68a013d31fe9520942d4e9ecc"
AMD_IMAGE = "sha256:17c346d366769c57849a1bd1f9a575d88eca1e8a27832ef6fbf0959c246d28f5"  # config digests = image ids
ARM_IMAGE = "sha256:b38de3d1f9b33616677e4dbec84b00dacdea54b327f31625d3848794a1c2c771"
INDEX = "sha256:c73c47917fa0ca90a28483ed9ab224678e7358464a24b24715ee743c3f45e4c8"  # what `manifest push` printed
INDEX_V8 = "sha256:d89854edf324038cc593523b3540fcdca14a0c3f9b3453318f69f925bdf37e4d"  # the same with arm64 v8
CHILDREN = [("linux/amd64", AMD), ("linux/arm64", ARM)]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- the argv: pure planning ----------------------------------------------------------------------------------

LOOPBACK = ["127.0.0.1:5000", "127.0.0.1:5000/team", "localhost:5000", "127.8.9.10:443/a/b", "[::1]:5000"]
REMOTE = ["registry.example:5000", "registry.example", "10.0.0.5:5000/team", "[2001:db8::1]:5000", "ghcr.example/org"]


@pytest.mark.security
@pytest.mark.parametrize("host", LOOPBACK + REMOTE)
def test_index_argv_is_by_digest_with_insecure_only_on_this_machine(host: str) -> None:
    target = f"{host}/nbenv/traffic-analysis:sha-0123456789ab"
    repository = f"{host}/nbenv/traffic-analysis"
    commands = index_commands("docker", target, CHILDREN, insecure=Registry(host).insecure)
    insecure = ["--insecure"] if host in LOOPBACK else []
    assert commands == [
        ["docker", "manifest", "create", "--amend", *insecure, target, f"{repository}@{AMD}", f"{repository}@{ARM}"],
        ["docker", "manifest", "annotate", target, f"{repository}@{ARM}", "--variant", "v8"],
        ["docker", "manifest", "push", *insecure, "--purge", target],
    ]


@pytest.mark.security
@settings(max_examples=200, deadline=None)
@given(
    host=st.sampled_from(LOOPBACK + REMOTE),
    platforms=st.lists(st.sampled_from(["linux/amd64", "linux/arm64", "linux/arm64/v8"]), min_size=1, max_size=3),
    digests=st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), min_size=3, max_size=3),
)
def test_every_image_in_the_index_is_named_by_digest_never_by_tag(
    host: str, platforms: list[str], digests: list[str]
) -> None:
    target = f"{host}/p/env:sha-abc"
    children = [(platform, f"sha256:{digest}") for platform, digest in zip(platforms, digests, strict=False)]
    create, *annotate, push = index_commands("/usr/bin/docker", target, children, insecure=False)
    refs = create[5:]
    assert refs == [f"{host}/p/env@{digest}" for _, digest in children], "by digest, in order"
    assert all(":" not in ref.rsplit("/", 1)[1].split("@")[0] for ref in refs), "no tag on a platform's image"
    assert len(annotate) == sum(1 for p in platforms if p.startswith("linux/arm64"))
    assert push[-2:] == ["--purge", target] and "--insecure" not in create + push


@pytest.mark.badinput
@pytest.mark.parametrize(
    "digest",
    [
        "latest",
        "sha-0123456789ab-arm64",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 64 + "\n--insecure",
        "sha512:" + "a" * 128,
        "",
    ],
)
def test_a_child_that_is_not_a_digest_is_one_line_before_any_command(digest: str) -> None:
    with pytest.raises(RegistryError) as raised:
        index_commands("docker", f"{REPO}:sha-1", [("linux/amd64", AMD), ("linux/arm64", digest)], insecure=True)
    assert "not a manifest digest" in raised.value.message and "\n" not in raised.value.message


@pytest.mark.badinput
def test_an_index_over_no_platform_is_refused() -> None:
    with pytest.raises(RegistryError):
        index_commands("docker", f"{REPO}:sha-1", [], insecure=True)


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("127.0.0.1:5000/a/b:sha-1", "127.0.0.1:5000/a/b"),
        ("registry.example/org/team/env:1.2.3", "registry.example/org/team/env"),
        ("[::1]:5000/p/env:latest", "[::1]:5000/p/env"),
        ("localhost:5000/p/env@" + AMD, "localhost:5000/p/env"),
    ],
)
def test_repository_of_a_ref(ref: str, repository: str) -> None:
    assert repository_of(ref) == repository


# --- `docker manifest inspect` output, captured from the local registry ---------------------------------------------


@pytest.mark.parametrize("name", ["index_verbose.json", "index_v8_verbose.json", "index_v8_verbose_cli20.json"])
def test_an_index_parses_to_each_platforms_manifest_and_image(name: str) -> None:
    held = parse_inspect(fixture(name), f"{REPO}:sha-1")
    assert held.is_index and held.manifest is None
    assert held.entries == (
        IndexEntry("linux/amd64", AMD, AMD_IMAGE),
        IndexEntry("linux/arm64", ARM, ARM_IMAGE),  # variant v8 folded into the platform nbenv names
    )
    assert held.image == f"index:linux/amd64={AMD_IMAGE},linux/arm64={ARM_IMAGE}"


@pytest.mark.parametrize(("name", "digest", "image"), [("image_verbose.json", AMD, AMD_IMAGE),
                                                      ("image_verbose_cli20.json", ARM, ARM_IMAGE)])  # fmt: skip
def test_one_image_parses_to_its_manifest_and_config(name: str, digest: str, image: str) -> None:
    held = parse_inspect(fixture(name), f"{REPO}:sha-1-amd64")
    assert not held.is_index and held.manifest == digest and held.image == image and held.entries == ()


@pytest.mark.parametrize(("name", "digest"), [("index.json", INDEX), ("index_v8.json", INDEX_V8)])
def test_the_printed_index_hashes_to_the_digest_the_push_reported(name: str, digest: str) -> None:
    assert printed_index_digest(fixture(name)) == digest


@pytest.mark.badinput
@pytest.mark.parametrize("text", ["", "not json", "42", '"x"', "[1, 2]", "null"])
def test_unexpected_inspect_output_is_one_line(text: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse_inspect(text, f"{REPO}:sha-1")
    assert "\n" not in raised.value.message


# --- verification against the registry's answers (the CLI's recorded output) ---------------------------------


class RecordedCli:
    """`run` for the registry adapter answering from the captured `docker manifest inspect` outputs."""

    def __init__(self, verbose: str, plain: str, *, fail: dict[str, str] | None = None) -> None:
        self.verbose, self.plain, self.fail = verbose, plain, fail or {}
        self.calls: list[list[str]] = []

    def __call__(self, command: Sequence[str], **_: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(command))
        if command[2] in self.fail:
            return subprocess.CompletedProcess(list(command), 1, "", self.fail[command[2]])
        if command[2] == "push":
            return subprocess.CompletedProcess(list(command), 0, f"{INDEX_V8}\n", "")
        if command[2] == "inspect":
            text = self.verbose if "--verbose" in command else self.plain
            return subprocess.CompletedProcess(list(command), 0, text, "")
        return subprocess.CompletedProcess(list(command), 0, "", "")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> RecordedCli:
    cli = RecordedCli(fixture("index_v8_verbose_cli20.json"), fixture("index_v8.json"))
    monkeypatch.setattr(registry_module, "run", cli)
    return cli


def test_a_published_index_verifies_platform_by_platform(recorded: RecordedCli) -> None:
    remote = Registry("127.0.0.1:5917")
    digest = remote.publish_index(f"{REPO}:sha-1", CHILDREN)
    assert digest == INDEX_V8
    remote.verify_index(f"{REPO}:sha-1", digest, dict(CHILDREN))
    assert [call[1] for call in recorded.calls] == ["manifest"] * 5
    assert [call[2:4] for call in recorded.calls] == [
        ["create", "--amend"], ["annotate", f"{REPO}:sha-1"], ["push", "--insecure"],
        ["inspect", "--insecure"], ["inspect", "--insecure"],
    ]  # fmt: skip


@pytest.mark.fault
@pytest.mark.parametrize(
    ("expected", "digest", "message"),
    [
        ({"linux/amd64": AMD, "linux/arm64": AMD}, INDEX_V8, "not the platforms' pushed manifests"),
        ({"linux/amd64": AMD}, INDEX_V8, "not the platforms' pushed manifests"),
        ({"linux/amd64": AMD, "linux/arm64": ARM, "linux/riscv64": ARM}, INDEX_V8, "not the platforms'"),
        ({"linux/amd64": ARM, "linux/arm64": AMD}, INDEX_V8, "not the platforms' pushed manifests"),
        (dict(CHILDREN), INDEX, f"serves the index {INDEX_V8}, not the published {INDEX}"),
    ],
)
def test_a_registry_serving_anything_else_fails_in_one_line(
    recorded: RecordedCli, expected: dict[str, str], digest: str, message: str
) -> None:
    with pytest.raises(RegistryError) as raised:
        Registry("127.0.0.1:5917").verify_index(f"{REPO}:sha-1", digest, expected)
    assert message in raised.value.message and "\n" not in raised.value.message


@pytest.mark.fault
def test_a_tag_holding_one_image_where_the_index_should_be_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = RecordedCli(fixture("image_verbose.json"), fixture("image_verbose.json"))
    monkeypatch.setattr(registry_module, "run", cli)
    with pytest.raises(RegistryError) as raised:
        Registry("127.0.0.1:5917").verify_index(f"{REPO}:sha-1", INDEX_V8, dict(CHILDREN))
    assert "not the platforms' pushed manifests" in raised.value.message


SECRET_LINES = [
    'Get "https://user:s3cr3t-pass@registry.example/v2/": unauthorized: authentication required',
    "error parsing HTTP 400 response body: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.s3cr3t-pass.sig",
    "retrying with header Authorization: Basic dXNlcjpzM2NyM3QtcGFzcw== (401)",
    # captured: CLI 20.10 and 28 against docker-registry with htpasswd, without `docker login`
    f'Get "https://172.17.0.1:5443/v2/team/x/manifests/{AMD}": no basic auth credentials',
]


@pytest.mark.security
@pytest.mark.parametrize("step", ["create", "annotate", "push"])
@pytest.mark.parametrize("last", [*SECRET_LINES, "manifest blob unknown: blob unknown to registry"])
def test_a_failing_step_is_one_line_with_the_clis_last_line_and_no_credential(
    monkeypatch: pytest.MonkeyPatch, step: str, last: str
) -> None:
    cli = RecordedCli("", "", fail={step: f"some earlier line with s3cr3t-pass\n{last}\n"})
    monkeypatch.setattr(registry_module, "run", cli)
    with pytest.raises(RegistryError) as raised:
        Registry("registry.example:5000").publish_index("registry.example:5000/p/env:sha-1", CHILDREN)
    message = raised.value.message
    assert "\n" not in message and "s3cr3t" not in message and "dXNlcjpzM2NyM3Qt" not in message
    assert "eyJhbGciOiJSUzI1NiJ9" not in message
    assert cli.calls[-1][2] == step, "nothing runs after the failing step"
    if "unauthorized" in last or "no basic auth" in last:
        assert "refused access" in message and "docker login registry.example:5000" in (raised.value.hint or "")
    elif "blob unknown" in last:
        assert message.endswith(f"(docker manifest {step}): {last}")
    assert all("--insecure" not in call for call in cli.calls), "a remote registry: never plain HTTP"


@pytest.mark.fault
def test_a_push_that_prints_no_digest_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry_module,
        "run",
        lambda command, **_: subprocess.CompletedProcess(list(command), 0, "Created manifest list\n", ""),
    )
    with pytest.raises(RegistryError) as raised:
        Registry("127.0.0.1:5000").publish_index(f"{REPO}:sha-1", CHILDREN)
    assert "printed no digest" in raised.value.message


# --- the CLI's local manifest lists: a private DOCKER_CONFIG per push -------------------------------------------


@pytest.mark.fault
def test_the_private_config_links_the_users_entries_and_leaves_nothing(tmp_path: Path) -> None:
    user = tmp_path / "docker-config"
    (user / "contexts" / "meta").mkdir(parents=True)
    (user / "manifests" / "someone-elses-list").mkdir(parents=True)
    (user / "config.json").write_text('{"auths": {"registry.example": {"auth": "c2VjcmV0"}}}')
    with private_cli_config({"DOCKER_CONFIG": str(user), "PATH": os.environ["PATH"]}) as env:
        private = Path(env["DOCKER_CONFIG"])
        assert private != user and private.is_dir()
        assert {p.name for p in private.iterdir()} == {"config.json", "contexts"}, "never the user's manifests"
        assert all(p.is_symlink() for p in private.iterdir()), "linked, never read or copied"
        assert (private / "config.json").resolve() == (user / "config.json").resolve()
        assert env["DOCKER_CLI_EXPERIMENTAL"] == CLI_ENV["DOCKER_CLI_EXPERIMENTAL"] == "enabled"
        (private / "manifests" / "a-list").mkdir(parents=True)  # what `docker manifest create` would leave
    assert not private.exists(), "removed, with any list the CLI left there"
    assert (user / "config.json").is_file() and (user / "manifests" / "someone-elses-list").is_dir()
    assert not (user / "manifests" / "a-list").exists()


def test_the_private_config_works_without_a_users_config(tmp_path: Path) -> None:
    with private_cli_config({"HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "missing")}) as env:
        assert list(Path(env["DOCKER_CONFIG"]).iterdir()) == []


@pytest.mark.fault
def test_concurrent_pushes_never_share_a_manifest_store(tmp_path: Path) -> None:
    seen: list[str] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        with private_cli_config({"DOCKER_CONFIG": str(tmp_path)}) as env:
            barrier.wait(timeout=10)
            seen.append(env["DOCKER_CONFIG"])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 8


def test_the_recorded_fixtures_are_real_cli_output() -> None:
    """Guard against hand-edited fixtures: the verbose outputs carry the CLI's own fields."""
    for name in ("index_verbose.json", "index_v8_verbose.json"):
        assert all("Raw" in item for item in json.loads(fixture(name))), "CLI 28 prints each manifest raw too"
    assert all("Raw" not in item for item in json.loads(fixture("index_v8_verbose_cli20.json")))
