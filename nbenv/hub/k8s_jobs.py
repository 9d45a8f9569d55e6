"""Pure: `nbenv run` on Kubernetes (part of nbenv.hub.kubernetes' output): the PVC of executed notebooks
and, per environment or per run, a ConfigMap with the run driver (nbenv/inimage/run_driver.py, as under
`nbenv run`) and its job.json, and a Job (backoffLimit 0, activeDeadlineSeconds from the timeout) whose
init container pulls the data like the hub's pods and whose notebook container runs the driver, confined
like them, on the notebook of ConfigMap `<job>-notebook` (key input.ipynb), saving the executed notebook
and status.json to the runs PVC under `<job>/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nbenv import inimage
from nbenv.errors import SpecError
from nbenv.hub.k8s_objects import (
    GPU_RESOURCE,
    LABELS,
    KubernetesSettings,
    container_path,
    container_security,
    data_mounts,
    data_volumes,
    docker_bytes,
    gpu_limit,
    home_volumes,
    k8s_literal,
    k8s_name,
    k8s_object,
    millicores,
    pod_security,
    pull_policy,
    puller,
)
from nbenv.hub.profiles import HubProfile
from nbenv.server_env import SERVER_VENV

IO_DIR = "/run/nbenv"  # as under `nbenv run` (nbenv.running.headless.IO_DIR)
KERNEL_SECONDS = 90  # on top of the timeout, for the kernel's start and shutdown (headless.BACKSTOP_SECONDS)
DRIVER_SCRIPT = "run_driver.py"
MAX_TIMEOUT = 7 * 24 * 3600
RUN_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}  # as under `nbenv run` (no __pycache__ beside the notebook)


def runs_claim(settings: KubernetesSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        # Several Jobs write at once (each its own directory): ReadWriteMany where the storage offers it.
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.runs_size}},
    }
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    return k8s_object("v1", "PersistentVolumeClaim", settings.runs_claim, settings) | {"spec": spec}


def run_job(
    p: HubProfile,
    settings: KubernetesSettings,
    items: Mapping[str, str],
    *,
    timeout: int,
    run: str = "",
    cwd: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`nbenv run` on the cluster: (the driver's ConfigMap, the Job). `run` names one run (a DNS-1123
    label part, e.g. the notebook's stem); the notebook comes from ConfigMap `<job>-notebook`, key
    input.ipynb. `cwd`: the container directory of the notebook (as in JupyterLab and `nbenv run`:
    plan.container_path_of(env, the notebook's directory); default the profile's work_dir), where the
    kernel runs: the runs PVC's `<job>/` directory is mounted there, so the executed notebook
    (output.ipynb), status.json and whatever the notebook writes next to itself are saved in it."""
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT:
        raise SpecError(f"--timeout: {timeout!r} is not a number of seconds from 1 to {MAX_TIMEOUT}")
    base = k8s_name("nbenv-run", p.name)
    job = k8s_name("", f"{base}-{run}", where=f"{p.name}: run name") if run else base
    notebook = k8s_name("", f"{job}-notebook", where=f"{p.name}: run name")
    out = container_path(cwd or p.work_dir, "the notebook's directory")
    for taken in (IO_DIR, *(d.target for d in p.data)):
        if out == taken or out.startswith(taken + "/"):
            raise SpecError(f"{out}: the notebook's directory: inside {taken}, which the Job mounts read-only")
    driver_json = {
        "input": f"{IO_DIR}/input/input.ipynb",
        "output": f"{out}/output.ipynb",
        "status": f"{out}/status.json",
        "kernel": p.kernel,
        "cwd": out,
        "timeout": timeout,
    }
    configmap = k8s_object("v1", "ConfigMap", job, settings) | {
        "data": {"driver.py": inimage.script(DRIVER_SCRIPT), "job.json": json.dumps(driver_json, indent=1)}
    }
    home, home_mounts = home_volumes(p.shm_size)
    volumes = [
        *home,
        {"name": "nbenv-driver", "configMap": {"name": job, "defaultMode": 0o444}},
        {"name": "nbenv-notebook", "configMap": {"name": notebook, "defaultMode": 0o444}},
        {"name": "nbenv-out", "persistentVolumeClaim": {"claimName": settings.runs_claim}},
    ]
    mounts = [
        *home_mounts,
        {"name": "nbenv-driver", "mountPath": f"{IO_DIR}/driver", "readOnly": True},
        {"name": "nbenv-notebook", "mountPath": f"{IO_DIR}/input", "readOnly": True},
        {"name": "nbenv-out", "mountPath": out, "subPath": job},
    ]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(settings),
    }
    if p.data:
        volumes.extend(data_volumes(settings, items))
        mounts.extend(data_mounts(tuple((d.path, d.target) for d in p.data)))
        pod["initContainers"] = [puller(tuple(d.path for d in p.data), settings)]
    python = f"{SERVER_VENV}/bin/python" if p.nbenv_server else "python"
    container: dict[str, Any] = {
        "name": "notebook",
        "image": p.image,
        "imagePullPolicy": pull_policy(p.image, settings),
        "command": [python, "-u", f"{IO_DIR}/driver/driver.py", f"{IO_DIR}/driver/job.json"],
        "workingDir": out,
        # The spec's [env] and nbenv's own, as `nbenv run` sets them (nbenv's last), no `$(VAR)` expanded.
        "env": [{"name": k, "value": k8s_literal(v)} for k, v in sorted({**dict(p.environment), **RUN_ENV}.items())],
        "securityContext": container_security(settings),
        "volumeMounts": mounts,
    }
    if resources := _resources(p, settings):
        container["resources"] = resources
    pod["containers"] = [container]
    pod["volumes"] = volumes
    labels = {**LABELS, "nbenv.environment": p.name}
    spec = {
        "backoffLimit": 0,
        # The data pull, the notebook's own timeout (the driver stops the kernel then), the kernel's shutdown.
        "activeDeadlineSeconds": settings.pull_seconds + timeout + KERNEL_SECONDS,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    return configmap, k8s_object("batch/v1", "Job", job, settings, labels) | {"spec": spec}


def _resources(p: HubProfile, settings: KubernetesSettings) -> dict[str, Any]:
    """The same limits and requests as Kubernetes quantities (for the Jobs nbenv writes itself)."""
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if p.cpus is not None:
        limits["cpu"] = millicores(p.cpus)
        requests["cpu"] = millicores(p.cpus * settings.request_fraction)
    if p.memory is not None:
        memory = docker_bytes(p.memory)
        limits["memory"] = str(memory)
        requests["memory"] = str(max(1, int(memory * settings.request_fraction)))
    if p.gpus is not None:
        limits[GPU_RESOURCE] = str(gpu_limit(p.name, p.gpus))  # the request defaults to the limit (extended resource)
    return {"limits": limits, "requests": requests} if limits else {}
