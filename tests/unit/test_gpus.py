"""[resources] gpus: validation, the compose device reservation (golden, `docker compose config`), `docker run
--gpus`, the Kubernetes `nvidia.com/gpu` limit (KubeSpawner's pod, kubernetes-validate), and the one line an
engine without the NVIDIA runtime gets. No GPU exists here: the real-engine proof of that line is
tests/e2e/test_devcontainer_gpu.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nbenv.errors import RunError, SpecError
from nbenv.hub import kubernetes
from nbenv.hub.k8s_jobs import run_job
from nbenv.identity import DEFAULT
from nbenv.project import Project
from nbenv.running import lifecycle
from nbenv.running.headless import ContainerRun, docker_run_argv
from nbenv.spec.models import GPU_ID_RE, GPUS_MAX, Resources, ResourcesFile
from tests.conftest import REPO, run_cli
from tests.unit.test_generate import KITCHEN_SINK
from tests.unit.test_generated_files_lint import _compose
from tests.unit.test_hub_kubernetes import K8S_VERSION, OUT, RESOLVED, SETTINGS, demo_profiles, pod_manifests

GOLDEN = REPO / "tests" / "golden" / "gpu"
GPU_SINK = KITCHEN_SINK.replace('name = "kitchen-sink"', 'name = "gpu-sink"').replace(
    'shm_size = "512m"', 'shm_size = "512m"\ngpus = ["0", "GPU-8f9c2f1e-1b2c-4d5e-8f90-123456789abc"]'
)
NO_DRIVER = (
    "docker compose up failed for p: Error response from daemon: could not select device driver "
    '"nvidia" with capabilities: [[gpu]]'
)


def spec(name: str, gpus: str, *, extends: str | None = None) -> str:
    parent = f'extends = "{extends}"\n' if extends else ""
    return f'spec_version = 1\nname = "{name}"\n{parent}groups = ["notebook"]\n\n[resources]\ngpus = {gpus}\n'


GOOD = {'"all"': "all", "1": 1, "64": 64, '["0"]': ["0"], '["0", "1", "GPU-a.b:c_d"]': ["0", "1", "GPU-a.b:c_d"]}
BAD = {
    "0": "0 GPUs: use 1 to 64",
    "-1": "-1 GPUs: use 1 to 64",
    "65": "65 GPUs: use 1 to 64",
    "true": "not bool",
    "1.5": "not float",
    '"some"': "'some' is not \"all\"",
    '"ALL"': "'ALL' is not \"all\"",
    '""': "'' is not \"all\"",
    "[]": "0 device IDs",
    '["0", "0"]': "lists a device ID twice",
    '["a b"]': "'a b' is not a GPU device ID",
    '["$HOME"]': "'$HOME' is not a GPU device ID",
    '["-0"]': "'-0' is not a GPU device ID",
    '["0,1"]': "'0,1' is not a GPU device ID",
    '["0\\n1"]': "is not a GPU device ID",
    '["\\"0\\""]': "is not a GPU device ID",
    "[1]": "int is not a GPU device ID",
    "{ count = 1 }": "not dict",
    "[" + ", ".join(f'"{i}"' for i in range(65)) + "]": "65 device IDs",
}


@pytest.mark.parametrize(("value", "expected"), GOOD.items())
def test_gpus_accepted_and_rendered(workspace: Path, value: str, expected: Any) -> None:
    (workspace / "environments/g.toml").write_text(spec("g", value))
    result = run_cli("generate", "g", cwd=workspace)
    assert result.code == 0, result.err
    service = yaml.safe_load((workspace / "docker/g/compose.yaml").read_text())["services"]["jupyter"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device.get("device_ids", device.get("count")) == expected


@pytest.mark.badinput
@pytest.mark.parametrize(("value", "message"), BAD.items())
def test_bad_gpus_is_one_line_and_writes_nothing(workspace: Path, value: str, message: str) -> None:
    (workspace / "environments/g.toml").write_text(spec("g", value))
    result = run_cli("generate", "g", cwd=workspace)
    assert result.code == 3
    line, *rest = result.err_lines
    assert line.startswith("environments/g.toml:6: resources.gpus: ") and message in line, line
    assert len(rest) <= 1 and "Traceback" not in result.err
    assert not (workspace / "docker").exists()


def test_gpus_are_inherited_and_overridden(workspace: Path) -> None:
    (workspace / "environments/parent.toml").write_text(spec("parent", "2"))
    (workspace / "environments/child.toml").write_text('spec_version = 1\nname = "child"\nextends = "parent"\n')
    (workspace / "environments/other.toml").write_text(spec("other", '"all"', extends="parent"))
    project = Project.discover(workspace)
    assert project.loader.environment("child").resources.gpus == 2
    assert project.loader.environment("other").resources.gpus == "all"


def test_gpus_in_the_schema() -> None:
    result = run_cli("schema", cwd=REPO)
    gpus = json.loads(result.out)["$defs"]["ResourcesFile"]["properties"]["gpus"]
    assert {"const": "all"} in gpus["anyOf"]


def test_specs_without_gpus_render_no_deploy_key(workspace: Path) -> None:
    """Byte-identical for the specs that name no GPU: the golden files of tests/golden/kitchen-sink stay, and
    no compose file of the demo has a `deploy` key."""
    assert run_cli("generate", cwd=workspace).code == 0
    for path in (workspace / "docker").glob("*/compose.yaml"):
        assert "deploy" not in yaml.safe_load(path.read_text())["services"]["jupyter"]


@pytest.fixture
def gpu_sink(workspace: Path) -> Path:
    (workspace / "environments/gpu-sink.toml").write_text(GPU_SINK)
    for value, name in (('"all"', "gpu-all"), ("2", "gpu-two")):
        (workspace / f"environments/{name}.toml").write_text(spec(name, value))
    result = run_cli("devcontainer", "gpu-sink", cwd=workspace)
    assert result.code == 0, result.err
    assert run_cli("generate", cwd=workspace).code == 0
    return workspace


@pytest.mark.parametrize("name", ["compose.yaml", "devcontainer.json"])
def test_golden_gpu_files(gpu_sink: Path, name: str) -> None:
    """A GPU spec's compose file and devcontainer.json, byte for byte (NBENV_UPDATE_GOLDEN=1 refreshes)."""
    where = "docker/gpu-sink" if name == "compose.yaml" else ".devcontainer/gpu-sink"
    actual = (gpu_sink / where / name).read_text()
    golden = GOLDEN / name
    if os.environ.get("NBENV_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert actual == golden.read_text()


def test_docker_compose_config_accepts_the_gpu_files(gpu_sink: Path) -> None:
    """The real Compose v2 parses each form (all, a count, device IDs) into the engine's device request."""
    expected = {"gpu-all": ("count", -1), "gpu-two": ("count", 2), "gpu-sink": ("device_ids", ["0", GPU_SINK_ID])}
    for name, (key, value) in expected.items():
        path = gpu_sink / "docker" / name / "compose.yaml"
        quiet = subprocess.run([*_compose(), "-f", str(path), "config", "--quiet"], capture_output=True, text=True)
        assert quiet.returncode == 0, quiet.stderr
        full = subprocess.run(
            [*_compose(), "-f", str(path), "config", "--format", "json"], capture_output=True, text=True
        )
        assert full.returncode == 0, full.stderr
        (device,) = json.loads(full.stdout)["services"]["jupyter"]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert device[key] == value, device


GPU_SINK_ID = "GPU-8f9c2f1e-1b2c-4d5e-8f90-123456789abc"


@pytest.mark.parametrize(
    ("gpus", "flag"), [(None, None), ("all", "all"), (2, "2"), (("0", GPU_SINK_ID), f'"device=0,{GPU_SINK_ID}"')]
)
def test_nbenv_run_asks_docker_for_the_gpus(gpus: Any, flag: str | None) -> None:
    run = ContainerRun("img", "c", {}, (), "/w", {}, Resources(gpus=gpus), ("true",), DEFAULT)
    argv = docker_run_argv("docker", run)
    assert (argv[argv.index("--gpus") + 1] if "--gpus" in argv else None) == flag


class FailingCompose:
    """compose up fails as dockerd answers on an engine without the NVIDIA runtime."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.downs = 0

    def up(self) -> None:
        raise RunError(self.message)

    def down(self) -> None:
        self.downs += 1


@pytest.mark.fault
@pytest.mark.parametrize(
    "message",
    [
        NO_DRIVER,
        'Error response from daemon: could not select device driver "" with capabilities: [[gpu]]',
    ],
)
def test_no_nvidia_runtime_is_one_line_and_removes_what_started(workspace: Path, message: str) -> None:
    (workspace / "environments/g.toml").write_text(spec("g", "1"))
    env = Project.discover(workspace).loader.environment("g")
    compose = FailingCompose(message)
    with pytest.raises(RunError) as caught:
        lifecycle._compose_up(compose, env=env, port=8888, bind="127.0.0.1")  # type: ignore[arg-type]
    assert caught.value.message == (
        "environments/g.toml: resources.gpus: this Docker engine cannot give containers a GPU (no NVIDIA runtime)"
    )
    assert "NVIDIA Container Toolkit" in (caught.value.hint or "")
    assert compose.downs == 1


def test_other_compose_failures_are_not_called_a_gpu_problem(workspace: Path) -> None:
    (workspace / "environments/g.toml").write_text(spec("g", "1"))
    env = Project.discover(workspace).loader.environment("g")
    with pytest.raises(RunError) as caught:
        lifecycle._compose_up(FailingCompose("no such image"), env=env, port=8888, bind="127.0.0.1")  # type: ignore[arg-type]
    assert caught.value.message == "no such image"


# --- Kubernetes: the nvidia.com/gpu limit ----------------------------------------------------------------


def gpu_profiles(gpus: Any) -> list[Any]:
    return [dataclasses.replace(p, gpus=gpus) for p in demo_profiles()]


@pytest.mark.parametrize(("gpus", "count"), [(1, 1), (4, 4), (("0", "1"), 2)])
def test_kubespawner_gets_the_gpu_limit(gpus: Any, count: int, tmp_path: Path) -> None:
    profiles = gpu_profiles(gpus)
    files = kubernetes.render(profiles, SETTINGS, out_dir=OUT, pointers=_pointers(profiles), run_dirs={})
    values = yaml.safe_load(files[f"{OUT}/values.yaml"])
    pods = pod_manifests(values, tmp_path)
    for pod in pods.values():
        (notebook,) = pod["spec"]["containers"]
        assert str(notebook["resources"]["limits"]["nvidia.com/gpu"]) == str(count)
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    for path, text in files.items():
        if "/jobs/" in path:
            job = list(yaml.safe_load_all(text))[-1]
            (container,) = job["spec"]["template"]["spec"]["containers"]
            assert container["resources"]["limits"]["nvidia.com/gpu"] == str(count)
            kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def _pointers(profiles: list[Any]) -> dict[str, str]:
    from tests.unit.test_hub_kubernetes import demo_pointers

    return demo_pointers(profiles)


@pytest.mark.badinput
def test_all_gpus_has_no_kubernetes_form() -> None:
    profiles = gpu_profiles("all")
    with pytest.raises(SpecError) as caught:
        kubernetes.render(profiles, SETTINGS, out_dir=OUT, pointers=_pointers(profiles), run_dirs={})
    assert 'resources.gpus = "all" has no Kubernetes equivalent' in caught.value.message
    with pytest.raises(SpecError):
        run_job(profiles[0], RESOLVED, {}, timeout=60)


def test_profiles_without_gpus_get_no_gpu_limit() -> None:
    profiles = demo_profiles()
    files = kubernetes.render(profiles, SETTINGS, out_dir=OUT, pointers=_pointers(profiles), run_dirs={})
    assert "nvidia.com/gpu" not in "".join(files.values())


@pytest.mark.badinput
@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**6), 10**6),
        st.text(max_size=20),
        st.booleans(),
        st.floats(allow_nan=True),
        st.lists(st.one_of(st.text(max_size=140), st.integers()), max_size=70),
    )
)
def test_any_gpus_value_is_accepted_exactly_when_valid(value: Any) -> None:
    """Every TOML-expressible value: accepted and normalised when it is "all", 1-64 or 1-64 distinct IDs of the
    grammar; otherwise one line of error (nothing that reaches YAML, JSON or `docker run` unvalidated)."""
    valid = (
        value == "all"
        if isinstance(value, str)
        else (1 <= value <= GPUS_MAX)
        if isinstance(value, int) and not isinstance(value, bool)
        else isinstance(value, list)
        and 1 <= len(value) <= GPUS_MAX
        and all(isinstance(v, str) and GPU_ID_RE.fullmatch(v) for v in value)
        and len(set(value)) == len(value)
    )
    try:
        parsed = ResourcesFile.model_validate({"gpus": value}).gpus
    except ValidationError as exc:
        assert not valid, value
        (error,) = exc.errors()
        assert "\n" not in error["msg"]
        return
    assert valid, value
    assert parsed == (tuple(value) if isinstance(value, list) else value)
