"""Provenance, layering and registry pushes on a real engine and a real registry (docker-registry).

The session's images (base, then traffic-analysis FROM it) are built once by `demo_up`; these
tests read their labels and history, then push the small `base` image to a registry on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PREFIX, Up, commit_all, docker, free_port, git, nbenv, session_images_kept

pytestmark = pytest.mark.e2e

HISTORY = "/opt/nbenv/history.jsonl"


def labels_of(ref: str) -> dict[str, str]:
    out = docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref).stdout
    return dict(json.loads(out))


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def registry_tags(registry: str, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list", timeout=10) as response:
            return sorted(json.load(response).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def registry_config_digest(registry: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["config"]["digest"])


def lock_content_hash(workspace: Path) -> str:
    return str(tomllib.loads((workspace / "poetry.lock").read_text())["metadata"]["content-hash"])


def error_line(stderr: str) -> str:
    """The error itself: the last line, or the one before its `  hint:` line (progress comes first)."""
    lines = stderr.rstrip("\n").splitlines()
    assert lines, "an error was printed"
    return lines[-2] if lines[-1].startswith("  hint: ") and len(lines) > 1 else lines[-1]


def inspect_json(workspace: Path, name: str) -> dict[str, Any]:
    result = nbenv("image", "inspect", name, "--json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


# --- labels, history, banner ----------------------------------------------------------------


def test_every_image_carries_oci_and_nbenv_labels(demo_up: Up) -> None:
    head = git("rev-parse", "HEAD", cwd=demo_up.workspace)
    base, child = labels_of(f"{PREFIX}/base:latest"), labels_of(f"{PREFIX}/traffic-analysis:latest")
    for labels, name in ((base, "base"), (child, "traffic-analysis")):
        assert labels["org.opencontainers.image.revision"] == head
        assert labels["org.opencontainers.image.title"] == name
        assert labels["org.opencontainers.image.version"] == f"sha-{head[:12]}"
        assert labels["org.opencontainers.image.created"].endswith("Z")
        assert "org.opencontainers.image.description" in labels
        assert "org.opencontainers.image.source" in labels
        assert labels["nbenv.environment"] == name
        assert labels["nbenv.dirty"] == "false"
        assert labels["nbenv.lock-hash"] == lock_content_hash(demo_up.workspace)
        assert labels["nbenv.version"]
        assert (
            f":ck-{labels['nbenv.content-key'][:12]}"
            in docker("image", "inspect", "--format", "{{json .RepoTags}}", f"{PREFIX}/{name}:latest").stdout
        )
    assert base["nbenv.groups"] == "notebook"
    assert child["nbenv.groups"] == "notebook,models"
    assert child["nbenv.parent.digest"] == image_id(f"{PREFIX}/base:latest"), "the child names its parent's digest"


def test_the_history_file_in_the_container_holds_the_whole_lineage(demo_up: Up) -> None:
    result = demo_up.exec("cat", HISTORY)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["environment"] for r in records] == ["base", "traffic-analysis"]
    head = git("rev-parse", "HEAD", cwd=demo_up.workspace)
    for record in records:
        assert record["commit"] == head and record["dirty"] is False
        assert set(record) >= {"date", "image", "version", "groups", "lock_hash", "base_image"}
    assert records[1]["base_image"].startswith(f"{PREFIX}/base:ck-"), "the child was built FROM the parent"
    label = json.loads(labels_of(f"{PREFIX}/traffic-analysis:latest")["nbenv.history"])
    assert label == records, "the label and the file tell the same story"
    env = demo_up.exec("printenv", "NBENV_HISTORY")
    assert env.stdout.strip() == HISTORY, "the documented variable points at the file"
    writable = demo_up.exec("sh", "-c", f"echo x >> {HISTORY}")
    assert writable.returncode != 0, "the history is read-only for the notebook user"


def test_up_prints_the_provenance_banner(demo_up: Up) -> None:
    head = git("rev-parse", "HEAD", cwd=demo_up.workspace)
    assert f"commit   {head[:12]}" in demo_up.stderr
    assert "lineage  base <- traffic-analysis" in demo_up.stderr
    assert f"history  {HISTORY}" in demo_up.stderr
    assert "groups   notebook, models" in demo_up.stderr


def test_inspect_shows_labels_and_lineage(demo_up: Up) -> None:
    data = inspect_json(demo_up.workspace, "traffic-analysis")
    assert [r["environment"] for r in data["history"]] == ["base", "traffic-analysis"]
    assert data["labels"]["nbenv.environment"] == "traffic-analysis"
    assert data["id"] == image_id(f"{PREFIX}/traffic-analysis:latest")
    text = nbenv("image", "inspect", "traffic-analysis", cwd=demo_up.workspace)
    assert text.returncode == 0, text.stderr
    assert "lineage (2 build record(s), oldest first)" in text.stdout
    missing = nbenv("image", "inspect", "no-such-env", cwd=demo_up.workspace)
    assert missing.returncode == 3 and "Traceback" not in missing.stderr


# --- layering -------------------------------------------------------------------------------


def status(workspace: Path) -> dict[str, str]:
    result = nbenv("image", "status", cwd=workspace)
    assert result.returncode == 0, result.stderr
    return {line.split("\t")[0]: line.split("\t")[1] for line in result.stdout.splitlines()}


def test_a_parent_change_makes_children_stale_and_a_notebook_change_nothing(demo_up: Up) -> None:
    ws = demo_up.workspace
    assert status(ws) == {"base": "up to date", "traffic-analysis": "up to date"}
    (ws / "notebooks" / "scratch.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert status(ws) == {"base": "up to date", "traffic-analysis": "up to date"}, "notebooks never rebuild"
    spec = ws / "environments" / "base.toml"
    original = spec.read_text()
    spec.write_text(re.sub(r'(?m)^description = "', 'description = "changed: ', original, count=1))
    assert spec.read_text() != original
    try:
        changed = status(ws)
        assert changed["base"].startswith("stale"), changed
        assert changed["traffic-analysis"].startswith("stale"), changed
    finally:
        spec.write_text(original)
        (ws / "notebooks" / "scratch.ipynb").unlink()
    assert status(ws) == {"base": "up to date", "traffic-analysis": "up to date"}


def test_build_all_goes_parents_first_and_reuses_what_is_up_to_date(demo_up: Up) -> None:
    result = nbenv("image", "build", "--all", cwd=demo_up.workspace)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(name, state) for name, _, state in rows] == [("base", "up to date"), ("traffic-analysis", "up to date")]
    both = nbenv("image", "build", "--all", "base", cwd=demo_up.workspace)
    assert both.returncode == 2 and both.stderr.count("\n") <= 2


# --- pushing --------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def restore_session_images(demo_up: Up) -> Iterator[None]:
    """The pushes below rebuild `base` with fresh labels: the session's original images come back after."""
    with session_images_kept():
        yield


def test_push_tags_and_verifies_and_a_repush_is_a_no_op(demo_up: Up, registry: str) -> None:
    ws = demo_up.workspace
    head = commit_all(ws, "before push")
    repository = f"{PREFIX}/base"
    result = nbenv("image", "push", "base", "--registry", registry, cwd=ws)
    assert result.returncode == 0, result.stderr
    assert f"{registry}/{repository}:sha-{head[:12]}\tpush" in result.stdout
    assert registry_tags(registry, repository) == [f"sha-{head[:12]}"]
    local = image_id(f"{PREFIX}/base:latest")
    assert registry_config_digest(registry, repository, f"sha-{head[:12]}") == local
    assert labels_of(f"{PREFIX}/base:latest")["org.opencontainers.image.revision"] == head
    again = nbenv("image", "push", "base", "--registry", registry, cwd=ws)
    assert again.returncode == 0, again.stderr
    assert f":sha-{head[:12]}\tpresent" in again.stdout
    assert registry_tags(registry, repository) == [f"sha-{head[:12]}"]


def test_a_pushed_image_pulls_back_by_digest_with_labels_and_history(demo_up: Up, registry: str) -> None:
    ws = demo_up.workspace
    commit_all(ws, "pull back")
    result = nbenv("image", "push", "base", "--registry", registry, cwd=ws)
    assert result.returncode == 0, result.stderr
    by_digest = result.stdout.strip().splitlines()[-1]
    assert "@sha256:" in by_digest
    local = image_id(f"{PREFIX}/base:latest")
    tags = json.loads(docker("image", "inspect", "--format", "{{json .RepoTags}}", local).stdout)
    docker("rmi", *tags)
    assert docker("image", "inspect", local, check=False).returncode != 0, "the local image is gone"
    try:
        docker("pull", by_digest)
        assert image_id(by_digest) == local, "the same image came back"
        labels = labels_of(by_digest)
        assert labels["nbenv.environment"] == "base"
        history = docker("run", "--rm", "--entrypoint", "cat", by_digest, HISTORY).stdout
        assert [json.loads(line)["environment"] for line in history.splitlines()] == ["base"]
    finally:
        for tag in tags:
            docker("tag", local, tag, check=False)


def test_a_dirty_tree_is_refused_and_the_registry_is_unchanged(demo_up: Up, registry: str) -> None:
    ws = demo_up.workspace
    commit_all(ws, "clean")
    repository = f"{PREFIX}/base"
    before = registry_tags(registry, repository)
    stray = ws / "notebooks" / "draft.txt"
    stray.write_text("not committed\n")
    try:
        refused = nbenv("image", "push", "base", "--registry", registry, cwd=ws)
        assert refused.returncode == 10
        # It names what makes the tree dirty (git shows an untracked directory as itself).
        assert error_line(refused.stderr) in {
            f"refusing to push base: the working tree has uncommitted changes ({changed})"
            for changed in ("notebooks/", "notebooks/draft.txt")
        }, refused.stderr
        assert "Traceback" not in refused.stderr
        assert registry_tags(registry, repository) == before
        allowed = nbenv("image", "push", "base", "--registry", registry, "--allow-dirty", cwd=ws)
        assert allowed.returncode == 0, allowed.stderr
        head = git("rev-parse", "HEAD", cwd=ws)
        assert registry_tags(registry, repository) == sorted([*before, f"sha-{head[:12]}-dirty"])
        dirty = labels_of(f"{registry}/{repository}:sha-{head[:12]}-dirty")
        assert dirty["nbenv.dirty"] == "true", "a build from a dirty tree says so"
        assert dirty["org.opencontainers.image.revision"] == head
        assert dirty["org.opencontainers.image.version"] == f"sha-{head[:12]}-dirty"
    finally:
        stray.unlink()


def test_a_release_tag_adds_version_tags(demo_up: Up, registry: str) -> None:
    ws = demo_up.workspace
    commit_all(ws, "release")
    git("tag", "v1.4.2", cwd=ws)
    try:
        result = nbenv("image", "push", "base", "--registry", registry, cwd=ws)
        assert result.returncode == 0, result.stderr
        tags = set(registry_tags(registry, f"{PREFIX}/base"))
        assert {"1.4.2", "1.4", "1", "latest"} <= tags
        local = image_id(f"{PREFIX}/base:latest")
        assert registry_config_digest(registry, f"{PREFIX}/base", "latest") == local
    finally:
        git("tag", "-d", "v1.4.2", cwd=ws)


def test_a_tag_holding_another_image_is_never_overwritten(demo_up: Up, registry: str) -> None:
    ws = demo_up.workspace
    head = commit_all(ws, "conflict")
    repository = f"{registry}/{PREFIX}/base"
    squatter = f"{repository}:sha-{head[:12]}"
    docker("tag", f"{PREFIX}/debian-python:bookworm", squatter)
    docker("push", squatter)
    before = registry_tags(registry, f"{PREFIX}/base")
    try:
        refused = nbenv("image", "push", "base", "--registry", registry, cwd=ws)
        assert refused.returncode == 10, refused.stderr
        assert "already holds another image" in error_line(refused.stderr)
        assert registry_tags(registry, f"{PREFIX}/base") == before
        assert registry_config_digest(registry, f"{PREFIX}/base", f"sha-{head[:12]}") == image_id(squatter)
    finally:
        docker("rmi", squatter, check=False)


@pytest.mark.fault
def test_a_registry_that_does_not_answer_is_one_clear_error(demo_up: Up) -> None:
    commit_all(demo_up.workspace, "registry down")
    result = nbenv("image", "push", "base", "--registry", f"127.0.0.1:{free_port()}", cwd=demo_up.workspace)
    assert result.returncode == 10
    assert "does not answer" in error_line(result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.badinput
def test_bad_registry_values_are_refused_before_anything_runs(demo_up: Up) -> None:
    for value in ("https://example.invalid", "user:secret@127.0.0.1:5000", "UPPER.case", "a b"):
        result = nbenv("image", "push", "base", "--registry", value, cwd=demo_up.workspace)
        assert result.returncode == 10, (value, result.stderr)
        assert "is not a registry host[:port][/path]" in error_line(result.stderr)
