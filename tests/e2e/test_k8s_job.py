"""The generated Kubernetes Job's notebook container, run for real in the environment's real image.

No cluster is reachable here, so the Job's pod is played by `docker run` as the kubelet would set it up
from the manifest: each volume mount of the generated container becomes a mount (the ConfigMaps
projected into read-only directories, the emptyDirs as tmpfs, the runs PVC as a directory, the data
volume's subPaths read-only from the pulled data), with the container's user, read-only root, no
capabilities, no privilege escalation, command, working directory and environment taken from the
manifest. The demo notebook must execute and its executed copy and status land in the runs volume.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from nbenv.hub.k8s_jobs import run_job
from nbenv.hub.k8s_objects import KubernetesSettings
from nbenv.hub.kubernetes import resolve
from nbenv.hub.profiles import profile
from nbenv.plan import container_path_of
from nbenv.project import Project
from tests.e2e.conftest import BASE_TAG, PREFIX

pytestmark = pytest.mark.e2e


def docker_argv(container: dict[str, Any], pod: dict[str, Any], sources: dict[str, Path], name: str) -> list[str]:
    """`docker run` for the manifest's container: what the kubelet would mount and enforce."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    context = container["securityContext"]
    argv = ["docker", "run", "--rm", "--name", name, "--label", "nbenv.test=1", "--network", "none"]
    argv += ["--user", f"{context['runAsUser']}:{context['runAsGroup']}", "--cap-drop", "ALL"]
    if context["allowPrivilegeEscalation"] is False:
        argv += ["--security-opt", "no-new-privileges"]
    if context["readOnlyRootFilesystem"]:
        argv.append("--read-only")
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume and mount["name"] not in sources:
            # An emptyDir: writable by the pod's user and fsGroup (Docker copies the image directory's
            # mode into a tmpfs, so the owner is given, as nbenv up gives HOME's).
            owner = f"uid={context['runAsUser']},gid={pod['securityContext']['fsGroup']}"
            argv += ["--tmpfs", f"{mount['mountPath']}:{owner},mode=0770,exec"]
            continue
        source = sources[mount["name"]] / mount.get("subPath", "")
        option = f"type=bind,source={source},target={mount['mountPath']}"
        argv += ["--mount", option + (",readonly" if mount.get("readOnly") else "")]
    argv += ["--workdir", container["workingDir"], "--pull", "never"]
    for env in container["env"]:
        argv += ["--env", f"{env['name']}={env['value']}"]
    return [*argv, container["image"], *container["command"]]


def test_the_generated_job_executes_the_notebook_in_the_real_image(run_ready_workspace: Path, tmp_path: Path) -> None:
    ws = run_ready_workspace
    plan = Project.discover(ws).plan("traffic-analysis")
    p = profile(plan, image=f"{PREFIX}/traffic-analysis:latest")
    settings = resolve(KubernetesSettings(dvc_remote="s3://team-data/nbenv"), image_prefix=PREFIX, base_image=BASE_TAG)
    notebooks = container_path_of(plan.env, "notebooks")
    assert notebooks is not None
    configmap, job = run_job(p, settings, {}, timeout=600, run="e2e", cwd=notebooks)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    # The volumes: the ConfigMaps projected (read-only files), the notebook's ConfigMap, the runs PVC.
    driver, given, runs = tmp_path / "driver", tmp_path / "input", tmp_path / "runs"
    for directory in (driver, given, runs / job["metadata"]["name"]):
        directory.mkdir(parents=True)
    for key, text in configmap["data"].items():
        (driver / key).write_text(text, encoding="utf-8")
        (driver / key).chmod(0o444)
    (given / "input.ipynb").write_text((ws / "notebooks" / "traffic.ipynb").read_text(encoding="utf-8"))
    (given / "input.ipynb").chmod(0o444)
    os.chown(runs / job["metadata"]["name"], 1000, 100)  # fsGroup 100: the pod's group owns the claim
    # What the init container pulls into the data volume: the workspace's pulled data (tests/e2e cover the pull).
    sources = {"nbenv-driver": driver, "nbenv-notebook": given, "nbenv-out": runs, "nbenv-data": ws}
    for path in (tmp_path, driver, given, runs):
        path.chmod(0o755)

    name = f"{PREFIX}-k8s-job-{uuid.uuid4().hex[:6]}"
    try:
        result = subprocess.run(docker_argv(container, pod, sources, name), capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    out = runs / job["metadata"]["name"]
    assert result.returncode == 0, result.stderr[-3000:]
    status = json.loads((out / "status.json").read_text())
    assert status["outcome"] == "ok", status
    executed = json.loads((out / "output.ipynb").read_text())
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.get("output_type") == "error"]
    assert "[1/" in result.stderr, "the driver's progress reaches the Job's log"
