"""`nbenv devcontainer NAME`: the file (pure parts, drift check, symlinks), and the real devcontainer CLI
(npm @devcontainers/cli, installed by the `devcontainer_cli` session fixture) reading every generated file.
Starting it for real: tests/e2e/test_devcontainer_gpu.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbenv.constants import USER_GID, USER_UID
from nbenv.devcontainer import check_editor_identity
from nbenv.errors import RunError
from nbenv.identity import Identity
from nbenv.project import Project
from nbenv.render.devcontainer import host_memory
from tests.conftest import REPO, run_cli
from tests.unit.test_generate import KITCHEN_SINK
from tests.unit.test_gpus import GPU_SINK

CLI_PACKAGE = "@devcontainers/cli"
CLI_CACHE = Path(os.environ.get("NBENV_TEST_CACHE", Path.home() / ".cache" / "nbenv-tests")) / "devcontainers-cli"


def devcontainer_bin() -> str:
    """The devcontainer CLI, installed with npm into the test cache once (skipped only without npm)."""
    binary = CLI_CACHE / "node_modules" / ".bin" / "devcontainer"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: the devcontainer CLI (npm @devcontainers/cli) cannot be installed")
        CLI_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--prefix", str(CLI_CACHE), "--no-audit", "--no-fund", CLI_PACKAGE],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"npm install {CLI_PACKAGE}: {result.stderr[-2000:]}"
    return str(binary)


@pytest.fixture(scope="session")
def devcontainer_cli() -> str:
    return devcontainer_bin()


def read_configuration(cli: str, root: Path, config: Path) -> dict[str, Any]:
    result = subprocess.run(
        [cli, "read-configuration", "--workspace-folder", str(root), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{config}: {result.stderr[-2000:]}"
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture
def every_kind(workspace: Path) -> Iterator[Path]:
    """The demo's environments, the kitchen sink and a GPU spec, each with a devcontainer.json."""
    (workspace / "environments/kitchen-sink.toml").write_text(KITCHEN_SINK)
    (workspace / "environments/gpu-sink.toml").write_text(GPU_SINK)
    for name in ("base", "traffic-analysis", "kitchen-sink", "gpu-sink"):
        result = run_cli("devcontainer", name, cwd=workspace)
        assert result.code == 0, result.err
    yield workspace


def test_devcontainer_cli_accepts_every_generated_file(every_kind: Path, devcontainer_cli: str) -> None:
    files = sorted(every_kind.glob(".devcontainer/*/devcontainer.json"))
    assert len(files) == 4
    for path in files:
        name = path.parent.name
        read = read_configuration(devcontainer_cli, every_kind, path)
        config = read["configuration"]
        compose = (path.parent / config["dockerComposeFile"][0]).resolve()
        assert compose == (every_kind / "docker" / name / "compose.yaml").resolve() and compose.is_file()
        service = yaml.safe_load(compose.read_text())["services"][config["service"]]
        # The workspace folder is the mount of the repository root in the compose file the editor starts.
        assert any(
            v["target"] == read["workspace"]["workspaceFolder"] and v["source"] == "../.." for v in service["volumes"]
        )
        assert config["initializeCommand"] == ["nbenv", "devcontainer", name, "--prepare"]
        assert config["customizations"]["vscode"]["extensions"] == ["ms-python.python", "ms-toolsai.jupyter"]
        assert config["forwardPorts"] == [8888] and service["ports"][0]["target"] == 8888
        assert "build" not in config and "image" not in config and "dockerFile" not in config  # no second build
    gpu = json.loads(_strip_comments(every_kind / ".devcontainer/gpu-sink/devcontainer.json"))
    assert gpu["hostRequirements"] == {"cpus": 2, "memory": "2gb", "gpu": True}
    traffic = json.loads(_strip_comments(every_kind / ".devcontainer/traffic-analysis/devcontainer.json"))
    assert traffic["hostRequirements"] == {"memory": "4gb"}
    assert "hostRequirements" not in json.loads(_strip_comments(every_kind / ".devcontainer/base/devcontainer.json"))


def _strip_comments(path: Path) -> str:
    return "".join(line for line in path.read_text().splitlines(keepends=True) if not line.startswith("//"))


def test_check_and_generate_keep_it_current(workspace: Path) -> None:
    assert run_cli("devcontainer", "traffic-analysis", cwd=workspace).code == 0
    assert run_cli("devcontainer", "traffic-analysis", "--check", cwd=workspace).code == 0
    assert run_cli("generate", "--check", cwd=workspace).code == 5  # docker/base/ was never generated
    assert run_cli("generate", cwd=workspace).code == 0
    assert run_cli("generate", "--check", cwd=workspace).code == 0
    spec = workspace / "environments/traffic-analysis.toml"
    spec.write_text(spec.read_text().replace('memory = "4g"', 'memory = "3g"\ncpus = 0.5'))
    drift = run_cli("devcontainer", "traffic-analysis", "--check", cwd=workspace)
    assert drift.code == 5 and ".devcontainer/traffic-analysis/devcontainer.json" in drift.err
    assert run_cli("generate", "--check", cwd=workspace).code == 5
    assert run_cli("generate", cwd=workspace).code == 0  # an existing devcontainer.json is regenerated too
    document = json.loads(_strip_comments(workspace / ".devcontainer/traffic-analysis/devcontainer.json"))
    assert document["hostRequirements"] == {"cpus": 1, "memory": "3gb"}
    assert not (workspace / ".devcontainer/base").exists()  # generate writes none that was not asked for


def test_generate_without_devcontainers_writes_none(workspace: Path) -> None:
    assert run_cli("generate", cwd=workspace).code == 0
    assert not (workspace / ".devcontainer").exists()


@pytest.mark.security
@pytest.mark.parametrize("link", [".devcontainer", ".devcontainer/traffic-analysis"])
def test_a_symlinked_devcontainer_dir_is_refused(workspace: Path, tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / ".devcontainer").mkdir(exist_ok=True)
    (workspace / link).symlink_to(outside) if link != ".devcontainer" else None
    if link == ".devcontainer":
        (workspace / ".devcontainer").rmdir()
        (workspace / ".devcontainer").symlink_to(outside)
    result = run_cli("devcontainer", "traffic-analysis", cwd=workspace)
    assert result.code == 3, result.err
    assert len(result.err_lines) <= 2 and "symlink" in result.err
    assert list(outside.iterdir()) == []
    assert not (workspace / "docker").exists()  # all or nothing


@pytest.mark.security
def test_a_symlinked_devcontainer_file_is_refused(workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    (workspace / ".devcontainer/traffic-analysis").mkdir(parents=True)
    (workspace / ".devcontainer/traffic-analysis/devcontainer.json").symlink_to(target)
    result = run_cli("devcontainer", "traffic-analysis", cwd=workspace)
    assert result.code == 3 and target.read_text() == "keep"


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "nope"),
        (["traffic-analysis", "--check", "--prepare"], "--check and --prepare"),
        (["traffic-analysis", "--no-pull"], "go with --prepare"),
        (["Bad Name"], "Bad Name"),
    ],
)
def test_bad_arguments_are_one_line(workspace: Path, args: list[str], message: str) -> None:
    result = run_cli("devcontainer", *args, cwd=workspace)
    assert result.code in (2, 3) and message in result.err_lines[0] and len(result.err_lines) <= 2, result.err
    assert not (workspace / ".devcontainer").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("4g", "4gb"), ("1.5g", "1536mb"), ("512m", "512mb"), ("1024m", "1gb"), ("6m", "6mb")],
        *[("7000k", "7000kb"), ("10000000", "10000000"), ("65536g", "64tb")],
    ],
)
def test_host_memory_notation(value: str, expected: str) -> None:
    assert host_memory(value) == expected


@pytest.mark.security
@pytest.mark.parametrize(
    ("identity", "ok"),
    [
        (Identity(USER_UID, USER_GID, USER_UID, USER_GID), True),
        (Identity(USER_UID, 1000, USER_UID, 1000), True),  # the owner's own group: the UID decides ownership
        (Identity(1001, 1001, 1001, 1001), False),
        (Identity(0, 0, 0, 0), False),
        (Identity(0, 0, USER_UID, USER_GID), False),  # rootless: container root is the caller
        (Identity(USER_UID, USER_GID, USER_UID, USER_GID, userns_host=True), False),  # userns-remap daemon
    ],
)
def test_prepare_refuses_an_editor_container_that_writes_as_someone_else(identity: Identity, ok: bool) -> None:
    check = check_editor_identity(Project.discover(REPO).ws, "traffic-analysis")
    if ok:
        check(identity)
        return
    with pytest.raises(RunError) as caught:
        check(identity)
    assert "\n" not in caught.value.message and "nbenv up traffic-analysis" in (caught.value.hint or "")


@pytest.mark.security
@pytest.mark.parametrize(
    ("label", "mine"),
    [
        ("{c}", True),
        ("{c},/tmp/devcontainercli-root/docker-compose.devcontainer.containerFeatures-1.yml", True),  # the editor's
        ("/elsewhere/docker/traffic-analysis/compose.yaml", False),
        ("/elsewhere/docker/traffic-analysis/compose.yaml,{c}", False),
    ],
)
def test_nbenv_down_knows_the_editors_container_and_no_other(tmp_path: Path, label: str, mine: bool) -> None:
    """The devcontainer CLI starts compose with its own override file after nbenv's: `nbenv down`/`shell`/`logs`
    accept that container as this checkout's; one started from another checkout's file stays refused."""
    from nbenv.adapters.compose import ServiceState
    from nbenv.running.lifecycle import check_same_checkout

    compose_file = tmp_path / "docker/traffic-analysis/compose.yaml"
    compose_file.parent.mkdir(parents=True)
    compose_file.write_text("")

    class Compose:
        pass

    compose = Compose()
    compose.compose_file = compose_file  # type: ignore[attr-defined]
    state = ServiceState("c1", "running", "", "img", label.format(c=compose_file))
    if mine:
        check_same_checkout("traffic-analysis", compose, [state])  # type: ignore[arg-type]
    else:
        with pytest.raises(RunError, match="running from another checkout"):
            check_same_checkout("traffic-analysis", compose, [state])  # type: ignore[arg-type]


# --- `nbenv generate --check`: a .devcontainer/NAME/ whose environment is gone (issue 18) ------------------

TOOLS = 'spec_version = 1\nname = "tools"\ngroups = ["main"]\nimportable = false\n'


def _with_tools_devcontainer(workspace: Path) -> None:
    (workspace / "environments/tools.toml").write_text(TOOLS)
    assert run_cli("devcontainer", "tools", cwd=workspace).code == 0
    assert run_cli("generate", cwd=workspace).code == 0
    assert run_cli("generate", "--check", cwd=workspace).code == 0


@pytest.mark.badinput
@pytest.mark.parametrize("manifest", [True, False], ids=["with-manifest", "header-only"])
def test_check_reports_a_devcontainer_whose_environment_is_gone(workspace: Path, manifest: bool) -> None:
    _with_tools_devcontainer(workspace)
    (workspace / "environments/tools.toml").unlink()
    if not manifest:
        (workspace / ".devcontainer/tools/.nbenv-manifest").unlink()
        shutil.rmtree(workspace / "docker/tools")
    result = run_cli("generate", "--check", cwd=workspace)
    assert result.code == 5
    assert ".devcontainer/tools/" in result.err_lines[0]
    assert ("docker/tools/" in result.err_lines[0]) is manifest
    assert result.err_lines[1] == "  hint: run `nbenv generate` and commit the result"
    assert run_cli("generate", "--check", "base", "traffic-analysis", cwd=workspace).code == 0  # named: not asked


@pytest.mark.parametrize(
    "make",
    ["own-file", "top-level", "symlinked-dir", "known-env", "empty-dir"],
)
def test_check_leaves_devcontainer_files_that_are_not_orphans_alone(workspace: Path, tmp_path: Path, make: str) -> None:
    _with_tools_devcontainer(workspace)
    editors = workspace / ".devcontainer"
    generated = (editors / "tools/devcontainer.json").read_text()
    if make == "own-file":  # the user's own configuration, without nbenv's header or manifest
        (editors / "custom").mkdir()
        (editors / "custom/devcontainer.json").write_text('{"image": "mcr.microsoft.com/devcontainers/python"}\n')
    elif make == "top-level":
        (editors / "devcontainer.json").write_text(generated)
    elif make == "symlinked-dir":  # never followed: nothing behind a link is nbenv's
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere/devcontainer.json").write_text(generated)
        (editors / "linked").symlink_to(tmp_path / "elsewhere")
    elif make == "known-env":
        assert run_cli("devcontainer", "base", cwd=workspace).code == 0
    else:
        (editors / "gone").mkdir()
    result = run_cli("generate", "--check", cwd=workspace)
    assert result.code == 0, result.err
