"""nbenv.hub.kubernetes: the Zero to JupyterHub values, the dvc-pull init container and the Jobs of `nbenv run`.

No Kubernetes cluster is reachable here, so the proof is offline and uses the real components: each
generated profile is applied by the real KubeSpawner (jupyterhub-kubespawner, its own `load_user_options`
and `get_pod_manifest`, as its test-suite does without a cluster: a mock user, a kubeconfig that names a
server nobody contacts) and the pod manifests it makes, like the Job, ConfigMap and PVC manifests nbenv
writes, are validated against the Kubernetes schemas of kubernetes-validate (strict: unknown fields fail).
Golden files keep all of them; refresh with NBENV_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbenv.dvc_outs import tracked_outputs
from nbenv.errors import SpecError
from nbenv.hub import kubernetes
from nbenv.hub.k8s_objects import DATA_VOLUME, KubernetesSettings
from nbenv.hub.profiles import DataMount, HubProfile, profile
from nbenv.project import Project
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden" / "kubernetes"
OUT = "docker/hub/kubernetes"  # where `nbenv hub generate` writes them under the default generated_dir
K8S_VERSION = "1.33.0"  # the schemas kubernetes-validate 1.37 bundles for this Kubernetes release
DIGEST = "sha256:" + "ab" * 32
SETTINGS = KubernetesSettings(dvc_remote="s3://team-data/nbenv", dvc_endpoint_url="https://minio.example:9000")
SECRET_VALUE = "nbenv-test-Secret-Value-0123456789"
RUN_DIRS = {"traffic-analysis": "/home/jovyan/work/notebooks"}  # where the demo's notebook lies under `up`
RESOLVED = kubernetes.resolve(SETTINGS, image_prefix="nbenv", base_image="nbenv/debian-python:bookworm")


def demo_profiles() -> list[HubProfile]:
    """The demo's two environments (local content-key tags) and a pushed variant pinned by digest, with
    CPUs and nbenv's own server."""
    project = Project.discover(REPO)
    profiles = [profile(project.plan(n), image=f"nbenv/{n}:ck-0123456789abcdef") for n in ("base", "traffic-analysis")]
    pushed = dataclasses.replace(
        profiles[1],
        name="pinned",
        display_name="Pinned (by digest)",
        image=f"registry.example:5000/team/traffic-analysis@{DIGEST}",
        kernel="pinned",
        cpus=1.5,
        memory="512m",
        shm_size=None,
        data=(DataMount("data/processed/pems", "/data/pems"),),
        nbenv_server=True,
        # What KubeSpawner formats ({username}) and Kubernetes expands ($(VAR), $$) must arrive as written.
        environment=(("GREETING", 'a "q" {username} $(HOME) $$ $'), ("TZ", "UTC")),
        default_url="/lab/tree/a$(HOME)%U.ipynb?reset",
    )
    return [*profiles, pushed]


def demo_pointers(profiles: Sequence[HubProfile]) -> dict[str, str]:
    outputs = tracked_outputs(REPO)
    return {p: (REPO / p).read_text(encoding="utf-8") for p in kubernetes.pointer_files(profiles, outputs)}


@pytest.fixture(scope="module")
def profiles() -> list[HubProfile]:
    return demo_profiles()


@pytest.fixture(scope="module")
def files(profiles: list[HubProfile]) -> dict[str, str]:
    return kubernetes.render(profiles, SETTINGS, out_dir=OUT, pointers=demo_pointers(profiles), run_dirs=RUN_DIRS)


def documents(files: Mapping[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, text in files.items():
        if not path.endswith(".yaml"):
            continue
        for document in yaml.safe_load_all(text):
            yield path, document


# --- KubeSpawner, offline ------------------------------------------------------------------------

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],  # never contacted
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "nobody"}}],
    "current-context": "offline",
    "users": [{"name": "nobody", "user": {}}],
}


def pod_manifests(values: Mapping[str, Any], tmp: Path) -> dict[str, dict[str, Any]]:
    """{slug: the pod manifest KubeSpawner makes for user alice choosing that profile}."""
    from jupyterhub.objects import Hub, Server
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    class MockUser(Mock):  # as kubespawner's own tests/test_spawner.py
        name = "alice"
        server = Server(ip="", connect_ip="jupyter-alice", port=8888, base_url="/user/alice/")

        @property
        def escaped_name(self) -> str:
            return self.name

        @property
        def url(self) -> str:
            return str(self.server.url)

    class MockOrmSpawner(Mock):
        name = ""
        server = None

    profile_list = values["singleuser"]["profileList"]

    async def spawn(slug: str) -> dict[str, Any]:
        config = Config()
        config.KubeSpawner.namespace = "nbenv"
        config.KubeSpawner.profile_list = profile_list
        # What the chart's jupyterhub_config.py sets from the values nbenv writes.
        config.KubeSpawner.uid = values["singleuser"]["uid"]
        config.KubeSpawner.fs_gid = values["singleuser"]["fsGid"]
        spawner = KubeSpawner(
            hub=Hub(ip="hub", port=8081, base_url="/hub/"),
            config=config,
            user=MockUser(),
            orm_spawner=MockOrmSpawner(),
            _mock=True,
        )
        try:
            spawner.user_options = {"profile": slug}
            await spawner.load_user_options()
            pod = await spawner.get_pod_manifest()
            pvc = spawner.get_pvc_manifest()
            async with ApiClient() as api:
                manifest: dict[str, Any] = api.sanitize_for_serialization(pod)
                claim: dict[str, Any] = api.sanitize_for_serialization(pvc)
            assert claim["spec"]["resources"]["requests"]["storage"] == SETTINGS.work_size
            return manifest
        finally:
            await spawner.api.api_client.close()

    # kubespawner loads the default kubeconfig once (kubernetes_asyncio reads $KUBECONFIG at import): point
    # that default at ours for the call.
    from kubernetes_asyncio.config import kube_config
    from kubespawner import clients

    config_file = tmp / "kubeconfig"
    config_file.write_text(yaml.safe_dump(KUBECONFIG))
    old = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(config_file)
    clients.load_config.cache_clear()
    try:
        return {entry["slug"]: asyncio.run(spawn(entry["slug"])) for entry in profile_list}
    finally:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = old
        clients.load_config.cache_clear()


@pytest.fixture(scope="module")
def pods(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    values = yaml.safe_load(files[f"{OUT}/values.yaml"])
    return pod_manifests(values, tmp_path_factory.mktemp("kube"))


def test_kubespawner_applies_each_profile(pods: dict[str, dict[str, Any]], profiles: list[HubProfile]) -> None:
    assert sorted(pods) == sorted(p.name for p in profiles)
    for p in profiles:
        pod = pods[p.name]
        (notebook,) = pod["spec"]["containers"]
        assert notebook["image"] == p.image
        assert notebook["imagePullPolicy"] == ("IfNotPresent" if "@sha256:" in p.image else "Never")
        assert notebook["args"] == ["jupyterhub-singleuser", f"--MappingKernelManager.default_kernel_name={p.kernel}"]
        mounts = {m["mountPath"]: m for m in notebook["volumeMounts"]}
        assert mounts[p.work_dir]["name"] == "nbenv-work"
        order = list(mounts)
        for i, path in enumerate(order):  # a mount never comes before one of its parents (HOME, the work)
            assert not [later for later in order[i + 1 :] if path.startswith(later + "/")], order
        claims = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
        assert claims == [{"name": "nbenv-work", "persistentVolumeClaim": {"claimName": "claim-alice"}}]
        for d in p.data:
            assert mounts[d.target] == {"name": DATA_VOLUME, "mountPath": d.target, "subPath": d.path, "readOnly": True}
        inits = pod["spec"].get("initContainers", [])
        assert [c["args"] for c in inits] == ([[d.path for d in p.data]] if p.data else [])
        if p.memory:
            assert notebook["resources"]["limits"]["memory"] > 0
        assert pod["spec"]["securityContext"]["fsGroup"] == SETTINGS.gid
        env = container_env(notebook)
        for key, value in p.environment:
            assert env[key] == value, "the spec's [env] as written, after KubeSpawner and Kubernetes"
        assert env["JUPYTERHUB_DEFAULT_URL"] == p.default_url.replace("%U", "%25U"), "the spec's start page"


def k8s_expand(value: str, env: Mapping[str, str]) -> str:
    """What Kubernetes does to a container's env value (third_party/forked/golang/expansion): `$$` is `$`,
    `$(NAME)` the value of an earlier variable (left as it is when there is none)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and (end := value.find(")", i)) != -1:
            out.append(env.get(value[i + 2 : end], value[i : end + 1]))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment as its process sees it (HOME from the image, as a $(HOME) would expand)."""
    seen = {"HOME": "/home/jovyan"}
    for item in container.get("env", []):
        seen[item["name"]] = k8s_expand(item["value"], seen)
    return seen


def validate(manifest: Mapping[str, Any]) -> None:
    kubernetes_validate.validate(dict(manifest), K8S_VERSION, strict=True)


def test_pod_manifests_are_valid_kubernetes(pods: dict[str, dict[str, Any]]) -> None:
    for pod in pods.values():
        validate(pod)


def test_generated_manifests_are_valid_kubernetes(files: dict[str, str]) -> None:
    kinds = []
    for path, document in documents(files):
        if path.endswith("values.yaml"):
            continue
        validate(document)
        kinds.append(document["kind"])
    assert sorted(set(kinds)) == ["ConfigMap", "Job", "PersistentVolumeClaim"]
    assert kinds.count("Job") == 3


def test_the_validator_rejects_a_broken_manifest(files: dict[str, str]) -> None:
    """The offline validation can fail: a Job with an unknown field and a string deadline is refused."""
    job = next(d for _, d in documents(files) if d.get("kind") == "Job")
    broken = json.loads(json.dumps(job))
    broken["spec"]["activeDeadlineSeconds"] = "soon"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = json.loads(json.dumps(job))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged_"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_job_runs_the_driver_with_the_deadline(files: dict[str, str], profiles: list[HubProfile]) -> None:
    for p in profiles:
        configmap, job = yaml.safe_load_all(files[f"{OUT}/jobs/{p.name}.yaml"])
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] == SETTINGS.pull_seconds + SETTINGS.run_timeout + 90
        driver = json.loads(configmap["data"]["job.json"])
        assert driver["kernel"] == p.kernel and driver["timeout"] == SETTINGS.run_timeout
        assert configmap["data"]["driver.py"] == (REPO / "nbenv/inimage/run_driver.py").read_text()
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == p.image
        python = "/opt/nbenv/server/bin/python" if p.nbenv_server else "python"
        assert container["command"] == [python, "-u", "/run/nbenv/driver/driver.py", "/run/nbenv/driver/job.json"]
        where = RUN_DIRS.get(p.name, p.work_dir)
        assert (driver["cwd"], driver["output"]) == (where, f"{where}/output.ipynb")
        assert container["workingDir"] == where
        out = next(m for m in container["volumeMounts"] if m["mountPath"] == where)
        assert out["subPath"] == f"nbenv-run-{p.name}" and not out.get("readOnly")
        claim = next(v for v in pod["volumes"] if v["name"] == out["name"])
        assert claim["persistentVolumeClaim"]["claimName"] == SETTINGS.runs_claim
        # As under `nbenv run`: the spec's [env], then nbenv's own.
        assert container_env(container) == {
            "HOME": "/home/jovyan",
            **dict(p.environment),
            "PYTHONDONTWRITEBYTECODE": "1",
        }


def test_run_job_for_one_notebook() -> None:
    p = demo_profiles()[1]
    configmap, job = kubernetes.run_job(p, RESOLVED, {}, timeout=120, run="weekly")
    assert job["metadata"]["name"] == configmap["metadata"]["name"] == "nbenv-run-traffic-analysis-weekly"
    assert job["spec"]["activeDeadlineSeconds"] == SETTINGS.pull_seconds + 120 + 90
    validate(job)
    validate(configmap)


def test_pointer_configmap_projects_the_script_and_the_pointers(files: dict[str, str]) -> None:
    (configmap,) = yaml.safe_load_all(files[f"{OUT}/dvc-configmap.yaml"])
    assert json.loads(configmap["data"]["pointers.json"]) == ["dvc.lock", "dvc.yaml"]
    assert configmap["data"]["dvc_pull.py"] == (REPO / "nbenv/inimage/dvc_pull.py").read_text()
    _, job = yaml.safe_load_all(files[f"{OUT}/jobs/traffic-analysis.yaml"])
    volume = next(
        v for v in job["spec"]["template"]["spec"]["volumes"] if "configMap" in v and v["name"] == "nbenv-dvc"
    )
    projected = {item["key"] for item in volume["configMap"]["items"]}
    assert projected == set(configmap["data"]), "every key the init container reads is projected"


# --- golden files -----------------------------------------------------------------------------------


def _golden(name: str, actual: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("NBENV_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")


def test_golden_files(files: dict[str, str]) -> None:
    """The generated files, byte for byte."""
    shown = {path: text for path, text in files.items() if not path.endswith("requirements.txt")}  # shipped pins
    for path, text in shown.items():
        _golden(path.removeprefix(OUT + "/"), text)
    listed = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert {n for n in listed if not n.startswith("pod-")} == {p.removeprefix(OUT + "/") for p in shown}


def test_golden_pod_manifests(pods: dict[str, dict[str, Any]]) -> None:
    """What KubeSpawner 7.1 makes of each profile (its version annotation is part of the golden)."""
    for slug, pod in pods.items():
        _golden(f"pod-{slug}.yaml", yaml.safe_dump(pod, sort_keys=True))


# --- security --------------------------------------------------------------------------------------


def _containers(manifest: Mapping[str, Any]) -> list[tuple[bool, dict[str, Any]]]:
    spec = manifest["spec"]["template"]["spec"] if manifest["kind"] == "Job" else manifest["spec"]
    return [(True, c) for c in spec.get("initContainers", [])] + [(False, c) for c in spec["containers"]]


@pytest.mark.security
def test_every_container_is_confined(files: dict[str, str], pods: dict[str, dict[str, Any]]) -> None:
    """No privilege escalation, no capabilities, never root, a read-only root, in every pod and Job;
    the data volume is mounted read-only everywhere but in the init container that pulls it."""
    manifests = [*pods.values(), *(d for _, d in documents(files) if d.get("kind") == "Job")]
    assert len(manifests) == 6
    checked = 0
    for manifest in manifests:
        spec = manifest["spec"]["template"]["spec"] if manifest["kind"] == "Job" else manifest["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["fsGroup"] == SETTINGS.gid
        assert spec.get("automountServiceAccountToken") is False
        for init, container in _containers(manifest):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsNonRoot"] is True and context["runAsUser"] == SETTINGS.uid != 0
            assert context["readOnlyRootFilesystem"] is True
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "privileged" not in context or context["privileged"] is False
            for mount in container.get("volumeMounts", []):
                if mount["name"] == DATA_VOLUME:
                    assert init or mount["readOnly"] is True
            checked += 1
    assert checked == 10  # 6 notebook containers, 4 init containers (the pods and Jobs with data)


@pytest.mark.security
def test_credentials_are_only_a_secret_reference(
    profiles: list[HubProfile], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Credentials in the environment never reach a generated file: the init container gets the Secret's
    keys through envFrom, and no env entry with a credential-like name carries a value."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.setenv(name, SECRET_VALUE)
    files = kubernetes.render(profiles, SETTINGS, out_dir=OUT, pointers=demo_pointers(profiles))
    pods = pod_manifests(yaml.safe_load(files[f"{OUT}/values.yaml"]), tmp_path)
    texts = [*files.values(), *(json.dumps(p) for p in pods.values())]
    assert not [t for t in texts if SECRET_VALUE in t]
    values = yaml.safe_load(files[f"{OUT}/values.yaml"])
    overrides = [e["kubespawner_override"] for e in values["singleuser"]["profileList"]]
    jobs = [d["spec"]["template"]["spec"] for _, d in documents(files) if d.get("kind") == "Job"]
    inits = [c for o in overrides for c in o.get("init_containers", [])]
    inits += [c for spec in jobs for c in spec.get("initContainers", [])]
    assert len(inits) == 4
    for container in inits:
        assert container["envFrom"] == [{"secretRef": {"name": SETTINGS.s3_secret}}]
        names = [e["name"] for e in container["env"]]
        assert not [n for n in names if any(w in n for w in ("KEY", "SECRET", "TOKEN", "PASSWORD"))]


@pytest.mark.security
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=80),
)
def test_hostile_text_lands_as_data(text: str) -> None:
    """A display name or description (validated upstream: no control characters) is YAML data,
    whatever it holds: `: `, `- `, `{{ }}`, quotes, `#`, anchors; it reads back exactly."""
    p = dataclasses.replace(demo_profiles()[0], display_name=text or "x", description=text)
    values = yaml.safe_load(kubernetes.render([p], SETTINGS, out_dir=OUT, pointers={})[f"{OUT}/values.yaml"])
    (entry,) = values["singleuser"]["profileList"]
    assert (entry["display_name"], entry["description"]) == (text or "x", text)
    assert set(entry) == {"display_name", "slug", "description", "default", "kubespawner_override"}


# --- bad input -------------------------------------------------------------------------------------

BAD_SETTINGS: list[tuple[str, object]] = [
    ("namespace", "Team"),
    ("namespace", "a" * 64),
    ("namespace", "-team"),
    ("namespace", "team\nx: 1"),
    ("namespace", ""),
    ("s3_secret", "creds/aws"),
    ("s3_secret", "Creds"),
    ("runs_claim", "runs claim"),
    ("storage_class", "fast_ssd"),
    ("dvc_remote", "http://bucket/path"),
    ("dvc_remote", "s3://key:secret@bucket/path"),
    ("dvc_remote", "s3://bucket/path?x=1"),
    ("dvc_remote", "s3://bucket/../other"),
    ("dvc_remote", "s3://bucket/a b"),
    ("dvc_endpoint_url", "https://user:pw@minio:9000"),
    ("dvc_endpoint_url", "ftp://minio"),
    ("dvc_endpoint_url", "https://minio:9000\n"),
    ("puller_image", "Bad Image"),
    ("puller_image", "nbenv/puller:latest; rm -rf /"),
    ("image_pull_policy", "Sometimes"),
    ("data_size", "10GB"),
    ("data_size", "-1Gi"),
    ("data_size", "1e3"),
    ("work_size", ""),
    ("runs_size", "10 Gi"),
    ("uid", 0),
    ("uid", -1),
    ("uid", True),
    ("uid", "1000"),
    ("uid", 2**31),
    ("gid", -5),
    ("run_timeout", 0),
    ("run_timeout", 1.5),
    ("pull_seconds", -1),
    ("request_fraction", 0),
    ("request_fraction", 1.5),
    ("request_fraction", math.nan),
    ("request_fraction", "half"),
]


def _one_line(exc: SpecError) -> str:
    assert "\n" not in exc.message and (exc.hint is None or "\n" not in exc.hint)
    return exc.message


@pytest.mark.badinput
@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
def test_bad_settings_fail_with_one_line(profiles: list[HubProfile], field: str, value: object) -> None:
    bad = dataclasses.replace(SETTINGS, **{field: value})
    with pytest.raises(SpecError) as caught:
        kubernetes.render(profiles, bad, out_dir=OUT, pointers=demo_pointers(profiles))
    assert _one_line(caught.value).startswith(f"pyproject.toml: tool.nbenv.hub.kubernetes.{field}: ")


@pytest.mark.badinput
@pytest.mark.parametrize(
    "name",
    ["my_env", "a" * 54, "x" * 63, "traffic_analysis_2"],
)
def test_names_that_are_not_dns_1123_fail_with_one_line(profiles: list[HubProfile], name: str) -> None:
    """Environment names may hold '_' and 63 characters; Kubernetes names may not (nbenv-run-NAME too)."""
    bad = dataclasses.replace(profiles[0], name=name, kernel=name)
    with pytest.raises(SpecError) as caught:
        kubernetes.render([bad], SETTINGS, out_dir=OUT, pointers={})
    line = _one_line(caught.value)
    assert line.startswith(f"environments/{name}.toml: name: ") and "DNS-1123" in line


@pytest.mark.badinput
def test_data_without_a_remote_fails_with_one_line(profiles: list[HubProfile]) -> None:
    with pytest.raises(SpecError) as caught:
        kubernetes.render(profiles, dataclasses.replace(SETTINGS, dvc_remote=""), out_dir=OUT, pointers={})
    assert _one_line(caught.value).startswith("pyproject.toml: tool.nbenv.hub.kubernetes.dvc_remote: missing")
    kubernetes.render(
        profiles[:1], dataclasses.replace(SETTINGS, dvc_remote=""), out_dir=OUT, pointers={}
    )  # no data: fine


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("case", "call"),
    [
        ("pointer path", lambda p: kubernetes.render(p, SETTINGS, out_dir=OUT, pointers={"../etc/passwd": "x"})),
        ("absolute pointer", lambda p: kubernetes.render(p, SETTINGS, out_dir=OUT, pointers={"/dvc.lock": "x"})),
        (
            "data path",
            lambda p: kubernetes.render([_with_data(p[1], "../../etc", "/data/x")], SETTINGS, out_dir=OUT, pointers={}),
        ),
        (
            "data target",
            lambda p: kubernetes.render(
                [_with_data(p[1], "data/x", "/data/../etc")], SETTINGS, out_dir=OUT, pointers={}
            ),
        ),
        (
            "work_dir",
            lambda p: kubernetes.render(
                [dataclasses.replace(p[0], work_dir="work")], SETTINGS, out_dir=OUT, pointers={}
            ),
        ),
        ("twice", lambda p: kubernetes.render([p[0], p[0]], SETTINGS, out_dir=OUT, pointers={})),
        ("none", lambda p: kubernetes.render([], SETTINGS, out_dir=OUT, pointers={})),
        ("timeout", lambda p: kubernetes.run_job(p[0], RESOLVED, {}, timeout=0)),
        ("run name", lambda p: kubernetes.run_job(p[0], RESOLVED, {}, timeout=5, run="Weekly Report")),
        ("cwd in data", lambda p: kubernetes.run_job(p[1], RESOLVED, {}, timeout=5, cwd=p[1].data[0].target + "/x")),
        ("cwd in io", lambda p: kubernetes.run_job(p[0], RESOLVED, {}, timeout=5, cwd="/run/nbenv/input")),
        ("cwd relative", lambda p: kubernetes.run_job(p[0], RESOLVED, {}, timeout=5, cwd="notebooks")),
        ("cwd dotdot", lambda p: kubernetes.run_job(p[0], RESOLVED, {}, timeout=5, cwd="/home/jovyan/../../etc")),
        ("unresolved", lambda p: kubernetes.run_job(p[1], SETTINGS, {}, timeout=5)),
        (
            "image prefix",
            lambda p: kubernetes.render(p, SETTINGS, out_dir=OUT, pointers={}, image_prefix="Team Images"),
        ),
        ("base image", lambda p: kubernetes.render(p, SETTINGS, out_dir=OUT, pointers={}, base_image="FROM x")),
    ],
)
def test_bad_paths_and_runs_fail_with_one_line(profiles: list[HubProfile], case: str, call: Any) -> None:
    with pytest.raises(SpecError) as caught:
        call(profiles)
    _one_line(caught.value)


def _with_data(p: HubProfile, path: str, target: str) -> HubProfile:
    return dataclasses.replace(p, data=(DataMount(path, target),))
