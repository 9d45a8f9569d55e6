"""The environment spec (environments/NAME.toml) and the repo-wide settings, as strict pydantic models.

`EnvironmentFile` is one file exactly as written: every field optional so that `extends` can
inherit it. `Environment` is the resolved result (parents applied, defaults filled in), which
is what planning and rendering use.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SPEC_VERSION = 1
CONTAINER_HOME = "/home/jovyan"
CONTAINER_WORK = f"{CONTAINER_HOME}/work"

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
SECRET_NAME_RE = re.compile(
    r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY)(?:$|_)", re.I
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_TEXT = 4096


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters such as newlines or tabs")
    return value


def _env_name(value: str) -> str:
    if len(value) > ENV_NAME_MAX:
        raise ValueError(f"must be at most {ENV_NAME_MAX} characters, got {len(value)}")
    if not ENV_NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid environment name: use lowercase letters and digits "
            "separated by single '-' or '_' (it becomes an image, compose project and kernel name)"
        )
    return value


def _group(value: str) -> str:
    if not GROUP_RE.match(value):
        raise ValueError(f"{value!r} is not a valid Poetry group name")
    return value


def _image_ref(value: str) -> str:
    if len(value) > 255 or not IMAGE_REF_RE.match(value):
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
SYSTEM_EXACT = frozenset({"/home", CONTAINER_HOME})


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
            f"{value!r} would hide a system directory of the image ({normalized}); mount under {CONTAINER_HOME}/"
        )
    if normalized == "/":
        raise ValueError(f"{value!r} would hide the whole image; mount under {CONTAINER_HOME}/")
    if normalized != value.rstrip("/"):
        raise ValueError(f"{value!r} must be a normalized absolute path, e.g. {normalized!r}")
    return normalized


def _apt_package(value: str) -> str:
    if not APT_PACKAGE_RE.match(value):
        raise ValueError(f"{value!r} is not a valid Debian package name (e.g. 'graphviz' or 'libpq5=15.8-0+deb12u1')")
    return value


def _size(value: str) -> str:
    if not SIZE_RE.match(value.lower()):
        raise ValueError(f"{value!r} is not a size: use a number with an optional unit b, k, m or g (e.g. '4g')")
    return value.lower()


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


EnvName = Annotated[str, AfterValidator(_env_name)]
GroupName = Annotated[str, AfterValidator(_group)]
ImageRef = Annotated[str, AfterValidator(_image_ref)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
ContainerPath = Annotated[str, AfterValidator(_container_path)]
AptPackage = Annotated[str, AfterValidator(_apt_package)]
Size = Annotated[str, AfterValidator(_size)]
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


class ResourcesFile(Strict):
    cpus: float | None = Field(None, gt=0, le=1024)
    memory: Size | None = None
    shm_size: Size | None = None


class EnvironmentFile(Strict):
    """One environments/NAME.toml exactly as written."""

    spec_version: Literal[1] = Field(description="Schema version of this file; currently 1.")
    name: EnvName
    description: Text | None = None
    extends: EnvName | None = Field(None, description="Parent environment whose image this one builds FROM.")
    base_image: ImageRef | None = None
    groups: list[GroupName] | None = Field(None, description="Poetry groups to install; 'main' = the project's deps.")
    importable: bool | None = Field(None, description="Make the project's own package importable from the mount.")
    data: list[DataMount] | None = None
    mounts: list[SourceMount] | None = None
    system_packages: list[AptPackage] | None = None
    env: dict[str, Text] | None = None
    jupyter: JupyterFile | None = None
    resources: ResourcesFile | None = None


class Jupyter(Strict):
    port: int = 8888
    bind: str = "127.0.0.1"
    interface: Literal["lab", "notebook"] = "lab"
    default_url: str = "/lab"
    kernel_display_name: str


class Resources(Strict):
    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None


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


# `[tool.nbenv.ci]`: the settings of `nbenv ci github`. Every value reaches a GitHub Actions
# workflow, where `${{ ... }}` is an expression anywhere and `run:` is a shell script: each
# field is held to a charset that can express neither.
BRANCH_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9_-])?$")
PYTHON_VERSION_RE = re.compile(r"^3\.[0-9]{1,2}$")
RUNNER_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SECRET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
NOTEBOOK_RE = re.compile(r"^[A-Za-z0-9._/+ -]+\.ipynb$")


def _branch(value: str) -> str:
    if len(value) > 255 or not BRANCH_RE.match(value) or ".." in value or "//" in value or value.endswith(".lock"):
        raise ValueError(f"{value!r} is not a branch name nbenv writes into a workflow (e.g. 'main' or 'release/2')")
    return value


def _python_version(value: str) -> str:
    if not PYTHON_VERSION_RE.match(value):
        raise ValueError(f"{value!r} is not a Python version (e.g. '3.11')")
    return value


def _runner_label(value: str) -> str:
    if not RUNNER_LABEL_RE.match(value):
        raise ValueError(f"{value!r} is not a runner label (e.g. 'ubuntu-latest'; letters, digits, '.', '_', '-')")
    return value


def _secret_name(value: str) -> str:
    if not SECRET_RE.match(value):
        raise ValueError(f"{value!r} is not a GitHub secret name (letters, digits and '_', not starting with a digit)")
    if value.upper().startswith("GITHUB_") and value != "GITHUB_TOKEN":
        raise ValueError(f"{value!r}: secret names starting with GITHUB_ are reserved (GITHUB_TOKEN is allowed)")
    return value


def _notebook(value: str) -> str:
    normalized = _repo_path(value)
    if not NOTEBOOK_RE.match(normalized):
        raise ValueError(
            f"{value!r} must be a repo-relative .ipynb path of letters, digits, space and . _ - + / "
            "(it is written into the CI workflow)"
        )
    return normalized


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


class RepoConfig(Strict):
    """Repo-wide settings: `[tool.nbenv]` in pyproject.toml, or nbenv.toml at the root."""

    default_base_image: ImageRef = Field("nbenv/debian-python:bookworm", description="Base image of root environments.")
    image_prefix: Annotated[str, Field(max_length=200)] = Field(
        "nbenv", description="Image repository prefix, e.g. 'nbenv' or 'registry:5000/team'."
    )
    registry: str | None = Field(None, description="Registry host[:port] that `nbenv image push` pushes to.")
    index_url: Text | None = Field(None, description="Package index URL for builds (no credentials here).")
    ca_bundle: Text | None = Field(None, description="Extra CA bundle for builds (proxies, private indexes).")
    environments_dir: RepoPath = "environments"
    generated_dir: RepoPath = "docker"
    ci: CiSettings = Field(default_factory=CiSettings, description="`[tool.nbenv.ci]`: `nbenv ci github`.")


def text_problem(value: str) -> str | None:
    """Why free text (a description, an env value) is unacceptable, or None: the `Text` rules."""
    if len(value) > _MAX_TEXT:
        return f"must be at most {_MAX_TEXT} characters, got {len(value)}"
    try:
        _no_control(value)
    except ValueError as exc:
        return str(exc)
    return None


def env_var_problem(name: str) -> str | None:
    """Why an `env` key is unacceptable, or None."""
    if not ENV_VAR_RE.match(name):
        return f"{name!r} is not a valid environment variable name"
    if SECRET_NAME_RE.search(name):
        return (
            f"{name!r} looks like a credential; nbenv never writes credentials into generated files "
            "(pass it at run time instead)"
        )
    return None


def image_prefix_problem(value: str) -> str | None:
    if not IMAGE_PREFIX_RE.match(value):
        return f"{value!r} is not a valid image repository prefix (e.g. 'nbenv' or 'localhost:5000/team')"
    return None
