"""Real tools on the generated files: hadolint (no warnings) and `docker compose config` (valid).

Both tools are installed by the README's test command (scripts/test); a missing tool fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.unit.test_generate import KITCHEN_SINK

# As in a user's repository: no project config, every rule on; the Dockerfiles carry their own exemptions.
HADOLINT_CONFIG = "failure-threshold: info\n"


def _tool(name: str) -> str:
    """A tool from the test venv (next to this interpreter), else from PATH."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run the README's test command (scripts/test), which installs it")
    return path


def _compose() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return [_tool("docker-compose")]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lint") / "repo"
    root.mkdir()
    for name in ("pyproject.toml", "poetry.lock", "dvc.yaml", "environments"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    (root / "environments/kitchen-sink.toml").write_text(KITCHEN_SINK)
    result = run_cli("generate", cwd=root)
    assert result.code == 0, result.err
    return root


def _dockerfiles(root: Path) -> list[Path]:
    files = sorted((root / "docker").glob("*/Dockerfile"))
    assert len(files) == 3
    return files


@pytest.mark.security
def test_hadolint_has_no_findings(generated: Path, tmp_path: Path) -> None:
    hadolint = _tool("hadolint")
    config = tmp_path / "hadolint.yaml"
    config.write_text(HADOLINT_CONFIG)
    for dockerfile in _dockerfiles(generated):
        result = subprocess.run(
            [hadolint, "--no-color", "--config", str(config), "-f", "json", str(dockerfile)],
            capture_output=True,
            text=True,
        )
        findings = json.loads(result.stdout or "[]")
        assert findings == [], f"{dockerfile}: {findings}"
        assert result.returncode == 0


def test_every_inline_hadolint_exemption_says_why(generated: Path) -> None:
    for dockerfile in _dockerfiles(generated):
        lines = dockerfile.read_text().splitlines()
        for index, line in enumerate(lines):
            if line.startswith("# hadolint ignore="):
                reason = lines[index - 1]
                assert reason.startswith("# ") and "hadolint" not in reason, f"{dockerfile}:{index + 1}: no reason"


@pytest.mark.security
def test_docker_compose_config_accepts_every_generated_file(generated: Path) -> None:
    compose = _compose()
    for path in sorted((generated / "docker").glob("*/compose.yaml")):
        result = subprocess.run([*compose, "-f", str(path), "config", "--quiet"], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"


@pytest.mark.security
def test_compose_keeps_user_values_literal(generated: Path) -> None:
    path = generated / "docker/kitchen-sink/compose.yaml"
    result = subprocess.run(
        [*_compose(), "-f", str(path), "config", "--format", "json"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    service = json.loads(result.stdout)["services"]["jupyter"]
    # compose re-escapes literal dollars in its output; an unescaped $HOME would have been expanded
    assert service["environment"]["GREETING"] == "cost: $$5 for $$HOME"
    assert service["ports"][0]["host_ip"] == "127.0.0.1"
    assert {v["target"]: v.get("read_only", False) for v in service["volumes"]}["/home/jovyan/data/pems"] is True
