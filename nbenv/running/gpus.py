"""GPUs at run time: `[resources] gpus` as `docker run --gpus`, and the one line an engine without the NVIDIA
runtime gets instead of Docker's `could not select device driver "nvidia" with capabilities: [[gpu]]`."""

from __future__ import annotations

from nbenv.errors import RunError
from nbenv.spec.models import Environment, Gpus

# What dockerd answers (compose and `docker run` alike) when no device driver offers the gpu capability.
NO_DRIVER = "could not select device driver"


def docker_gpus_option(gpus: Gpus) -> str:
    """`docker run --gpus VALUE`: all, a count, or `"device=0,1"` (the CLI reads CSV: the quotes keep the list
    one field). Device IDs are validated ([A-Za-z0-9._:-]), so nothing needs escaping."""
    if isinstance(gpus, tuple):
        return f'"device={",".join(gpus)}"'
    return str(gpus)


def device_request(gpus: Gpus) -> dict[str, object]:
    """The Engine API's DeviceRequest that compose's device reservation (nbenv.render.compose.gpu_request)
    sends, for DockerSpawner's `device_requests`: the NVIDIA driver with the gpu capability, and every GPU
    (Count -1), a count, or exact device IDs (validated: [A-Za-z0-9._:-]). `docker run --gpus` asks the same
    of any driver."""
    request: dict[str, object] = {"Driver": "nvidia"}
    if isinstance(gpus, tuple):
        request["DeviceIDs"] = list(gpus)
    else:
        request["Count"] = -1 if gpus == "all" else gpus
    request["Capabilities"] = [["gpu"]]
    return request


def is_no_gpu_driver(message: str) -> bool:
    return NO_DRIVER in message


def no_gpu_error(env: Environment) -> RunError:
    return RunError(
        f"{env.file}: resources.gpus: this Docker engine cannot give containers a GPU (no NVIDIA runtime)",
        "install the NVIDIA Container Toolkit on the host and restart Docker "
        "(`nvidia-ctk runtime configure --runtime=docker`), or remove `gpus` from [resources]",
    )
