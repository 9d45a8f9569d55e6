"""WorkflowPlan -> a GitHub Actions workflow, built as a dict and dumped (never templated).

Two rules keep spec and config values from doing anything but being values:

- GitHub evaluates `${{ ... }}` in almost every string of a workflow, and `run:` is a shell
  script. So no value from a spec or the config is ever part of a `run:` script: it reaches the
  step through `env:` and the script reads it quoted (`"$NBENV_ENVIRONMENT"`). The scripts
  below are constants.
- Every such value is also held to a charset with no `$`, braces, quotes or newlines
  (`_safe`), on top of the validation of the spec and config models, and is serialized by
  PyYAML, which quotes it as YAML needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from nbenv import __version__
from nbenv.platforms import canonical, platform_problem
from nbenv.spec.models import NBENV_INSTALL_RE, CiSettings

# Current major versions of the actions the workflow uses.
CHECKOUT = "actions/checkout@v7"
SETUP_PYTHON = "actions/setup-python@v7"
SETUP_BUILDX = "docker/setup-buildx-action@v4"
GITHUB_RUNTIME = "crazy-max/ghaction-github-runtime@v4"
LOGIN = "docker/login-action@v4"

DEFAULT_OUTPUT = ".github/workflows/nbenv.yml"
REGISTRY_VARIABLE = "NBENV_REGISTRY"  # a repository variable, when [tool.nbenv] sets no registry
CHECK_TIMEOUT_MINUTES = 15
PUSHING = "github.event_name == 'push'"

_SAFE = re.compile(r"^[A-Za-z0-9._/:@+ \[\]-]+$")  # [ ] for an IPv6 registry
INDEX_URL_RE = re.compile(r"^https?://[A-Za-z0-9._~:/+=%\[\]-]+$")  # no user (no @), query, quote or `$`


def _safe(value: str, what: str) -> str:
    """A spec or config value about to enter the workflow: refuse anything an expression or a shell could use."""
    if not _SAFE.match(value) or "${{" in value:
        raise ValueError(f"unsafe {what} for a workflow: {value!r}")  # the models should have refused it
    return value


def _platform(value: str) -> str:
    """A platform about to enter the workflow: one nbenv builds, in its one spelling."""
    if platform_problem(value) is not None or canonical(value) != value:
        raise ValueError(f"unsafe platform for a workflow: {value!r}")  # the models should have refused it
    return _safe(value, "platform")


@dataclass(frozen=True)
class WorkflowEnvironment:
    name: str
    smoke: tuple[str, ...] = ()  # repo-relative notebooks to run with `nbenv run`
    # The base nbenv makes (`nbenv image base`: nbenv/debian-python:SUITE or one declared in
    # [tool.nbenv.base_images]) its chain is built FROM; None for any other base, which the build pulls.
    base_image: str | None = None
    base_suite: str | None = None
    # Its `platforms` (spec, parent or [tool.nbenv]); empty: the runner's own platform only.
    platforms: tuple[str, ...] = ()
    # Its ancestors (`extends`), root first: built in its job first, each from its own job's cache.
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowPlan:
    environments: tuple[WorkflowEnvironment, ...]  # sorted by name
    settings: CiSettings
    registry: str | None  # [tool.nbenv] registry; None: the NBENV_REGISTRY repository variable
    output: str  # repo-relative path of this workflow (so the check job checks the right file)
    # What `pip install` installs as nbenv: a requirement (`nbenv==X.Y.Z`) or a repo path.
    install: str = f"nbenv=={__version__}"
    index_url: str | None = None  # [tool.nbenv] index_url: where pip finds it (PIP_INDEX_URL)


def _expr(text: str) -> str:
    return "${{ " + text + " }}"


def _install_step(plan: WorkflowPlan) -> dict[str, Any]:
    """nbenv itself, as the plan says (by default the version that wrote the workflow, pinned), never the
    repository's own project: the value reaches pip through `env:` and a constant script."""
    if not NBENV_INSTALL_RE.fullmatch(plan.install) or "${{" in plan.install or plan.install.startswith("-"):
        raise ValueError(f"unsafe nbenv requirement for a workflow: {plan.install!r}")
    env = {"NBENV_INSTALL": plan.install}
    if plan.index_url is not None:
        if not INDEX_URL_RE.fullmatch(plan.index_url):
            raise ValueError(f"unsafe index URL for a workflow: {plan.index_url!r}")
        env["PIP_INDEX_URL"] = plan.index_url
    return {"name": "Install nbenv", "env": env, "run": 'python -m pip install "$NBENV_INSTALL"'}


def _setup_steps(plan: WorkflowPlan) -> list[dict[str, Any]]:
    settings = plan.settings
    return [
        # No token is left in .git/config for later steps (nothing here pushes to git).
        {"uses": CHECKOUT, "with": {"persist-credentials": False}},
        {"uses": SETUP_PYTHON, "with": {"python-version": _safe(settings.python_version, "python_version")}},
        _install_step(plan),
    ]


def _check_job(plan: WorkflowPlan) -> dict[str, Any]:
    return {
        "name": "generated files are up to date",
        "runs-on": _safe(plan.settings.runs_on, "runs_on"),
        "timeout-minutes": CHECK_TIMEOUT_MINUTES,
        "steps": [
            *_setup_steps(plan),
            {"name": "Dockerfiles and compose files match the specs", "run": "nbenv generate --check"},
            {
                "name": "This workflow matches the specs",
                "env": {"NBENV_WORKFLOW": _safe(plan.output, "output path")},
                "run": 'nbenv ci github --check --output "$NBENV_WORKFLOW"',
            },
        ],
    }


def _multi_platform(plan: WorkflowPlan) -> bool:
    """Does any environment set `platforms`? Without, the workflow is the native-only one, unchanged."""
    return any(env.platforms for env in plan.environments)


def _layered(plan: WorkflowPlan) -> bool:
    """Does any environment extend another? Without, the build step is the one-scope one, unchanged."""
    return any(env.parents for env in plan.environments)


def _matrix(environments: Sequence[WorkflowEnvironment], *, platforms: bool, layered: bool) -> list[dict[str, str]]:
    entries = []
    for env in environments:
        entry = {
            "environment": _safe(env.name, "environment name"),
            "base_image": _safe(env.base_image, "base image") if env.base_image else "",
            "base_suite": _safe(env.base_suite, "base suite") if env.base_suite else "",
        }
        if platforms:  # every entry has the key (GitHub and actionlint read a matrix's keys from its entries)
            entry["platforms"] = " ".join(_platform(platform) for platform in env.platforms)
        if layered:
            entry["parents"] = " ".join(_safe(parent, "environment name") for parent in env.parents)
        entry["smoke"] = "\n".join(_safe(notebook, "notebook path") for notebook in env.smoke)
        entries.append(entry)
    return entries


# GitHub's Docker stores images the classic way, where buildx's docker driver cannot export a
# cache, and a docker-container builder cannot see local images: but every environment builds
# FROM a local image (the imported nbenv base, or its parent's image). The containerd image
# store gives the docker driver both.
_CONTAINERD_STORE = """\
config=$( (sudo cat /etc/docker/daemon.json 2>/dev/null || echo '{}') | jq '.features["containerd-snapshotter"] = true')
echo "$config" | sudo tee /etc/docker/daemon.json >/dev/null
sudo systemctl restart docker
docker info --format '{{.DriverStatus}}'
"""

# mmdebstrap's root mode needs root; the user namespaces of its unshare mode are not allowed here.
# Run in the checkout: a declared base's extra packages come from [tool.nbenv.base_images], and
# `image base` refuses a --suite its tag's declaration contradicts.
_BASE_IMAGE = """\
sudo apt-get update
sudo apt-get install -y mmdebstrap debian-archive-keyring
sudo "$(command -v nbenv)" image base --tag "$NBENV_BASE_IMAGE" --suite "$NBENV_BASE_SUITE"
"""

# Builds for another architecture than the runner's run its binaries under QEMU through binfmt_misc:
# the runner's own Ubuntu/Debian packages register it (arch-test: mmdebstrap's check of a foreign
# architecture). Which platforms are foreign is the runner's to say (an arm64 runner emulates amd64).
# Before the containerd-store step, whose restart of Docker then sees the emulators.
_EMULATION = """\
native="linux/$(dpkg --print-architecture)"
read -ra platforms <<< "$NBENV_PLATFORMS"
for platform in "${platforms[@]}"; do
  if [ "$platform" != "$native" ]; then
    sudo apt-get update
    sudo apt-get install -y qemu-user-static binfmt-support arch-test
    exit 0
  fi
done
echo "every platform is the runner's own ($native): no emulation needed"
"""

# One base per platform: the runner's own under the tag, another as TAG-ARCH (mmdebstrap --arch, under QEMU).
_PLATFORM_BASE_IMAGES = """\
sudo apt-get update
sudo apt-get install -y mmdebstrap debian-archive-keyring
read -ra platforms <<< "$NBENV_PLATFORMS"
for platform in "${platforms[@]}"; do
  sudo "$(command -v nbenv)" image base --tag "$NBENV_BASE_IMAGE" --suite "$NBENV_BASE_SUITE" --platform "$platform"
done
"""

# `nbenv image build` builds every platform of the environment, and gives the build of a platform
# under emulation its own cache (scope NAME-ARCH), so the platforms never replace each other's.
_BUILD = (
    'nbenv image build "$NBENV_ENVIRONMENT"'
    ' --cache-from "type=gha,scope=$NBENV_ENVIRONMENT"'
    ' --cache-to "type=gha,mode=max,scope=$NBENV_ENVIRONMENT"'
)

# An environment's job builds its parents first, and exports to its own scope last, so that scope holds
# only its own layers: each parent's layers come from the scope its own job writes (every environment has
# a job), read as well. Without them a child's job would rebuild its parents from nothing on every run.
_LAYERED_BUILD = """\
cache_from=(--cache-from "type=gha,scope=$NBENV_ENVIRONMENT")
read -ra parents <<< "$NBENV_PARENTS"
for parent in "${parents[@]}"; do
  cache_from+=(--cache-from "type=gha,scope=$parent")
done
nbenv image build "$NBENV_ENVIRONMENT" "${cache_from[@]}" --cache-to "type=gha,mode=max,scope=$NBENV_ENVIRONMENT"
"""

_SMOKE = """\
mapfile -t notebooks <<< "$NBENV_SMOKE"
for notebook in "${notebooks[@]}"; do
  nbenv run "$NBENV_ENVIRONMENT" "$notebook"
done
"""


def _build_step(plan: WorkflowPlan) -> dict[str, Any]:
    if not _layered(plan):
        return {"name": "Build (parents first)", "run": _BUILD}
    return {
        "name": "Build (parents first, each from its own job's cache)",
        "env": {"NBENV_PARENTS": _expr("matrix.parents")},
        "run": _LAYERED_BUILD,
    }


def _build_job(plan: WorkflowPlan) -> dict[str, Any]:
    settings = plan.settings
    registry = _safe(plan.registry, "registry") if plan.registry else _expr(f"vars.{REGISTRY_VARIABLE}")
    push_env = {} if plan.registry else {"env": {REGISTRY_VARIABLE: registry}}
    job: dict[str, Any] = {
        "name": "build " + _expr("matrix.environment"),
        "needs": "check",
        "runs-on": _safe(settings.runs_on, "runs_on"),
        "timeout-minutes": settings.timeout_minutes,
    }
    if settings.registry_password_secret == "GITHUB_TOKEN":  # pushing to GitHub's own registry with the job's token
        job["permissions"] = {"contents": "read", "packages": "write"}
    platforms = _multi_platform(plan)
    matrix = _matrix(plan.environments, platforms=platforms, layered=_layered(plan))
    job["strategy"] = {"fail-fast": False, "matrix": {"include": matrix}}
    job["env"] = {"NBENV_ENVIRONMENT": _expr("matrix.environment")}
    has_smoke = _expr("matrix.smoke != ''")
    base_env = {"NBENV_BASE_IMAGE": _expr("matrix.base_image"), "NBENV_BASE_SUITE": _expr("matrix.base_suite")}
    emulation: list[dict[str, Any]] = []
    if not platforms:  # the native-only workflow, exactly as before `platforms` existed
        base = [
            {
                "name": "Build the nbenv base image from Debian packages",
                "if": _expr("matrix.base_image != ''"),
                "env": base_env,
                "run": _BASE_IMAGE,
            }
        ]
    else:
        emulation = [
            {
                "name": "Install QEMU from the runner's packages for platforms other than its own",
                "if": _expr("matrix.platforms != ''"),
                "env": {"NBENV_PLATFORMS": _expr("matrix.platforms")},
                "run": _EMULATION,
            }
        ]
        base = [
            {
                "name": "Build the nbenv base image from Debian packages",
                "if": _expr("matrix.base_image != '' && matrix.platforms == ''"),
                "env": base_env,
                "run": _BASE_IMAGE,
            },
            {
                "name": "Build the nbenv base image of each platform from Debian packages",
                "if": _expr("matrix.base_image != '' && matrix.platforms != ''"),
                "env": {**base_env, "NBENV_PLATFORMS": _expr("matrix.platforms")},
                "run": _PLATFORM_BASE_IMAGES,
            },
        ]
    job["steps"] = [
        *_setup_steps(plan),
        *emulation,
        {"name": "Use the containerd image store", "run": _CONTAINERD_STORE},
        {"uses": SETUP_BUILDX, "with": {"driver": "docker"}},
        # `docker buildx build` in a run step needs the runtime token and cache URL for type=gha.
        {"name": "Expose the Actions cache to buildx", "uses": GITHUB_RUNTIME},
        *base,
        _build_step(plan),
        {"name": "Pull the data (DVC)", "if": has_smoke, "run": 'nbenv data pull "$NBENV_ENVIRONMENT"'},
        {
            "name": "Smoke-run notebooks",
            "if": has_smoke,
            "env": {"NBENV_SMOKE": _expr("matrix.smoke")},
            "run": _SMOKE,
        },
        {
            "name": "Log in to the registry",
            "if": _expr(PUSHING),
            "uses": LOGIN,
            "with": {
                "registry": registry,
                "username": _expr(f"secrets.{_safe(settings.registry_username_secret, 'secret name')}"),
                "password": _expr(f"secrets.{_safe(settings.registry_password_secret, 'secret name')}"),
            },
        },
        {
            "name": "Push (sha-<commit>; X.Y.Z, X.Y, latest from a v* tag)",
            "if": _expr(PUSHING),
            **push_env,
            "run": 'nbenv image push "$NBENV_ENVIRONMENT"',
        },
    ]
    return job


def workflow_dict(plan: WorkflowPlan) -> dict[str, Any]:
    settings = plan.settings
    return {
        "name": "nbenv",
        "on": {
            "pull_request": {},
            "push": {"branches": [_safe(settings.default_branch, "default_branch")], "tags": ["v*"]},
        },
        "permissions": {"contents": "read"},
        # A newer push to a pull request cancels its older run; runs that push images finish.
        "concurrency": {
            "group": "nbenv-" + _expr("github.ref"),
            "cancel-in-progress": _expr("github.event_name == 'pull_request'"),
        },
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {"check": _check_job(plan), "build": _build_job(plan)},
    }


class _Dumper(yaml.SafeDumper):
    """Block sequences indented under their key; multi-line strings as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER = """\
# Generated by nbenv from environments/*.toml and [tool.nbenv]: do not edit, run `nbenv ci github`.
# Pull requests build every environment; pushes to the default branch and v* tags also push
# the images with `nbenv image push` (its tag rules: sha-<commit>; X.Y.Z, X.Y, latest from a tag).
"""


def render_workflow(plan: WorkflowPlan) -> str:
    body = yaml.dump(
        workflow_dict(plan), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )
    return HEADER + body
