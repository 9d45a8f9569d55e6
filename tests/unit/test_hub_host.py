"""Issue 17 follow-ups on one host: the hub's readiness poll never goes through a proxy, DockerSpawner servers
get no `nbenv up` healthcheck and their GPU device request, and a GPU profile is refused under SwarmSpawner."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nbenv.errors import RunError
from nbenv.hub import run
from nbenv.hub.profiles import HubProfile
from nbenv.hub.render import CONFIG, SWARM_CONFIG, files, option, profiles_json
from nbenv.project import Project
from nbenv.running.gpus import device_request
from nbenv.spec.models import Gpus, HubSettings
from tests.conftest import REPO, run_cli, snapshot
from tests.unit.test_hub import LAB, load_config
from tests.unit.test_token_routing import listener

HUB = "nbenv-hub-0123456789ab"

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


class _Hub:
    """The engine as `_wait` asks it: the hub container runs (its HTTP side is a real local listener)."""

    def __init__(self) -> None:
        self.removed: list[list[str]] = []
        self.api = self

    def container_state(self, name: str) -> str:
        return "running"

    def logs(self, name: str, tail: int) -> bytes:
        return b"no answer"

    def remove_containers(self, names: list[str]) -> None:
        self.removed.append(names)


@pytest.fixture
def fake_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A real listener standing in for a proxy: it answers 200 to anything and records what it got."""
    server, seen = listener()
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


@pytest.mark.security
@pytest.mark.parametrize("variable", PROXY_VARIABLES)
@pytest.mark.parametrize("hub_answers", [True, False], ids=["hub-up", "hub-down"])
def test_the_hub_wait_never_goes_through_a_proxy_from_the_environment(
    fake_proxy: tuple[int, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch, variable: str, hub_answers: bool
) -> None:
    """`nbenv hub up` polls the hub until it answers: with a proxy variable set, the poll still goes to
    127.0.0.1 only. Hub down: the proxy (which answers 200) would make a diverted poll succeed."""
    proxy_port, proxy_seen = fake_proxy
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy_port}")
    engine: Any = _Hub()
    if hub_answers:
        hub, hub_seen = listener()
        try:
            run._wait(engine, "hub", f"http://127.0.0.1:{hub.server_address[1]}/hub/", timeout=10)
        finally:
            hub.shutdown()
            hub.server_close()
        assert hub_seen, "the hub itself was asked"
    else:
        with pytest.raises(RunError, match="the hub did not answer"):
            run._wait(engine, "hub", f"http://127.0.0.1:{_closed_port()}/hub/", timeout=1.5)
        assert engine.removed == [["hub"]]
    assert proxy_seen == [], "the proxy from the environment was asked"


# --- DockerSpawner servers: no `nbenv up` healthcheck; GPUs as a device request; none under SwarmSpawner ----------

GPU_CASES = [
    ("all", {"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}),
    (1, {"Driver": "nvidia", "Count": 1, "Capabilities": [["gpu"]]}),
    (4, {"Driver": "nvidia", "Count": 4, "Capabilities": [["gpu"]]}),
    (("0",), {"Driver": "nvidia", "DeviceIDs": ["0"], "Capabilities": [["gpu"]]}),
    (
        ("0", GPU_UUID := "GPU-8f9c2f1e-1b2c-4d5e-8f90-123456789abc"),
        {
            "Driver": "nvidia",
            "DeviceIDs": ["0", GPU_UUID],
            "Capabilities": [["gpu"]],
        },
    ),
]


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profiles: list[HubProfile], name: str = CONFIG) -> Any:
    """docker/hub/ for `profiles`, loaded as JupyterHub loads it."""
    hub_files = files(profiles, HubSettings(), hub=HUB, layers=[], base_image="nbenv/debian-python:bookworm")
    return load_config(tmp_path, monkeypatch, name, hub_files)


def _spawn(config: Any, profile: HubProfile) -> SimpleNamespace:
    spawner = SimpleNamespace(user_options={"image": option(profile)}, escaped_name="alice")
    config.Spawner.pre_spawn_hook(spawner)
    return spawner


def test_the_image_healthcheck_is_nbenv_ups_and_dockerspawner_servers_get_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's HEALTHCHECK probes GET /api on port 8888, where `nbenv up`'s Jupyter answers; a hub's server
    serves under /user/NAME/ only, so under DockerSpawner that check fails and the container turns "unhealthy"
    (tests/e2e/test_hub.py shows the probe failing in a real server). The config turns it off, as the swarm
    variant does; docker-py's own ContainerConfig sends it to the engine as Test NONE."""
    from docker.types import ContainerConfig

    from nbenv.render.dockerfile import render_dockerfile

    plan = Project.discover(REPO).plan("traffic-analysis")
    healthcheck = next(line for line in render_dockerfile(plan).splitlines() if line.startswith("HEALTHCHECK"))
    assert "http://127.0.0.1:8888/api" in healthcheck
    config = _config(tmp_path, monkeypatch, [LAB])
    create = config.DockerSpawner.extra_create_kwargs
    assert create["healthcheck"] == {"test": ["NONE"]}
    sent = ContainerConfig("1.41", LAB.image, None, healthcheck=create["healthcheck"], labels=create["labels"])
    assert sent["Healthcheck"]["Test"] == ["NONE"] and sent["Labels"] == {"nbenv.hub": HUB}
    swarm = _config(tmp_path / "swarm", monkeypatch, [LAB], SWARM_CONFIG)
    assert _spawn(swarm, LAB).extra_container_spec["healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize(("gpus", "expected"), GPU_CASES, ids=["all", "1", "4", "id", "ids"])
def test_a_gpu_profile_gets_its_device_request_under_dockerspawner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpus: Gpus, expected: dict[str, Any]
) -> None:
    """[resources] gpus -> profiles.json -> the pre-spawn hook's host config -> docker-py's own HostConfig
    (what DockerSpawner hands the engine): the NVIDIA driver, the gpu capability, every GPU (-1), a count or
    the device IDs, as compose's device reservation asks (tests/e2e/test_hub_gpus.py compares the engine's side)."""
    from docker.types import HostConfig

    gpu = dataclasses.replace(LAB, name="gpu", gpus=gpus)
    assert json.loads(profiles_json([gpu], HubSettings(), hub=HUB))["profiles"][0]["device_requests"] == [
        device_request(gpus)
    ]
    config = _config(tmp_path, monkeypatch, [LAB, gpu])
    host_config = _spawn(config, gpu).extra_host_config
    assert host_config["device_requests"] == [expected]
    assert host_config["cap_drop"] == ["ALL"] and host_config["security_opt"] == ["no-new-privileges:true"]
    (sent,) = HostConfig(version="1.41", **host_config)["DeviceRequests"]
    assert {k: v for k, v in sent.items() if k != "Options"} == {
        "Driver": "nvidia",
        "Count": expected.get("Count", 0),
        "DeviceIDs": expected.get("DeviceIDs", []),
        "Capabilities": [["gpu"]],
    }
    assert "device_requests" not in _spawn(config, LAB).extra_host_config, "no GPU for a profile without gpus"
    assert "device_requests" not in json.loads(profiles_json([LAB], HubSettings(), hub=HUB))["profiles"][0]


@pytest.mark.badinput
@pytest.mark.parametrize("gpus", [gpus for gpus, _ in GPU_CASES], ids=["all", "1", "4", "id", "ids"])
def test_the_swarm_config_refuses_a_gpu_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpus: Gpus) -> None:
    """Belt and braces behind `hub up --swarm`'s refusal: a service would silently run without the GPU."""
    gpu = dataclasses.replace(LAB, name="gpu", gpus=gpus)
    config = _config(tmp_path, monkeypatch, [LAB, gpu], SWARM_CONFIG)
    with pytest.raises(ValueError, match="gpu: a swarm service cannot reserve GPUs"):
        _spawn(config, gpu)
    assert _spawn(config, LAB).extra_container_spec["cap_drop"] == ["ALL"]


def _gpu_spec(name: str, gpus: str | None, *, extends: str | None = None) -> str:
    lines = ["spec_version = 1", f'name = "{name}"']
    lines += [f'extends = "{extends}"'] if extends else ['groups = ["notebook"]']
    lines += ["", "[resources]", 'memory = "1g"', *([f"gpus = {gpus}"] if gpus else [])]
    return "\n".join(lines) + "\n"


@pytest.mark.badinput
@pytest.mark.parametrize("gpus", ['"all"', "2", '["0", "GPU-8f9c"]'])
@pytest.mark.parametrize("where", ["own", "inherited"])
def test_hub_up_swarm_refuses_a_gpu_environment_in_one_line(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, gpus: str, where: str
) -> None:
    """Swarm services take no device request: `nbenv hub up --swarm` names the file and line that asked for
    GPUs (the parent's when inherited) before the engine is asked, and writes nothing."""
    if where == "own":
        (workspace / "environments/gpu.toml").write_text(_gpu_spec("gpu", gpus))
        expected = "environments/gpu.toml:7: resources.gpus: gpu asks for GPUs, but a swarm service cannot reserve"
    else:
        (workspace / "environments/gpu-parent.toml").write_text(_gpu_spec("gpu-parent", gpus))
        (workspace / "environments/gpu.toml").write_text(_gpu_spec("gpu", None, extends="gpu-parent"))
        expected = "environments/gpu-parent.toml:7: resources.gpus: gpu asks for GPUs"
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # refused before an engine is asked
    before = snapshot(workspace)
    result = run_cli("hub", "up", "--swarm", cwd=workspace)
    assert result.code == 3, result.err
    assert len(result.err_lines) == 2 and result.err_lines[0].startswith(expected), result.err
    assert "DockerSpawner" in result.err_lines[1]
    assert snapshot(workspace) == before
    unswarmed = run_cli("hub", "up", cwd=workspace)  # DockerSpawner: no GPU refusal (this one stops at the engine)
    assert unswarmed.code != 0 and "GPU" not in unswarmed.err, unswarmed.err
