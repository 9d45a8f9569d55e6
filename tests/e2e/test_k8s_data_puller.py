"""The Kubernetes init container's data pull, for real: the generated ConfigMap is projected into a
directory exactly as its volume's `items` say, and the generated init container's command, arguments
and environment run with real DVC against a real S3 server (moto on 127.0.0.1), the Secret's keys
given as the environment, as Kubernetes would. No cluster is reachable here: the container paths map
to temporary directories, nothing else differs. No Docker needed; marked e2e because it starts a server.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbenv.dvc_outs import tracked_outputs
from nbenv.hub import kubernetes
from nbenv.hub.k8s_objects import KubernetesSettings
from nbenv.hub.profiles import DataMount, HubProfile
from tests.e2e.faults import moto_s3

OUT = "docker/hub/kubernetes"

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
BUCKET = "nbenv-k8s-test"
SECRET = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def dvc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"dvc {args}: {result.stderr}"


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def project(data: dict[str, Any], volume: dict[str, Any], into: Path) -> None:
    """What the kubelet does with a ConfigMap volume: each listed key at its path, read-only."""
    for item in volume["configMap"]["items"]:
        target = into / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[item["key"]], encoding="utf-8")
        target.chmod(0o444)


def test_the_init_container_pulls_the_profiles_data_from_s3(tmp_path: Path) -> None:
    # The team's repository: data pushed to S3 with `dvc push`, its pointer file committed.
    source = tmp_path / "repo"
    (source / "data" / "alpha").mkdir(parents=True)
    (source / "data" / "beta").mkdir(parents=True)
    rng = random.Random(17)
    for name in ("alpha", "beta"):
        for index in range(3):
            (source / "data" / name / f"part-{index}.bin").write_bytes(rng.randbytes(40_000))
    env = {**os.environ, **SECRET}
    with moto_s3(BUCKET) as port:
        endpoint = f"http://127.0.0.1:{port}"
        dvc("init", "--no-scm", "-q", cwd=source)
        dvc("add", "-q", "data/alpha", "data/beta", cwd=source)
        dvc("remote", "add", "-d", "s3", f"s3://{BUCKET}/team", cwd=source)
        dvc("remote", "modify", "s3", "endpointurl", endpoint, cwd=source)
        dvc("push", "-q", cwd=source, env=env)

        alpha = HubProfile(
            name="alpha",
            display_name="Alpha",
            description="",
            image="nbenv/alpha:ck-0123456789abcdef",
            kernel="alpha",
            cpus=None,
            memory=None,
            shm_size=None,
            data=(DataMount("data/alpha", "/data/alpha"),),
        )
        settings = KubernetesSettings(dvc_remote=f"s3://{BUCKET}/team", dvc_endpoint_url=endpoint)
        pointers = {
            p: (source / p).read_text(encoding="utf-8")
            for p in kubernetes.pointer_files([alpha], tracked_outputs(source))
        }
        assert sorted(pointers) == ["data/alpha.dvc"]
        files = kubernetes.render([alpha], settings, out_dir=OUT, pointers=pointers)

        (configmap,) = yaml.safe_load_all(files[f"{OUT}/dvc-configmap.yaml"])
        _, job = yaml.safe_load_all(files[f"{OUT}/jobs/alpha.yaml"])
        pod = job["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        host = {}  # container path -> the directory standing in for its volume
        for mount in init["volumeMounts"]:
            directory = tmp_path / "volumes" / mount["name"]
            directory.mkdir(parents=True)
            if "configMap" in volumes[mount["name"]]:
                project(configmap["data"], volumes[mount["name"]], directory)
            host[mount["mountPath"]] = directory

        def local(argument: str) -> str:
            for path, directory in host.items():
                if argument == path or argument.startswith(path + "/"):
                    return str(directory) + argument[len(path) :]
            return argument

        command = [local(part) for part in [*init["command"], *init["args"]]]
        assert command[0] == "python3"
        container_env = {e["name"]: local(e["value"]) for e in init["env"]}
        assert init["envFrom"] == [{"secretRef": {"name": settings.s3_secret}}]
        run_env = {"PATH": f"{BIN}:{os.environ['PATH']}", **container_env, **SECRET}  # the Secret's keys
        for attempt in range(2):  # a restarted init container pulls again into the same volume
            result = subprocess.run(
                [sys.executable, *command[1:]], env=run_env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"attempt {attempt}: {result.stderr}"

    pulled = host["/nbenv/data"]
    assert digests(pulled / "data" / "alpha") == digests(source / "data" / "alpha")
    assert not (pulled / "data" / "beta").exists(), "only the profile's data is pulled"
    config = (pulled / ".dvc" / "config").read_text()
    assert "testing" not in config, "the credentials stay in the environment, never in a file"
