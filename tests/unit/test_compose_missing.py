"""An ordinary user whose docker CLI has no Compose v2 plugin gets one line naming it, not docker's usage text."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nbenv.adapters.compose import Compose
from nbenv.adapters.engine import Engine
from nbenv.errors import EngineUnavailable


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_a_docker_cli_without_the_compose_plugin_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no cli-plugins/ here: the real CLI, without compose
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        pytest.skip("a system-wide Compose plugin is installed here")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    compose = Compose(
        engine=Engine(docker="docker"), project="p", compose_file=tmp_path / "compose.yaml", env_file=None
    )
    with pytest.raises(EngineUnavailable, match=r"^Docker Compose v2 is not installed for this user"):
        compose.up()
