"""Pure building blocks of nbenv's Kubernetes objects: the settings and their checks, names, quantities,
the security contexts, and the data-puller init container that the hub's pods and `nbenv run`'s Jobs share.

Every value that reaches a manifest is checked here against its grammar (DNS-1123 names, quantities,
image references, the S3 URL) and fails with one line; the manifests are plain dicts that
`nbenv.hub.kubernetes` dumps with yaml.safe_dump, never a template.

**The data.** An init container runs `dvc pull` into an emptyDir volume (`nbenv-data`, sized by
`data_size`); the notebook container mounts each data path of it read-only (`subPath`) at the same
container path as under `nbenv up`. The init container's image is a small data-puller (`puller_image`:
Python with nbenv's pinned dvc[s3], see docs/kubernetes.md); the repository's DVC pointer files
(dvc.yaml, dvc.lock, *.dvc: a few KiB) and the pull script (nbenv/inimage/dvc_pull.py) come in a ConfigMap
that nbenv renders (`nbenv-dvc`), mounted read-only. Why a ConfigMap and not pointers baked into the
image: the puller image then depends only on nbenv's dvc pins and never needs a rebuild when the data
changes; a data update is a `kubectl apply` of the ConfigMap, reviewed in git like any generated file.
S3 credentials reach the puller only as a reference to a Secret (`envFrom.secretRef`), never a value.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbenv.constants import USER_GID, USER_HOME, USER_UID
from nbenv.errors import SpecError
from nbenv.spec.models import IMAGE_REF_RE, SIZE_RE, Gpus, gpu_count

SETTINGS = "pyproject.toml: tool.nbenv.hub.kubernetes"  # where the settings come from (error messages)
DNS1123_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")
QUANTITY_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
# Path segments are never `.` or `..`.
S3_URL_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)*/?$")
ENDPOINT_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]*)*$")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
REPO_PATH_RE = re.compile(r"^[A-Za-z0-9._+-]+(?:/[A-Za-z0-9._+-]+)*$")
MAX_ID = 2**31 - 1

# Where things are inside the pods.
DATA_VOLUME = "nbenv-data"  # the emptyDir the init container pulls into
DVC_VOLUME = "nbenv-dvc"  # the ConfigMap with the pointer files and the pull script
DVC_CONFIGMAP = "nbenv-dvc"
PULL_ROOT = "/nbenv/data"  # the DVC workspace (the data volume) inside the init container
POINTERS_DIR = "/nbenv/dvc"
PULL_SCRIPT = "dvc_pull.py"  # nbenv/inimage/dvc_pull.py, delivered as a ConfigMap key
POINTER_LIST = "pointers.json"


@dataclass(frozen=True)
class KubernetesSettings:
    """`[tool.nbenv.hub.kubernetes]`: every field has a default; `dvc_remote` is needed once a profile has data."""

    namespace: str = "nbenv"
    dvc_remote: str = ""  # s3://BUCKET/PATH: where the init container pulls the data from
    dvc_endpoint_url: str = ""  # an S3-compatible endpoint (MinIO, Ceph); "" for AWS itself
    s3_secret: str = "nbenv-dvc-s3"  # a Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    puller_image: str = ""  # python3 + dvc[s3]; "" = the one nbenv renders (nbenv.hub.dvc_puller), by its ck- tag
    image_pull_policy: str = ""  # "" = by the image: IfNotPresent for a digest, Never for a local ck- tag
    data_size: str = "10Gi"  # sizeLimit of the data volume (emptyDir) of each pod
    work_size: str = "10Gi"  # each user's own PVC (their work)
    storage_class: str = ""  # of the users' and the runs' PVCs; "" = the cluster's default
    runs_claim: str = "nbenv-runs"  # the PVC the executed notebooks of Jobs are saved to
    runs_size: str = "10Gi"
    run_timeout: int = 3600  # seconds, for the rendered Job of each environment (like `nbenv run --timeout`)
    pull_seconds: int = 600  # what a Job's deadline allows for the data pull, on top of the timeout
    uid: int = USER_UID  # the image's user (nbenv.constants): the servers never run as root
    gid: int = USER_GID
    request_fraction: float = 0.25  # requests (guarantees) = this fraction of [resources] limits


def fail(field: str, what: str, hint: str | None = None) -> SpecError:
    return SpecError(f"{SETTINGS}.{field}: {what}", hint)


def _check(ok: bool, field: str, value: object, grammar: str) -> None:
    if not ok:
        raise fail(field, f"{value!r} is not {grammar}")


def check_settings(s: KubernetesSettings) -> None:
    """Each setting against its grammar (one line for the first bad one)."""
    for field, value in (("namespace", s.namespace),):
        _check(_is_str(value) and bool(DNS1123_LABEL_RE.fullmatch(value)), field, value, _LABEL)
    for field, value in (("s3_secret", s.s3_secret), ("runs_claim", s.runs_claim)):
        ok = _is_str(value) and len(value) <= 253 and bool(DNS1123_SUBDOMAIN_RE.fullmatch(value))
        _check(ok, field, value, "a DNS-1123 name (lowercase letters, digits, '-' and '.', at most 253)")
    if s.storage_class:
        ok = _is_str(s.storage_class) and len(s.storage_class) <= 253
        _check(ok and bool(DNS1123_SUBDOMAIN_RE.fullmatch(s.storage_class)), "storage_class", s.storage_class, _NAME)
    if s.dvc_remote:
        _check(_is_str(s.dvc_remote) and bool(S3_URL_RE.fullmatch(s.dvc_remote)), "dvc_remote", s.dvc_remote, _S3)
    if s.dvc_endpoint_url:
        ok = _is_str(s.dvc_endpoint_url) and len(s.dvc_endpoint_url) <= 512
        _check(ok and bool(ENDPOINT_RE.fullmatch(s.dvc_endpoint_url)), "dvc_endpoint_url", s.dvc_endpoint_url, _URL)
    if s.puller_image != "":
        ok = _is_str(s.puller_image) and len(s.puller_image) <= 255 and bool(IMAGE_REF_RE.fullmatch(s.puller_image))
        _check(ok, "puller_image", s.puller_image, "an image reference (e.g. 'registry:5000/team/dvc-puller@sha256:…')")
    if s.image_pull_policy:
        _check(s.image_pull_policy in PULL_POLICIES, "image_pull_policy", s.image_pull_policy, _POLICY)
    for field, value in (("data_size", s.data_size), ("work_size", s.work_size), ("runs_size", s.runs_size)):
        _check(_is_str(value) and bool(QUANTITY_RE.fullmatch(value)), field, value, _QUANTITY)
    for field, number, low, high in (
        ("uid", s.uid, 1, MAX_ID),  # never 0: the servers run as a user (runAsNonRoot)
        ("gid", s.gid, 0, MAX_ID),
        ("run_timeout", s.run_timeout, 1, 7 * 24 * 3600),
        ("pull_seconds", s.pull_seconds, 0, 24 * 3600),
    ):
        ok = isinstance(number, int) and not isinstance(number, bool) and low <= number <= high
        _check(ok, field, number, f"an integer from {low} to {high}")
    fraction = s.request_fraction
    ok = isinstance(fraction, int | float) and not isinstance(fraction, bool) and 0 < fraction <= 1
    _check(ok and math.isfinite(fraction), "request_fraction", fraction, "a number above 0 and at most 1")


_LABEL = "a DNS-1123 label (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)"
_NAME = "a DNS-1123 name"
_S3 = "an S3 URL like 's3://bucket/path' (no credentials, no query)"
_URL = "an http(s) URL like 'https://minio.example:9000' (no credentials, no query)"
_POLICY = f"one of {', '.join(PULL_POLICIES)} (or empty: decided by the image)"
_QUANTITY = "a Kubernetes quantity like '10Gi' or '500M'"


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def k8s_name(prefix: str, name: str, *, where: str = "") -> str:
    """`PREFIX-NAME` as a DNS-1123 label (Jobs, ConfigMaps and the pods' labels take it), or one line why
    not; `where` names the input (default: the environment's spec, NAME being the environment's name)."""
    full = f"{prefix}-{name}" if prefix else name
    if len(full) > 63 or not DNS1123_LABEL_RE.fullmatch(full):
        raise SpecError(
            f"{where or f'environments/{name}.toml: name'}: {name!r} gives the Kubernetes name {full!r}, "
            f"which is not {_LABEL}",
            None if where else "rename the environment: '-' instead of '_', at most 50 characters",
        )
    return full


def repo_path(path: str, what: str) -> str:
    """A repository-relative path used as a subPath or a ConfigMap item: no '..', not absolute."""
    if not REPO_PATH_RE.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise SpecError(f"{path}: {what}: not a plain repository-relative path")
    return path


def container_path(path: str, what: str) -> str:
    if not path.startswith("/") or posixpath.normpath(path) != path or not REPO_PATH_RE.fullmatch(path[1:]):
        raise SpecError(f"{path}: {what}: not a plain absolute container path")
    return path


def docker_bytes(size: str) -> int:
    """Docker's size notation (`4g`, `512m`, 1024-based; validated by the spec) in bytes."""
    if not SIZE_RE.fullmatch(size):
        raise SpecError(f"resources: {size!r} is not a size like '4g'")
    unit = size[-1] if size[-1] in "bkmg" else "b"
    number = float(size.rstrip("bkmg"))
    return int(number * 1024 ** "bkmg".index(unit))


def k8s_literal(value: str) -> str:
    """`value` as a container's env value (or command, args) in which Kubernetes expands no `$(VAR)`:
    it reads `$$` as `$`."""
    return value.replace("$", "$$")


def millicores(cpus: float) -> str:
    return f"{max(1, round(cpus * 1000))}m"


def pull_policy(image: str, settings: KubernetesSettings) -> str:
    """A digest never changes: IfNotPresent. A local content-key tag (`nbenv/NAME:ck-KEY`) exists only
    where it was loaded into the node: Never, so a same-named image elsewhere is never pulled in its place."""
    if settings.image_pull_policy:
        return settings.image_pull_policy
    return "IfNotPresent" if "@sha256:" in image else "Never"


def container_security(settings: KubernetesSettings) -> dict[str, Any]:
    """Every container: the image user, no privilege escalation, no capabilities, a read-only root."""
    return {
        "runAsUser": settings.uid,
        "runAsGroup": settings.gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(settings: KubernetesSettings) -> dict[str, Any]:
    """The pod: fsGroup makes the volumes (the user's PVC, the data) the image group's."""
    return {
        "runAsUser": settings.uid,
        "runAsGroup": settings.gid,
        "fsGroup": settings.gid,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def empty_dir(name: str, size: str | None = None, *, memory: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if memory:
        spec["medium"] = "Memory"
    if size is not None:
        spec["sizeLimit"] = size
    return {"name": name, "emptyDir": spec}


def data_volumes(settings: KubernetesSettings, pointer_items: Mapping[str, str]) -> list[dict[str, Any]]:
    """The data volume and the DVC ConfigMap (key -> repository path, so the pointers land at their paths)."""
    # A ConfigMap volume with `items` projects only those keys: the script and the list too.
    items = [{"key": key, "path": path} for key, path in pointer_items.items()]
    items += [{"key": key, "path": key} for key in (POINTER_LIST, PULL_SCRIPT)]
    return [
        empty_dir(DATA_VOLUME, settings.data_size),
        {"name": DVC_VOLUME, "configMap": {"name": DVC_CONFIGMAP, "items": items, "defaultMode": 0o444}},
        empty_dir("nbenv-pull-tmp"),
    ]


def puller(targets: tuple[str, ...], settings: KubernetesSettings) -> dict[str, Any]:
    """The init container: `dvc pull TARGETS` from the S3 remote into the data volume, as the image user."""
    if not settings.puller_image:
        raise SpecError(f"{SETTINGS}.puller_image: not resolved (nbenv.hub.kubernetes.resolve fills it in)")
    env = [
        {"name": "NBENV_DVC_REMOTE", "value": settings.dvc_remote},
        {"name": "HOME", "value": "/tmp"},
        {"name": "DVC_NO_ANALYTICS", "value": "1"},
    ]
    if settings.dvc_endpoint_url:
        env.append({"name": "NBENV_DVC_ENDPOINT_URL", "value": settings.dvc_endpoint_url})
    return {
        "name": "dvc-pull",
        "image": settings.puller_image,
        "imagePullPolicy": pull_policy(settings.puller_image, settings),
        "command": ["python3", f"{POINTERS_DIR}/{PULL_SCRIPT}", f"{POINTERS_DIR}/{POINTER_LIST}", PULL_ROOT],
        "args": [repo_path(t, "data") for t in targets],
        "env": env,
        # The credentials: only a reference to the Secret (its keys become the environment).
        "envFrom": [{"secretRef": {"name": settings.s3_secret}}],
        "securityContext": container_security(settings),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": PULL_ROOT},
            {"name": DVC_VOLUME, "mountPath": POINTERS_DIR, "readOnly": True},
            {"name": "nbenv-pull-tmp", "mountPath": "/tmp"},
        ],
    }


def data_mounts(data: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """The notebook container's view of the data: each path of the volume, read-only, at its target."""
    return [
        {
            "name": DATA_VOLUME,
            "mountPath": container_path(target, "data target"),
            "subPath": repo_path(path, "data"),
            "readOnly": True,
        }
        for path, target in data
    ]


def home_volumes(shm_size: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """HOME and /tmp writable (the root filesystem is read-only, as under `nbenv up`), /dev/shm if sized."""
    volumes = [empty_dir("nbenv-home", "1Gi"), empty_dir("nbenv-tmp", "1Gi")]
    mounts = [{"name": "nbenv-home", "mountPath": USER_HOME}, {"name": "nbenv-tmp", "mountPath": "/tmp"}]
    if shm_size is not None:
        volumes.append(empty_dir("nbenv-shm", str(docker_bytes(shm_size)), memory=True))
        mounts.append({"name": "nbenv-shm", "mountPath": "/dev/shm"})
    return volumes, mounts


LABELS = {"app.kubernetes.io/managed-by": "nbenv"}


def k8s_object(
    api: str, kind: str, name: str, settings: KubernetesSettings, labels: Mapping[str, str] = LABELS
) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": settings.namespace, "labels": dict(labels)},
    }


GPU_RESOURCE = "nvidia.com/gpu"


def gpu_limit(name: str, gpus: Gpus) -> int:
    """[resources] gpus as the `nvidia.com/gpu` limit: a count; device IDs name GPUs of one host, so a cluster
    gets as many; "all" (every GPU of whichever node) has no Kubernetes form: one line naming the fix."""
    count = gpu_count(gpus)
    if count is None:
        raise SpecError(
            f'{name}: resources.gpus = "all" has no Kubernetes equivalent (the device plugin counts GPUs)',
            "give a count, e.g. gpus = 1, for an environment the hub offers on Kubernetes",
        )
    return count
