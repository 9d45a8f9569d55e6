"""Issue 18, GPUs under `nbenv hub up`: an engine without the NVIDIA runtime refuses a GPU profile's server at
start with Docker's raw `could not select device driver`; the hub config's spawner turns it into nbenv's one
line (the spawn error JupyterHub shows, `jupyterhub_message`), as `nbenv up`/`nbenv run` print. Any other
error passes through untouched. The real engine's refusal is tests/e2e/test_hub_gpus.py."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from nbenv.hub.render import option
from nbenv.running.gpus import NO_DRIVER
from tests.unit.test_hub import LAB
from tests.unit.test_hub_host import _config

GPU = dataclasses.replace(LAB, name="gpu-env", gpus="all")
# What this machine's engine answers (dockerd 20.10, no NVIDIA runtime), as docker-py raises it when
# DockerSpawner starts the container, and the engine's own text for `docker run --gpus` / compose.
ENGINE_SAYS = [
    "500 Server Error for http+docker://localhost/v1.41/containers/bffb2b85b7ec/start: Internal Server Error "
    '("could not select device driver "nvidia" with capabilities: [[gpu]]")',
    'could not select device driver "" with capabilities: [[gpu]]',
    'Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]',
]
OTHER = ["404 Client Error: Not Found (\"No such image: nbenv/gpu-env:hub-0123456789ab\")", "port is already allocated",
         "device driver"]  # fmt: skip


class EngineError(Exception):
    """docker.errors.APIError's shape: the engine's answer in str()."""


def stub_dockerspawner(start: Any) -> types.ModuleType:
    module = types.ModuleType("dockerspawner")

    class DockerSpawner:
        user_options: dict[str, str] | None = None

        async def start(self) -> Any:
            return await start(self)

    module.DockerSpawner = DockerSpawner  # type: ignore[attr-defined]
    return module


def spawner_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: Any, chosen: str | None) -> Any:
    module = stub_dockerspawner(start)
    monkeypatch.setitem(sys.modules, "dockerspawner", module)
    config = _config(tmp_path, monkeypatch, [LAB, GPU])
    cls = config.JupyterHub.spawner_class
    assert isinstance(cls, type) and issubclass(cls, module.DockerSpawner) and cls.__name__ == "NbenvDockerSpawner"
    spawner = cls()
    spawner.user_options = {"image": chosen} if chosen else {}
    spawner.escaped_name = "alice"
    config.Spawner.pre_spawn_hook(spawner)
    return spawner


@pytest.mark.fault
@pytest.mark.parametrize("said", ENGINE_SAYS)
def test_no_gpu_runtime_is_nbenvs_one_line_in_the_spawn_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, said: str
) -> None:
    async def refuse(self: Any) -> None:
        assert self.extra_host_config["device_requests"][0]["Driver"] == "nvidia", "the GPU profile's request"
        raise EngineError(said)

    spawner = spawner_for(tmp_path, monkeypatch, refuse, option(GPU))
    with pytest.raises(RuntimeError) as raised:
        asyncio.run(spawner.start())
    line = str(raised.value)
    assert line.startswith(
        "gpu-env: resources.gpus: this Docker engine cannot give containers a GPU (no NVIDIA runtime)"
    )
    assert "nvidia-ctk runtime configure --runtime=docker" in line
    assert getattr(raised.value, "jupyterhub_message", None) == line, "what JupyterHub shows the user"
    assert "\n" not in line and NO_DRIVER not in line and "500 Server Error" not in line and "http+docker" not in line
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.fault
@pytest.mark.parametrize("said", OTHER)
def test_any_other_spawn_error_passes_through_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, said: str
) -> None:
    error = EngineError(said)

    async def fail(self: Any) -> None:
        raise error

    spawner = spawner_for(tmp_path, monkeypatch, fail, option(GPU))
    with pytest.raises(EngineError) as raised:
        asyncio.run(spawner.start())
    assert raised.value is error


def test_a_started_server_is_returned_as_the_spawner_returns_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ok(self: Any) -> tuple[str, int]:
        return ("10.0.0.2", 8888)

    assert asyncio.run(spawner_for(tmp_path, monkeypatch, ok, None).start()) == ("10.0.0.2", 8888)


def test_without_dockerspawner_the_config_still_loads_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dockerspawner", None)  # `import dockerspawner` raises ImportError
    assert _config(tmp_path, monkeypatch, [LAB, GPU]).JupyterHub.spawner_class == "dockerspawner.DockerSpawner"
