"""Generated Dockerfile and compose file: determinism, --check, variants, properties, golden files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli, snapshot

GOLDEN = REPO / "tests" / "golden"
KITCHEN_SINK = """\
spec_version = 1
name = "kitchen-sink"
description = 'Every knob: "quotes", $HOME stays literal, back\\slash'
base_image = "registry.example:5000/team/debian-python:bookworm"
groups = ["notebook", "models"]
importable = true
system_packages = ["graphviz", "libpq5"]

[[mounts]]
source = "."
target = "/home/jovyan/work"

[[mounts]]
source = "environments"
target = "/home/jovyan/specs"

[[data]]
path = "data/processed/pems"
target = "/home/jovyan/data/pems"

[env]
MPLBACKEND = "agg"
GREETING = "cost: $5 for $HOME"

[jupyter]
port = 9999
interface = "lab"
default_url = "/lab/tree/README.md"
kernel_display_name = "Kitchen \\"sink\\" $USER"

[resources]
cpus = 1.5
memory = "2g"
shm_size = "512m"
"""


def generate(root: Path, *args: str) -> None:
    result = run_cli("generate", *args, cwd=root)
    assert result.code == 0, result.err


def test_generate_writes_the_files_and_a_second_run_changes_nothing(workspace: Path) -> None:
    first = run_cli("generate", cwd=workspace)
    assert first.code == 0, first.err
    for name in ("base", "traffic-analysis"):
        assert (workspace / f"docker/{name}/Dockerfile").is_file()
        assert (workspace / f"docker/{name}/compose.yaml").is_file()
    assert (workspace / "docker/base/requirements/notebook.txt").is_file()
    assert (workspace / "docker/traffic-analysis/requirements/models.txt").is_file()
    assert not (workspace / "docker/traffic-analysis/requirements/notebook.txt").exists(), "the parent image has it"
    before = snapshot(workspace)
    second = run_cli("generate", cwd=workspace)
    assert second.code == 0 and "up to date" in second.out
    assert snapshot(workspace) == before


def test_generation_is_deterministic_across_workspaces(workspace: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(workspace, other)
    generate(workspace)
    generate(other)
    ours = {k: v for k, v in snapshot(workspace).items() if k.startswith("docker/")}
    theirs = {k: v for k, v in snapshot(other).items() if k.startswith("docker/")}
    assert ours and ours == theirs


def test_check_reports_drift_writes_nothing_and_passes_after_generate(workspace: Path) -> None:
    before = snapshot(workspace)
    drift = run_cli("generate", "--check", cwd=workspace)
    assert drift.code == 5
    assert "docker/traffic-analysis/Dockerfile" in drift.err and len(drift.err_lines) == 2
    assert snapshot(workspace) == before
    generate(workspace)
    assert run_cli("generate", "--check", cwd=workspace).code == 0
    (workspace / "docker/base/Dockerfile").write_text("# edited by hand\n")
    again = run_cli("generate", "--check", cwd=workspace)
    assert again.code == 5 and "docker/base/Dockerfile" in again.err


def test_check_flags_a_generated_directory_whose_spec_is_gone(workspace: Path) -> None:
    generate(workspace)
    (workspace / "docker/old-env").mkdir()
    (workspace / "docker/old-env/Dockerfile").write_text("FROM x\n")
    result = run_cli("generate", "--check", cwd=workspace)
    assert result.code == 5 and "docker/old-env/" in result.err


def test_a_file_no_longer_generated_is_removed(workspace: Path) -> None:
    generate(workspace)
    spec = workspace / "environments/traffic-analysis.toml"
    spec.write_text(spec.read_text().replace('groups = ["models"]', 'groups = ["main"]'))
    result = run_cli("generate", "traffic-analysis", cwd=workspace)
    assert result.code == 0, result.err
    assert "removed docker/traffic-analysis/requirements/models.txt" in result.out
    assert (workspace / "docker/traffic-analysis/requirements/main.txt").is_file()


def test_groups_override_writes_a_local_variant_not_the_committed_files(workspace: Path) -> None:
    generate(workspace)
    committed = snapshot(workspace)
    result = run_cli("generate", "traffic-analysis", "--groups", "main,notebook,models", cwd=workspace)
    assert result.code == 0, result.err
    variant = workspace / ".nbenv/variants/traffic-analysis/main-models-notebook"
    dockerfile = (variant / "Dockerfile").read_text()
    assert "groups: notebook, main, models" in dockerfile
    assert (variant / "requirements/main.txt").is_file()
    assert {k: v for k, v in snapshot(workspace).items() if not k.startswith(".nbenv/")} == committed


def test_dockerfile_is_multistage_lean_non_root_and_cache_ordered(workspace: Path) -> None:
    generate(workspace)
    text = (workspace / "docker/base/Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.M)
    assert froms == [("${BASE_IMAGE}", "tools"), ("tools", "builder"), ("${BASE_IMAGE}", "")], "one base for all"
    final = text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert not re.search(r"poetry (install|export|lock)|install[^\n]* poetry", text, re.I), "no Poetry in any stage"
    assert "pip install" not in final and "ARG NBENV_INDEX_URL" not in final
    assert "--require-hashes" in text and "fetch_uv.py" in text
    assert re.search(r"^USER 1000:100$", final, re.M)
    assert 'ENTRYPOINT ["tini", "-g", "--"]' in final
    assert "HEALTHCHECK" in final and "/api" in final
    assert '"base", "Python (base)"' in final, "kernel named after the environment"
    assert "JUPYTER_TOKEN_FILE=/run/secrets/jupyter_token" in final
    after_label = final.split("\nLABEL ", 1)[1].splitlines()[1:]
    assert after_label and all(line.startswith("      ") for line in after_label), "labels come last"
    assert text.index("COPY requirements/notebook.txt") < text.index("COPY --from=builder")


def test_child_builds_from_its_parent_and_installs_only_its_own_groups(workspace: Path) -> None:
    generate(workspace)
    text = (workspace / "docker/traffic-analysis/Dockerfile").read_text()
    assert "ARG PARENT_IMAGE=nbenv/base:latest" in text
    assert "FROM ${PARENT_IMAGE} AS builder" in text
    assert "--target /opt/nbenv/layers/traffic-analysis" in text
    assert "COPY requirements/models.txt" in text and "notebook.txt" not in text
    assert '"/opt/nbenv/layers/traffic-analysis", "/home/jovyan/work"' in text, ".pth: layer + mounted source"


def test_every_dockerfile_of_a_chain_opens_with_the_same_tools_stage(workspace: Path) -> None:
    """So a child's build reuses its parent's tools stage (venv and uv) from the build cache."""
    generate(workspace)

    def tools(name: str) -> str:
        text = (workspace / "docker" / name / "Dockerfile").read_text()
        instructions = [line for line in text.split(" AS tools\n", 1)[1].split("\nFROM ")[0].splitlines()]
        return "\n".join(line for line in instructions if not line.startswith("#"))

    assert (
        "ARG BASE_IMAGE=nbenv/debian-python:bookworm\n"
        in (workspace / "docker/traffic-analysis/Dockerfile").read_text()
    )
    assert tools("base") == tools("traffic-analysis") and "uv==" in tools("base")


@pytest.mark.security
def test_compose_binds_loopback_mounts_data_read_only_and_uses_a_secret(workspace: Path) -> None:
    generate(workspace)
    compose = yaml.safe_load((workspace / "docker/traffic-analysis/compose.yaml").read_text())
    assert compose["name"] == "nbenv-traffic-analysis-03aad873b94f"  # slug + hash of the exact (prefix, name)
    service = compose["services"]["jupyter"]
    assert service["ports"] == [
        {"target": 8888, "host_ip": "127.0.0.1", "published": "${NBENV_PORT:-8888}", "protocol": "tcp"}
    ]
    assert service["init"] is True and service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"]
    # Who runs it is interpolated at run time (the workspace owner), never written: same file for everyone.
    assert service["user"] == "${NBENV_UID:-1000}:${NBENV_GID:-100}"
    assert service["userns_mode"] == "${NBENV_USERNS_MODE:-}"
    assert service["read_only"] is True
    home, tmp = service["tmpfs"]
    assert home.startswith("/home/jovyan:uid=${NBENV_UID:-1000},gid=${NBENV_GID:-100},mode=0700,")
    assert tmp.startswith("/tmp:mode=1777,")
    volumes = {v["target"]: v for v in service["volumes"]}
    assert volumes["/home/jovyan/work"]["read_only"] is False and volumes["/home/jovyan/work"]["source"] == "../.."
    assert volumes["/home/jovyan/work/data/processed/pems"]["read_only"] is True
    assert volumes["/home/jovyan/work/data/processed/climate"]["source"] == "../../data/processed/climate"
    assert service["secrets"] == [{"source": "jupyter_token", "target": "jupyter_token"}]
    assert compose["secrets"]["jupyter_token"]["file"] == "../../.nbenv/run/traffic-analysis/jupyter_token"
    assert "JUPYTER_TOKEN" not in str(service.get("environment", {}))
    assert service["mem_limit"] == "4g" and service["shm_size"] == "1g"


def test_non_loopback_bind_is_rendered_as_asked(workspace: Path) -> None:
    spec = workspace / "environments/traffic-analysis.toml"
    spec.write_text(spec.read_text().replace("port = 8888", 'port = 8888\nbind = "0.0.0.0"'))
    generate(workspace, "traffic-analysis")
    compose = yaml.safe_load((workspace / "docker/traffic-analysis/compose.yaml").read_text())
    assert compose["services"]["jupyter"]["ports"][0]["host_ip"] == "0.0.0.0"


@pytest.fixture
def kitchen_sink(workspace: Path) -> Path:
    (workspace / "environments/kitchen-sink.toml").write_text(KITCHEN_SINK)
    generate(workspace, "kitchen-sink")
    return workspace / "docker/kitchen-sink"


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml"])
def test_golden_files(kitchen_sink: Path, name: str) -> None:
    """Rendered output, byte for byte. Refresh with NBENV_UPDATE_GOLDEN=1 after a deliberate change."""
    golden = GOLDEN / "kitchen-sink" / name
    actual = (kitchen_sink / name).read_text()
    if os.environ.get("NBENV_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert actual == golden.read_text()


@pytest.mark.security
def test_user_values_cannot_inject(kitchen_sink: Path) -> None:
    dockerfile = (kitchen_sink / "Dockerfile").read_text()
    assert (
        'org.opencontainers.image.description="Every knob: \\"quotes\\", \\$HOME stays literal, back\\\\slash"'
        in dockerfile
    )
    assert '"Kitchen \\"sink\\" $USER"' in dockerfile, "exec form: JSON-quoted, no shell"
    compose = yaml.safe_load((kitchen_sink / "compose.yaml").read_text())
    assert compose["services"]["jupyter"]["environment"]["GREETING"] == "cost: $$5 for $$HOME"


def test_the_committed_generated_files_match_the_specs() -> None:
    """CI fails when someone edits a spec or the lock without running `nbenv generate`."""
    result = run_cli("generate", "--check", cwd=REPO)
    assert result.code == 0, result.err
