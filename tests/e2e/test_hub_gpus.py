"""Issue 18's GPUs under nbenv hub, on the real engine: the device request the DockerSpawner config gives a
GPU profile's server is the one the engine records for compose's device reservation of the same
`[resources] gpus` (what `nbenv up` sends). No GPU exists here: containers are created, never started (the
engine checks for a device driver only at start; tests/e2e/test_devcontainer_gpu.py proves that one line)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import docker
from nbenv.render.compose import gpu_request
from nbenv.running.gpus import device_request
from nbenv.spec.models import Gpus
from tests.e2e.conftest import PREFIX
from tests.e2e.conftest import docker as docker_cli

pytestmark = pytest.mark.e2e

LABEL = f"{PREFIX}.hub-gpus"
CASES: list[Gpus] = ["all", 1, 3, ("0",), ("0", "GPU-8f9c2f1e-1b2c-4d5e-8f90-123456789abc")]


def _recorded(container: str) -> list[dict[str, Any]]:
    found = json.loads(docker_cli("inspect", container).stdout)[0]["HostConfig"]["DeviceRequests"]
    # Compose sends null where docker-py sends an empty list or map: the same request.
    return [{k: v or None for k, v in r.items() if k != "Options"} for r in found]


@pytest.mark.fault
def test_the_hub_asks_the_engine_for_the_gpus_as_compose_does(base_image: str, tmp_path: Path) -> None:
    client = docker.APIClient(version="1.41")
    try:
        for index, gpus in enumerate(CASES):
            # `nbenv up`: compose's device reservation, as nbenv renders it.
            project = f"{PREFIX}-hub-gpus-{index}"
            compose = tmp_path / f"compose-{index}.yaml"
            service = {"image": base_image, "command": ["true"], "labels": {LABEL: "1"}}
            service["deploy"] = {"resources": {"reservations": {"devices": [gpu_request(gpus)]}}}
            compose.write_text(yaml.safe_dump({"services": {"gpu": service}}))
            created = subprocess.run(
                ["docker", "compose", "-p", project, "-f", str(compose), "create"], capture_output=True, text=True
            )
            assert created.returncode == 0, created.stderr
            # The hub: the pre-spawn hook's host config, as DockerSpawner passes it to docker-py and the engine.
            name = f"{PREFIX}-hub-gpus-spawned-{index}"
            host_config = client.create_host_config(
                device_requests=[device_request(gpus)], cap_drop=["ALL"], security_opt=["no-new-privileges:true"]
            )
            client.create_container(base_image, ["true"], name=name, labels={LABEL: "1"}, host_config=host_config)
            assert _recorded(name) == _recorded(f"{project}-gpu-1"), gpus
            assert _recorded(name)[0]["Driver"] == "nvidia" and _recorded(name)[0]["Capabilities"] == [["gpu"]]
    finally:
        for container in client.containers(all=True, filters={"label": LABEL}):
            client.remove_container(container["Id"], force=True)
        for index in range(len(CASES)):
            subprocess.run(["docker", "compose", "-p", f"{PREFIX}-hub-gpus-{index}", "down"], capture_output=True)
        client.close()


@pytest.mark.fault
def test_a_gpu_profiles_spawn_fails_with_nbenvs_one_line_on_this_engine(
    base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This engine has no NVIDIA runtime, so the refusal is real: the hub config's spawner (over a stand-in
    for DockerSpawner's start that does what it does: docker-py's create_host_config from the profile's
    extra_host_config, create, start) turns the engine's raw "could not select device driver" into nbenv's
    one line, the spawn error JupyterHub shows."""
    import asyncio
    import dataclasses
    import sys
    import types

    from nbenv.hub.render import option
    from tests.unit.test_hub import LAB
    from tests.unit.test_hub_host import _config

    client = docker.APIClient(version="1.41")
    name = f"{PREFIX}-hub-gpus-start"
    raw: list[str] = []

    class DockerSpawner:  # what DockerSpawner.start asks the engine, through the same library
        user_options: dict[str, str] | None = None
        extra_host_config: dict[str, Any]

        async def start(self) -> None:
            host_config = client.create_host_config(**self.extra_host_config)
            client.create_container(base_image, ["true"], name=name, labels={LABEL: "1"}, host_config=host_config)
            try:
                client.start(name)
            except docker.errors.APIError as exc:
                raw.append(str(exc))
                raise

    module = types.ModuleType("dockerspawner")
    module.DockerSpawner = DockerSpawner  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dockerspawner", module)
    gpu = dataclasses.replace(LAB, name="gpu-env", image=base_image, gpus="all")
    config = _config(tmp_path, monkeypatch, [gpu])
    spawner = config.JupyterHub.spawner_class()
    spawner.user_options, spawner.escaped_name = {"image": option(gpu)}, "alice"
    config.Spawner.pre_spawn_hook(spawner)
    try:
        with pytest.raises(RuntimeError) as raised:
            asyncio.run(spawner.start())
        assert raw and "could not select device driver" in raw[0], raw  # the engine's own answer
        line = str(raised.value)
        assert line.startswith("gpu-env: resources.gpus: this Docker engine cannot give containers a GPU")
        assert "\n" not in line and "could not select" not in line and raised.value.jupyterhub_message == line  # type: ignore[attr-defined]
    finally:
        for container in client.containers(all=True, filters={"label": LABEL}):
            client.remove_container(container["Id"], force=True)
        client.close()
