"""The environment spec (environments/NAME.toml) and the repo-wide settings, as strict pydantic models.

`EnvironmentFile` is one file exactly as written: every field optional so that `extends` can
inherit it. `Environment` is the resolved result (parents applied, defaults filled in), which
is what planning and rendering use.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nbenv.base_image import PACKAGE_RE, SUITE_RE, nbenv_recipe, split_ref
from nbenv.constants import (
    AUTO_SUITES,
    DEFAULT_BASE_TAG,
    NBENV_BASE_REPOSITORY,
    SUITE_PYTHON,
    USER_GID,
    USER_HOME,
    USER_UID,
)
from nbenv.platforms import PLATFORMS_HINT, canonical, platforms_problem

SPEC_VERSION = 1
SUITES_OR = " or ".join(f"{suite} (Python {SUITE_PYTHON[suite]})" for suite in AUTO_SUITES)
CONTAINER_WORK = f"{USER_HOME}/work"

# Environment names become image names, compose project names and kernel names: the
# intersection of the three is lowercase letters and digits separated by single - or _.
ENV_NAME_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
ENV_NAME_MAX = 63
GROUP_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
IMAGE_REF_RE = re.compile(
    r"^(?:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
IMAGE_PREFIX_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
APT_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?$")
ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SIZE_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?[bkmg]?$")
# Each grammar (*_RE) is applied with fullmatch, as `$` alone accepts a trailing newline.
# C0 and C1 controls (U+0085 NEL included), the unicode line and paragraph separators (Python's
# splitlines() and YAML break lines there), and lone surrogates (undecodable bytes from argv).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_MAX_TEXT = 4096


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters such as newlines or tabs")
    return value


def _env_name(value: str) -> str:
    if len(value) > ENV_NAME_MAX:
        raise ValueError(f"must be at most {ENV_NAME_MAX} characters, got {len(value)}")
    if not ENV_NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid environment name: use lowercase letters and digits "
            "separated by single '-' or '_' (it becomes an image, compose project and kernel name)"
        )
    return value


def _group(value: str) -> str:
    if not GROUP_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid Poetry group name")
    return value


def _image_ref(value: str) -> str:
    if len(value) > 255 or not IMAGE_REF_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid image reference (expected e.g. 'debian:bookworm' or "
            "'registry.example:5000/team/base:1.0', lowercase)"
        )
    return value


def _repo_path(value: str) -> str:
    """A path relative to the repository root that cannot leave it."""
    _no_control(value)
    if not value or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"{value!r} must be a path relative to the repository root")
    normalized = posixpath.normpath(value.replace("\\", "/"))
    if normalized == ".." or normalized.startswith("../"):
        raise ValueError(f"{value!r} points outside the repository")
    return normalized


# Container paths a mount must not cover, by first component: the FHS directories the image needs
# to work (its programs, libraries on every multiarch layout, configuration, state, temp files,
# kernel interfaces) and the ones nbenv itself uses (/opt/venv, /opt/nbenv, /run/secrets for the
# token, /run/nbenv for `nbenv run`). /root and /boot are refused too: nothing a notebook needs lives
# there, and a bind mount over them only hides the image's own. /home, /srv, /mnt, /media and
# /data-like new directories stay free (FHS leaves them to local data).
SYSTEM_DIRS = frozenset(
    {"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root", "run", "sbin"}
    | {"sys", "tmp", "usr", "var"}
)
# Exactly these (not what is below them): the user's home holds Jupyter's runtime and config
# directories, and /home above it every user's home.
SYSTEM_EXACT = frozenset({"/home", USER_HOME})


def _container_path(value: str) -> str:
    _no_control(value)
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path inside the container")
    # Normalise before any rule: posixpath.normpath keeps a leading `//` (POSIX allows it a meaning),
    # so `//etc` would otherwise pass as a path whose first component is empty.
    normalized = posixpath.normpath("/" + value.lstrip("/"))
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} must be a normalized absolute path (no '..')")
    top = normalized.split("/")[1]
    if top in SYSTEM_DIRS or normalized in SYSTEM_EXACT:
        raise ValueError(
            f"{value!r} would hide a system directory of the image ({normalized}); mount under {USER_HOME}/"
        )
    if normalized == "/":
        raise ValueError(f"{value!r} would hide the whole image; mount under {USER_HOME}/")
    if normalized != value.rstrip("/"):
        raise ValueError(f"{value!r} must be a normalized absolute path, e.g. {normalized!r}")
    return normalized


def _apt_package(value: str) -> str:
    if not APT_PACKAGE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid Debian package name (e.g. 'graphviz' or 'libpq5=15.8-0+deb12u1')")
    return value


_SIZE_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MEMORY_MIN, SHM_MIN, SIZE_MAX = 6 << 20, 1 << 20, 64 << 40  # Docker's 6 MiB floor; 64 TiB fits every int64


def size_bytes(value: str) -> int:
    """'1.5g' -> bytes, as Docker reads it (binary units; no unit = bytes). Assumes a valid SIZE_RE value."""
    unit = value[-1] if value[-1] in _SIZE_UNITS else "b"
    return int(float(value.rstrip("bkmg")) * _SIZE_UNITS[unit])


def _size_validator(minimum: int, why: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.lower()
        if len(value) > 32 or not SIZE_RE.fullmatch(value):
            shown = repr(value) if len(value) <= 32 else f"{value[:16]!r}... ({len(value)} characters)"
            raise ValueError(f"{shown} is not a size: use a number with an optional unit b, k, m or g (e.g. '4g')")
        if size_bytes(value) < minimum:
            raise ValueError(f"{value!r} is too small: at least {minimum >> 20}m ({why})")
        if size_bytes(value) > SIZE_MAX:
            raise ValueError(f"{value!r} is too large: at most {SIZE_MAX >> 30}g")
        return value

    return check


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. '127.0.0.1')") from None


def _url_path(value: str) -> str:
    _no_control(value)
    if not re.match(r"^/[A-Za-z0-9._~!$&'()*+,;=:@/%?-]*$", value):
        raise ValueError(f"{value!r} must be a URL path starting with '/' (e.g. '/lab')")
    return value


# `[resources] gpus`: "all", a count, or the device IDs of the host's GPUs (an index such as "0" or a UUID such
# as "GPU-8f9c..."). They reach compose's device reservation, the devcontainer's hostRequirements and the
# Kubernetes limit; each ID is held to a charset that needs no escaping in YAML, JSON or a command line.
GPU_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
GPUS_MAX = 64
Gpus = str | int | tuple[str, ...]


def _gpus(value: Any) -> Gpus:
    """ "all" | N (1..64) | ["device-id", ...] (1..64 distinct IDs), normalised (a list becomes a tuple)."""
    example = 'use "all", a count such as 1, or device IDs such as ["0", "1"]'
    if isinstance(value, bool) or not isinstance(value, str | int | list):
        raise ValueError(f'must be "all", a number of GPUs or a list of device IDs, not {type(value).__name__}')
    if isinstance(value, str):
        if value != "all":
            raise ValueError(f'{value[:40]!r} is not "all": {example}')
        return value
    if isinstance(value, int):
        if not 1 <= value <= GPUS_MAX:
            raise ValueError(f"{value} GPUs: use 1 to {GPUS_MAX} (leave gpus out for none)")
        return value
    if not 1 <= len(value) <= GPUS_MAX:
        raise ValueError(f"{len(value)} device IDs: give 1 to {GPUS_MAX} (leave gpus out for none)")
    for item in value:
        if not isinstance(item, str) or not GPU_ID_RE.fullmatch(item):
            shown = repr(item[:40]) if isinstance(item, str) else type(item).__name__
            raise ValueError(f'{shown} is not a GPU device ID (an index such as "0" or a UUID such as "GPU-8f9c...")')
    if len(set(value)) != len(value):
        raise ValueError("lists a device ID twice")
    return tuple(value)


def gpu_count(gpus: Gpus) -> int | None:
    """How many GPUs `gpus` asks for: None for "all" (every GPU of the host, a number only it knows)."""
    if isinstance(gpus, str):
        return None
    return gpus if isinstance(gpus, int) else len(gpus)


def _platforms(value: Any) -> list[str]:
    """`platforms`: a non-empty list of platforms nbenv builds, each once, in their one spelling."""
    if not isinstance(value, list):
        raise ValueError(f"must be a list such as {PLATFORMS_HINT}")
    if problem := platforms_problem(value):
        raise ValueError(problem)
    return [canonical(v) for v in value]


EnvName = Annotated[str, AfterValidator(_env_name)]
Platforms = Annotated[Any, AfterValidator(_platforms)]
GroupName = Annotated[str, AfterValidator(_group)]
ImageRef = Annotated[str, AfterValidator(_image_ref)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
ContainerPath = Annotated[str, AfterValidator(_container_path)]
AptPackage = Annotated[str, AfterValidator(_apt_package)]
MemorySize = Annotated[str, AfterValidator(_size_validator(MEMORY_MIN, "Docker's minimum for a memory limit"))]
ShmSize = Annotated[str, AfterValidator(_size_validator(SHM_MIN, "less leaves no room for shared memory"))]
IPAddress = Annotated[str, AfterValidator(_ip)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
Text = Annotated[str, Field(max_length=_MAX_TEXT), AfterValidator(_no_control)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataMount(Strict):
    path: RepoPath = Field(description="A DVC-tracked path (a .dvc file's output or a dvc.yaml out), repo-relative.")
    target: ContainerPath | None = Field(
        None, description="Where it appears in the container; default: its place under the source mount."
    )


class SourceMount(Strict):
    source: RepoPath = Field(".", description="A directory of the repository, mounted read-write.")
    target: ContainerPath = Field(CONTAINER_WORK, description="Absolute path inside the container.")


class JupyterFile(Strict):
    port: int | None = Field(None, ge=1, le=65535, description="Host port (default 8888).")
    bind: IPAddress | None = Field(
        None, description="Host address the port is published on (default 127.0.0.1; others warn)."
    )
    interface: Literal["lab", "notebook"] | None = None
    default_url: UrlPath | None = None
    kernel_display_name: Text | None = None
    token: bool | None = Field(
        None,
        description="false: Jupyter asks for no token (anyone who reaches the port runs code); loopback bind only.",
    )


class ResourcesFile(Strict):
    cpus: float | None = Field(None, ge=0.01, le=1024, description="CPUs (Docker's granularity: 0.01).")
    memory: MemorySize | None = Field(None, description="Memory limit, 6m (Docker's minimum) to 65536g.")
    shm_size: ShmSize | None = Field(None, description="Size of /dev/shm, 1m to 65536g.")
    gpus: Annotated[Any, AfterValidator(_gpus)] = Field(
        None,
        description='NVIDIA GPUs: "all", a count (1-64) or a list of device IDs (indexes or UUIDs).',
        json_schema_extra={
            "anyOf": [
                {"const": "all"},
                {"type": "integer", "minimum": 1, "maximum": GPUS_MAX},
                {"type": "array", "items": {"type": "string", "pattern": GPU_ID_RE.pattern}, "minItems": 1},
            ]
        },
    )


class EnvironmentFile(Strict):
    """One environments/NAME.toml exactly as written."""

    spec_version: Literal[1] = Field(description="Schema version of this file; currently 1.")
    name: EnvName
    description: Text | None = None
    extends: EnvName | None = Field(None, description="Parent environment whose image this one builds FROM.")
    base_image: ImageRef | None = Field(
        None,
        description="Base image (only without extends); default: [tool.nbenv] default_base_image, else "
        f"{NBENV_BASE_REPOSITORY}:SUITE for the first Debian suite whose Python fits the project's requires-python.",
    )
    groups: list[GroupName] | None = Field(None, description="Poetry groups to install; 'main' = the project's deps.")
    importable: bool | None = Field(None, description="Make the project's own package importable from the mount.")
    data: list[DataMount] | None = None
    mounts: list[SourceMount] | None = None
    system_packages: list[AptPackage] | None = None
    env: dict[str, Text] | None = None
    jupyter: JupyterFile | None = None
    resources: ResourcesFile | None = None
    platforms: Platforms | None = Field(
        None, description="Platforms to build an image for (overrides [tool.nbenv] platforms), e.g. linux/arm64."
    )


class Jupyter(Strict):
    port: int = 8888
    bind: str = "127.0.0.1"
    interface: Literal["lab", "notebook"] = "lab"
    default_url: str = "/lab"
    kernel_display_name: str
    token: bool = True


class Resources(Strict):
    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None
    gpus: Gpus | None = None


class Environment(Strict):
    """A resolved environment: parents applied, defaults filled in."""

    name: str
    description: str
    file: str
    extends: str | None
    lineage: tuple[str, ...] = Field(description="Ancestors from the root to the direct parent.")
    base_image: str
    groups: tuple[str, ...]
    own_groups: tuple[str, ...]
    importable: bool
    data: tuple[DataMount, ...]
    mounts: tuple[SourceMount, ...]
    system_packages: tuple[str, ...]
    env: dict[str, str]
    jupyter: Jupyter
    resources: Resources
    platforms: tuple[str, ...] | None = Field(None, description="None: the engine's native platform only.")


# `[tool.nbenv.ci]`: the settings of `nbenv ci github`. Every value reaches a GitHub Actions
# workflow, where `${{ ... }}` is an expression anywhere and `run:` is a shell script: each
# field is held to a charset that can express neither.
BRANCH_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9_-])?$")
PYTHON_VERSION_RE = re.compile(r"^3\.[0-9]{1,2}$")
RUNNER_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SECRET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
NOTEBOOK_RE = re.compile(r"^[A-Za-z0-9._/+ -]+\.ipynb$")


def _branch(value: str) -> str:
    if len(value) > 255 or not BRANCH_RE.fullmatch(value) or ".." in value or "//" in value or value.endswith(".lock"):
        raise ValueError(f"{value!r} is not a branch name nbenv writes into a workflow (e.g. 'main' or 'release/2')")
    return value


def _python_version(value: str) -> str:
    if not PYTHON_VERSION_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Python version (e.g. '3.11')")
    return value


def _runner_label(value: str) -> str:
    if not RUNNER_LABEL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a runner label (e.g. 'ubuntu-latest'; letters, digits, '.', '_', '-')")
    return value


def _secret_name(value: str) -> str:
    if not SECRET_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a GitHub secret name (letters, digits and '_', not starting with a digit)")
    if value.upper().startswith("GITHUB_") and value != "GITHUB_TOKEN":
        raise ValueError(f"{value!r}: secret names starting with GITHUB_ are reserved (GITHUB_TOKEN is allowed)")
    return value


def _notebook(value: str) -> str:
    normalized = _repo_path(value)
    if not NOTEBOOK_RE.fullmatch(normalized):
        raise ValueError(
            f"{value!r} must be a repo-relative .ipynb path of letters, digits, space and . _ - + / "
            "(it is written into the CI workflow)"
        )
    return normalized


# `nbenv = "..."`: how the workflow installs nbenv. It reaches the workflow as an `env:` value that a
# constant `pip install "$NBENV_INSTALL"` reads, and is held to a charset on top of that: no quotes,
# `$`, braces, `;` (markers), `%`, `?`, `&` or whitespace other than the spaces of `name @ URL`.
NBENV_INSTALL_RE = re.compile(r"^[A-Za-z0-9._/:@+=<>!~,#\[\] -]+$")
NBENV_PATH_RE = re.compile(r"^[A-Za-z0-9._/+-]+$")
NBENV_URL_SCHEMES = ("https://", "git+https://", "git+ssh://")
_NBENV_INSTALL_EXAMPLE = "e.g. 'nbenv==1.2.3', 'nbenv @ git+https://host/org/nbenv@<commit>' or '.' (the checkout)"


def _nbenv_install(value: str) -> str:
    """A PEP 508 requirement naming nbenv (a version, or `nbenv @ URL`), or a repo-relative path
    ('.', './tools/nbenv'): what `pip install` gets in the workflow."""
    _no_control(value)
    if len(value) > 500:
        raise ValueError(f"must be at most 500 characters, got {len(value)}")
    if value == "." or value.startswith("./"):
        normalized = _repo_path(value)
        if not NBENV_PATH_RE.fullmatch(normalized):
            raise ValueError(f"{value!r}: a path here is letters, digits and . _ - + / ({_NBENV_INSTALL_EXAMPLE})")
        return normalized if normalized == "." else f"./{normalized}"
    if not NBENV_INSTALL_RE.fullmatch(value) or "${{" in value:
        raise ValueError(
            f"{value!r} is not a requirement nbenv writes into a workflow: letters, digits, space and "
            f". _ / : @ + = < > ! ~ , # [ ] - only ({_NBENV_INSTALL_EXAMPLE})"
        )
    try:
        requirement = Requirement(value)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{value!r} is not a PEP 508 requirement ({reason}); {_NBENV_INSTALL_EXAMPLE}") from None
    if canonicalize_name(requirement.name) != "nbenv":
        raise ValueError(f"{value!r} installs {requirement.name!r}, not nbenv ({_NBENV_INSTALL_EXAMPLE})")
    if requirement.url is not None and not requirement.url.startswith(NBENV_URL_SCHEMES):
        schemes = ", ".join(NBENV_URL_SCHEMES)
        raise ValueError(f"{value!r}: the URL must start with {schemes} (a runner sees no local file)")
    return value


class CiSettings(Strict):
    """`[tool.nbenv.ci]`: what `nbenv ci github` writes into .github/workflows/nbenv.yml."""

    default_branch: Annotated[str, AfterValidator(_branch)] = Field(
        "main", description="Pushes to this branch (and v* tags) build and push images; pull requests only build."
    )
    python_version: Annotated[str, AfterValidator(_python_version)] = Field(
        "3.11", description="Python that installs and runs nbenv on the runner."
    )
    runs_on: Annotated[str, AfterValidator(_runner_label)] = Field("ubuntu-latest", description="Runner label.")
    timeout_minutes: int = Field(60, ge=1, le=360, description="Time limit of each environment's build job.")
    registry_username_secret: Annotated[str, AfterValidator(_secret_name)] = Field(
        "REGISTRY_USERNAME", description="Name of the GitHub secret holding the registry user."
    )
    registry_password_secret: Annotated[str, AfterValidator(_secret_name)] = Field(
        "REGISTRY_PASSWORD", description="Name of the GitHub secret holding the registry password or token."
    )
    smoke: dict[EnvName, Annotated[list[Annotated[str, AfterValidator(_notebook)]], Field(min_length=1)]] = Field(
        default_factory=dict, description="Notebooks each environment runs after its build: `nbenv run ENV NOTEBOOK`."
    )
    nbenv: Annotated[str, AfterValidator(_nbenv_install)] | None = Field(
        None,
        description="What the workflow pip-installs as nbenv: a PEP 508 requirement ('nbenv==1.2.3', "
        "'nbenv @ git+https://host/org/nbenv@<commit>') or a repo-relative path ('.'). "
        "Default: the nbenv version that wrote the workflow, pinned.",
    )


def _suite(value: str) -> str:
    if not SUITE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Debian suite (a codename such as {' or '.join(map(repr, AUTO_SUITES))})")
    return value


def _base_package(value: str) -> str:
    if not PACKAGE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Debian package name (lowercase letters, digits, + - ., e.g. 'graphviz')")
    return value


class DeclaredBase(Strict):
    """`[tool.nbenv.base_images."TAG"]`: a base image nbenv makes from Debian packages under TAG."""

    suite: Annotated[str, AfterValidator(_suite)] = Field(
        description=f"Debian suite: {SUITES_OR}; others: Python checked at build."
    )
    packages: list[Annotated[str, AfterValidator(_base_package)]] = Field(
        default_factory=list, max_length=500, description="Extra Debian packages (name only, no version)."
    )
    cuda: bool = Field(
        default=False, description="Add Debian's CUDA runtime libraries (non-free; bookworm: CUDA 11.8, trixie: 12.4)."
    )


def declared_base_problem(tag: str, declared: DeclaredBase) -> str | None:
    """Why `tag` cannot be a base image nbenv makes as declared, or None."""
    if "@" in tag:
        return f"{tag!r} names an image by digest, which no image nbenv makes can have: declare NAME:TAG"
    if len(split_ref(tag)[0]) > 255:
        return f"{tag[:40]!r}...: the image name is longer than 255 characters"
    own = nbenv_recipe(tag)
    if own is not None and own.suite != declared.suite:
        return (
            f"{tag!r} is nbenv's own base of Debian {own.suite} (the tag names the suite), not {declared.suite!r}: "
            f"declare another tag, or suite = {own.suite!r}"
        )
    if own is not None and own.cuda != declared.cuda:
        return (
            f"{tag!r} is nbenv's own base {'with' if own.cuda else 'without'} CUDA (the tag says so): "
            f"declare another tag, or cuda = {'true' if own.cuda else 'false'}"
        )
    return None


# `[tool.nbenv.hub]`: the settings of `nbenv hub`. Names reach generated JSON (dumped by json) and the
# engine (container, volume and network names): each is held to a charset that is safe in all of them.
HUB_USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
DOCKER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def _hub_user(value: str) -> str:
    if not HUB_USER_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a hub user name: 1-32 lowercase letters, digits and . _ - (starting with a letter "
            "or digit; NativeAuthenticator lowercases names)"
        )
    return value


def _docker_name(value: str) -> str:
    if not DOCKER_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Docker network name nbenv uses (lowercase letters, digits, _ . -)")
    return value


class KubernetesHubSettings(Strict):
    """`[tool.nbenv.hub.kubernetes]`: present, `nbenv hub generate` also writes docker/hub/kubernetes/ (Zero to
    JupyterHub values, Jobs for notebook runs). nbenv/hub/k8s_objects.py checks each value's grammar."""

    namespace: str = "nbenv"
    dvc_remote: str = Field("", description="s3://BUCKET/PATH the data init containers pull from (needed with data).")
    dvc_endpoint_url: str = Field("", description="An S3-compatible endpoint (MinIO, Ceph); empty for AWS.")
    s3_secret: str = Field("nbenv-dvc-s3", description="The Secret holding AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.")
    puller_image: str = Field("", description="Image with dvc[s3] for the init container; empty: nbenv's own.")
    image_pull_policy: str = ""
    data_size: str = "10Gi"
    work_size: str = "10Gi"
    storage_class: str = ""
    runs_claim: str = "nbenv-runs"
    runs_size: str = "10Gi"
    run_timeout: int = 3600
    pull_seconds: int = 600
    uid: int = USER_UID
    gid: int = USER_GID
    request_fraction: float = 0.25


class HubSettings(Strict):
    """`[tool.nbenv.hub]`: what `nbenv hub generate` / `nbenv hub up` serve on one host."""

    environments: Annotated[list[EnvName], Field(min_length=1)] | None = Field(
        None, description="The environments the hub offers (default: all), in the profile form's order."
    )
    bind: IPAddress = Field("127.0.0.1", description="Host address the hub is published on (others warn).")
    port: int = Field(8000, ge=1, le=65535, description="Host port of the hub.")
    authenticator: Literal["native"] = Field(
        "native",
        description="NativeAuthenticator: users sign up, an admin authorizes them (admin_users are authorized "
        "on sign-up). Never a dummy authenticator.",
    )
    admin_users: list[Annotated[str, AfterValidator(_hub_user)]] = Field(
        default_factory=list, max_length=100, description="Hub admins (they authorize other users' sign-ups)."
    )
    network: Annotated[str, AfterValidator(_docker_name)] = Field(
        "nbenv-hub", description="The Docker network of the hub and the users' servers."
    )
    kubernetes: KubernetesHubSettings | None = Field(
        None, description="Kubernetes output (Zero to JupyterHub values, notebook Jobs); absent: none written."
    )


class RepoConfig(Strict):
    """Repo-wide settings: `[tool.nbenv]` in pyproject.toml, or nbenv.toml at the root."""

    default_base_image: ImageRef = Field(
        DEFAULT_BASE_TAG,
        description=f"Base image of root environments; unset: {NBENV_BASE_REPOSITORY}:SUITE whose Python fits the "
        "project.",
    )
    base_images: dict[ImageRef, DeclaredBase] = Field(
        default_factory=dict,
        description='Base images nbenv makes under other tags: [tool.nbenv.base_images."TAG"] suite, packages.',
    )
    image_prefix: Annotated[str, Field(max_length=200)] = Field(
        "nbenv", description="Image repository prefix, e.g. 'nbenv' or 'registry:5000/team'."
    )
    registry: str | None = Field(None, description="Registry host[:port] that `nbenv image push` pushes to.")
    index_url: Text | None = Field(None, description="Package index URL for builds (no credentials here).")
    ca_bundle: Text | None = Field(None, description="Extra CA bundle for builds (proxies, private indexes).")
    environments_dir: RepoPath = "environments"
    generated_dir: RepoPath = "docker"
    default_environment: EnvName | None = Field(
        None, description="What `nbenv up`, `data pull`, `image build` ... act on when no name is given."
    )
    platforms: Platforms | None = Field(
        None,
        description='Platforms every environment builds an image for, e.g. ["linux/amd64", "linux/arm64"]; '
        "unset: the engine's native platform only.",
    )
    ci: CiSettings = Field(default_factory=CiSettings, description="`[tool.nbenv.ci]`: `nbenv ci github`.")
    hub: HubSettings = Field(default_factory=HubSettings, description="`[tool.nbenv.hub]`: `nbenv hub`.")


def text_problem(value: str) -> str | None:
    """Why free text (a description, an env value) is unacceptable, or None: the `Text` rules."""
    if len(value) > _MAX_TEXT:
        return f"must be at most {_MAX_TEXT} characters, got {len(value)}"
    try:
        _no_control(value)
    except ValueError as exc:
        return str(exc)
    return None


# `[env]` names the spec may not set, by class, with the reason. Jupyter's token and configuration, and
# what Python or the dynamic loader run at startup, belong to the image nbenv generates: a repository that
# sets them could switch the token off or run its own code inside Jupyter's server before any notebook.
_RESERVED_ENV: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^(?:JUPYTER|JUPYTERLAB|JPY)_"),
        "steers Jupyter's configuration, token or paths (JUPYTER_CONFIG_DIR, JUPYTER_TOKEN, ...); "
        "nbenv sets them so that the token cannot be switched off from the repository",
    ),
    (
        # A hub's spawner sets these for each server, and a spawner's `environment` would override them.
        re.compile(r"^(?:JUPYTERHUB_[A-Z0-9_]*|(?:MEM|CPU)_(?:LIMIT|GUARANTEE))$"),
        "is set by JupyterHub for each user's server (its API token and URLs, the [resources] limits); "
        "`nbenv hub` serves this environment with the hub's own value",
    ),
    (
        # Python's own variables, except a few that change no code path: buffering, bytecode, hashing, encoding.
        re.compile(r"^PYTHON(?!(?:UNBUFFERED|DONTWRITEBYTECODE|HASHSEED|IOENCODING|UTF8|FAULTHANDLER)$)[A-Z0-9_]*$"),
        "changes what Python imports or runs at startup (PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, ...)",
    ),
    (
        re.compile(r"^(?:LD_[A-Z0-9_]+|GCONV_PATH|BASH_ENV|ENV)$"),
        "changes which libraries or scripts every program in the container loads",
    ),
    (
        re.compile(r"^(?:HOME|PATH|VIRTUAL_ENV|IPYTHONDIR|USER|LOGNAME|XDG_[A-Z0-9_]+)$"),
        "moves where the image's programs and their configuration are found (nbenv sets it in the image)",
    ),
    (re.compile(r"^NBENV_"), "is reserved for nbenv itself"),
)
# Credentials by name: a `_`-separated part that names one (DB_PASSWORD, GITHUB_TOKEN_FILE, AWS_SECRET_X),
# a last part ending in one without `_` (PGPASSWORD, MYSQL_PWD, KAGGLE_KEY, HFTOKEN, SMTP_PASS) or a DSN.
# Words that merely end like one are not credentials: KEYBOARD never matched, MONKEY/BYPASS/... are exempt,
# and so are the shell's PWD and OLDPWD (a directory).
_SECRET_PART = re.compile(r"^(?:TOKENS?|SECRETS?|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|APIKEY|PRIVATEKEY)$")
_SECRET_END = re.compile(r"(?:TOKEN|KEY|PWD|PASS|PASSWORD|PASSWD|SECRET)$")
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})
_NOT_SECRET_WORDS = frozenset(
    {"MONKEY", "DONKEY", "HOTKEY", "TURKEY", "WHISKEY", "HOCKEY", "JOCKEY"}
    | {"BYPASS", "COMPASS", "SURPASS", "TRESPASS", "OVERPASS", "UNDERPASS"}
)
# A URL with a user (and maybe a password) in it, any scheme: postgresql://user:pw@host/db, https://tok@host.
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]*@")
_URL_QUERY_PARAM = re.compile(r"[?&;]([A-Za-z0-9_.-]+)=")


def secret_name(name: str) -> bool:
    """Whether an environment variable (or URL query parameter) name says it holds a credential."""
    parts = [p for p in re.split(r"[_.-]+", name.upper()) if p]
    if not parts or name.upper() in _NOT_SECRET_NAMES:
        return False
    if any(_SECRET_PART.match(p) for p in parts) or parts[-1] == "DSN":
        return True
    if re.search(r"(?:API|ACCESS|PRIVATE|SECRET)_?KEY(?:$|_)", name.upper()):
        return True
    return parts[-1] not in _NOT_SECRET_WORDS and bool(_SECRET_END.search(parts[-1]))


def env_var_problem(name: str) -> str | None:
    """Why an `env` key is unacceptable, or None."""
    if not ENV_VAR_RE.fullmatch(name):
        return f"{name!r} is not a valid environment variable name"
    for pattern, why in _RESERVED_ENV:
        if pattern.match(name.upper()):
            return f"{name!r} {why}"
    if secret_name(name):
        return (
            f"{name!r} looks like a credential; nbenv never writes credentials into generated files "
            "(pass it at run time instead)"
        )
    return None


def env_value_problem(value: str) -> str | None:
    """Why an `env` value is unacceptable, or None: a credential inside a URL (user or password,
    or a query parameter named like one) would land in the committed compose file."""
    if _URL_USERINFO.search(value):
        return "the value is a URL with a user or password in it; nbenv never writes credentials into generated files"
    params = _URL_QUERY_PARAM.findall(value) if "://" in value else []
    if any(secret_name(p) or p.lower() in ("sig", "signature", "auth") for p in params):
        return "the value is a URL with a credential in its query; nbenv never writes credentials into generated files"
    return None


def image_prefix_problem(value: str) -> str | None:
    if not IMAGE_PREFIX_RE.fullmatch(value):
        return f"{value!r} is not a valid image repository prefix (e.g. 'nbenv' or 'localhost:5000/team')"
    return None
