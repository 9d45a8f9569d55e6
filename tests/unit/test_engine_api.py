"""The engine adapter's reading of the Engine API (docker SDK) answers, and where its client connects.

Pure: the structures are the Engine API's own (container list entry, container inspect, image inspect);
the real engine's answers are exercised by the e2e tests (test_up, test_ownership's rootless engine)."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from nbenv.adapters.compose import CONFIG_FILES_LABEL, service_state
from nbenv.adapters.engine import (
    START_HINT,
    Engine,
    client_params,
    container_info,
    health_of,
    image_info,
    split_tag,
    unavailable_detail,
)
from nbenv.errors import EngineUnavailable
from tests.conftest import REPO

KEY = CONFIG_FILES_LABEL


def listed(labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """A /containers/json entry as Engine API 1.41 (Docker 20.10) returns it."""
    return {
        "Id": "ab4a98c3026574df",
        "Names": ["/p-jupyter-1"],
        "Image": "prefix/env:ck-2fc8a7831f44",
        "State": "running",
        "Status": "Up 3 seconds (healthy)",
        "Labels": labels if labels is not None else {"com.docker.compose.project": "p"},
        **fields,
    }


# The compose file a container was started from: the label's value as it is (no text to split any more).
@pytest.mark.parametrize(
    ("labels", "value"),
    [
        (
            {"com.docker.compose.project": "p", KEY: "/a/compose.yaml", "com.docker.compose.service": "x"},
            "/a/compose.yaml",
        ),
        ({KEY: "/a,b/compose.yaml", "com.docker.compose.service": "jupyter"}, "/a,b/compose.yaml"),  # a comma
        ({KEY: "/a/x=y,z=w/compose.yaml"}, "/a/x=y,z=w/compose.yaml"),  # what looked like another label
        ({KEY: "/last/compose.yaml"}, "/last/compose.yaml"),
        ({"com.docker.compose.project": "p"}, ""),
        ({}, ""),
        ({f"x{KEY}": "/not/this"}, ""),  # whole keys only
    ],
)
def test_the_config_file_label(labels: dict[str, str], value: str) -> None:
    assert service_state(container_info(listed(labels), None)).config_file == value


# Health comes from State.Health.Status of the container's inspect, not from the ps status text.
@pytest.mark.fault
@pytest.mark.parametrize(
    ("inspected", "health"),
    [
        ({"State": {"Status": "running", "Health": {"Status": "healthy", "FailingStreak": 0}}}, "healthy"),
        ({"State": {"Status": "running", "Health": {"Status": "starting"}}}, "starting"),
        ({"State": {"Status": "running", "Health": {"Status": "unhealthy", "FailingStreak": 3}}}, "unhealthy"),
        ({"State": {"Status": "running", "Health": {"Status": "none"}}}, ""),
        ({"State": {"Status": "running"}}, ""),  # no healthcheck
        ({"State": {"Status": "exited", "Health": None}}, ""),
        ({}, ""),
        (None, ""),  # removed between the list and the inspect
    ],
)
def test_health_from_the_engine_api(inspected: dict[str, Any] | None, health: str) -> None:
    assert health_of(inspected) == health
    # the ps status text does not decide: a healthy-looking Status with an unhealthy inspect is unhealthy
    assert container_info(listed(Status="Up 1 second (healthy)"), inspected).health == health


def test_a_container_as_ps_showed_it() -> None:
    state = service_state(container_info(listed({KEY: "/r/docker/base/compose.yaml"}), None))
    assert (state.container, state.state, state.image, state.config_file) == (
        "p-jupyter-1",
        "running",
        "prefix/env:ck-2fc8a7831f44",
        "/r/docker/base/compose.yaml",
    )
    # a container whose tag moved on shows the image id, as `docker ps` does: `up` sees it is not the new build
    moved = container_info(listed(Image="sha256:575447ab288de627"), None)
    assert moved.image == "sha256:575447ab288de627"
    nameless = container_info(listed(Names=[]), None)
    assert nameless.name == "ab4a98c30265"


def test_image_info() -> None:
    info = image_info(
        {
            "Id": "sha256:ab",
            "RepoTags": ["x/y:latest"],
            "RepoDigests": None,
            "Size": 125473820,
            "Config": {"Labels": {"nbenv.environment": "base"}},
        }
    )
    assert (info.id, info.labels, info.repo_tags, info.repo_digests, info.size) == (
        "sha256:ab",
        {"nbenv.environment": "base"},
        ("x/y:latest",),
        (),
        125473820,
    )
    assert image_info({"Id": "sha256:cd", "Config": {"Labels": None}}).labels == {}  # an image without labels


@pytest.mark.parametrize(
    ("target", "split"),
    [
        ("x/y:latest", ("x/y", "latest")),
        ("host:5000/team/x:ck-1", ("host:5000/team/x", "ck-1")),
        ("host:5000/team/x", ("host:5000/team/x", None)),
        ("x", ("x", None)),
    ],
)
def test_split_tag(target: str, split: tuple[str, str | None]) -> None:
    assert split_tag(target) == split


# --- where the client connects: the CLI's rules ---------------------------------------------------------------


def write_context(config: Path, name: str, host: str, *, current: bool) -> None:
    """A docker CLI context store, as `docker context create NAME --docker host=HOST` writes it."""
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}})
    )
    (config / "config.json").write_text(json.dumps({"currentContext": name} if current else {}))


@pytest.mark.fault
def test_docker_host_wins_over_the_context(tmp_path: Path) -> None:
    write_context(tmp_path, "remote", "unix:///run/user/1000/docker.sock", current=True)
    environ = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_HOST": "unix:///run/user/1001/docker.sock"}
    assert client_params(environ)["base_url"] == "unix:///run/user/1001/docker.sock"


@pytest.mark.fault
def test_the_current_context_and_docker_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # the SDK reads the context store from the process env
    write_context(tmp_path, "rootless", "unix:///run/user/1000/docker.sock", current=True)
    assert client_params({"DOCKER_CONFIG": str(tmp_path)})["base_url"] == "unix:///run/user/1000/docker.sock"
    assert "base_url" not in client_params({"DOCKER_CONTEXT": "default"})
    with pytest.raises(EngineUnavailable, match=r"^the docker context 'gone' does not exist$"):
        client_params({"DOCKER_CONTEXT": "gone"})


@pytest.mark.fault
def test_ssh_hosts_go_through_the_ssh_command() -> None:
    assert client_params({"DOCKER_HOST": "ssh://user@build-host"})["use_ssh_client"] is True


# --- an engine that does not answer: one line, in the CLI's words ------------------------------------------------

ADDRESS = "unix:///run/user/1000/docker.sock"


def wrapped(inner: BaseException) -> Exception:
    """How requests hands a socket error over: ConnectionError(ProtocolError('Connection aborted.', inner))."""
    import urllib3.exceptions

    try:
        try:
            raise urllib3.exceptions.ProtocolError("Connection aborted.", inner)
        except urllib3.exceptions.ProtocolError as exc:
            raise requests.exceptions.ConnectionError(exc) from exc
    except requests.exceptions.ConnectionError as outer:
        return outer


@pytest.mark.fault
@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (
            wrapped(PermissionError(13, "Permission denied")),
            f"permission denied while trying to connect to the Docker daemon socket at {ADDRESS}",
        ),
        (
            wrapped(FileNotFoundError(2, "No such file or directory")),
            f"Cannot connect to the Docker daemon at {ADDRESS}. Is the docker daemon running?",
        ),
        (
            wrapped(ConnectionRefusedError(111, "Connection refused")),
            f"Cannot connect to the Docker daemon at {ADDRESS}. Is the docker daemon running?",
        ),
        (requests.exceptions.ReadTimeout("read timed out"), f"the Docker daemon at {ADDRESS} did not answer in time"),
        (TimeoutError("timed out"), f"the Docker daemon at {ADDRESS} did not answer in time"),
        (OSError("something\nelse"), "something else"),
    ],
)
def test_unavailable_detail_is_one_line(exc: Exception, detail: str) -> None:
    assert unavailable_detail(exc, ADDRESS) == detail


# The SDK leaves the socket of a failed connect to the garbage collector (a ResourceWarning, silent
# outside tests): collected inside the test that caused it.
UNCLOSED = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.mark.fault
@UNCLOSED
@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/nonexistent/docker.sock", "Cannot connect to the Docker daemon at unix://{}. Is the docker daemon running?"),
        ("{dir}/not-a-socket", "Cannot connect to the Docker daemon at unix://{}. Is the docker daemon running?"),
    ],
)
def test_no_engine_is_one_line_with_the_start_hint(
    path: str, detail: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket_path = path.format(dir=tmp_path)
    if "{dir}" in path:
        Path(socket_path).write_text("")  # a regular file where the socket should be: refused
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    engine = Engine(docker="sh")  # any installed program: the engine question is the one that fails
    with pytest.raises(EngineUnavailable) as caught:
        engine.check()
    message, hint, context = caught.value.message, caught.value.hint, caught.value.__context__
    del caught
    gc.collect()
    assert message == f"no Docker engine answers: {detail.format(socket_path)}"
    assert hint == START_HINT
    assert context is None, "the SDK's exception (and the socket it holds) is not kept"


CHECK = """
import os, shutil
import docker, requests  # imported before dropping root: nobody cannot read root's Python
from nbenv.adapters.engine import Engine
from nbenv.errors import EngineUnavailable
if os.geteuid() == 0:
    os.setgid(65534); os.setuid(65534)  # nobody: the socket's mode decides, as for a user outside group docker
try:
    Engine(docker="sh").check()
except EngineUnavailable as exc:
    print(exc.message); print(exc.hint)
"""


@pytest.mark.fault
def test_permission_denied_on_the_socket_is_one_line(tmp_path: Path) -> None:
    """As a user outside the socket's group (nobody; the check runs in a child process)."""
    tmp_path.chmod(0o755)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "docker.sock"))
    server.listen()
    (tmp_path / "docker.sock").chmod(0o660)  # root:root 0660, like root:docker on a Debian host
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/docker.sock", "PYTHONPATH": str(REPO)}
    try:
        result = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert result.stdout.splitlines() == [
        f"no Docker engine answers: permission denied while trying to connect to the Docker daemon socket at "
        f"unix://{tmp_path}/docker.sock",
        START_HINT,
    ], result.stderr


@pytest.mark.fault
def test_a_missing_docker_cli_is_named_before_the_engine_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(EngineUnavailable, match=r"^the docker command \(/nonexistent/docker\) is not installed$"):
        Engine(docker="/nonexistent/docker").check()
