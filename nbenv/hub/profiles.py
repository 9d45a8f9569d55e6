"""What a hub offers for one environment, pure: a profile per environment, read by every hub renderer
(DockerSpawner and SwarmSpawner config, Zero to JupyterHub values, Kubernetes Jobs for `nbenv run`).

The image is pinned (a content-key tag `nbenv/NAME:ck-KEY`, or `REPO@sha256:...` once pushed), so what a
user spawns is exactly what `nbenv image build` made. Data is mounted read-only at the same container
paths as under `nbenv up`; each user's own work lives in a volume of their own at `work_dir`. The spec's
`[env]` and start page (`[jupyter] default_url`) are the same as under `nbenv up`: the variables checked by
the spec's rule (nbenv.spec.models.env_var_problem: no JUPYTER*_/JUPYTERHUB_*/NBENV_* name, nothing a hub
sets itself), the start page without a `token` in its query (plan.start_page, as `up`'s URL).
"""

from __future__ import annotations

from dataclasses import dataclass

from nbenv.constants import USER_HOME
from nbenv.errors import SpecError
from nbenv.plan import BuildPlan, data_mount_targets, start_page
from nbenv.spec.models import Environment, Gpus, env_value_problem, env_var_problem

WORK_DIR = f"{USER_HOME}/work"  # each user's own files under a hub (a per-user volume)


@dataclass(frozen=True)
class DataMount:
    path: str  # repository-relative, as in the spec's [[data]] (what `dvc pull` fetches)
    target: str  # absolute container path, the same as under `nbenv up`


@dataclass(frozen=True)
class HubProfile:
    name: str  # the environment's name (a slug: [a-z0-9-])
    display_name: str  # what the profile form shows (the kernel's display name)
    description: str
    image: str  # pinned: NAME:ck-KEY locally, or REPOSITORY@sha256:DIGEST once pushed
    kernel: str  # the kernel the environment registers (named after it): the default kernel
    cpus: float | None  # [resources] cpus
    memory: str | None  # [resources] memory, Docker's notation (e.g. "4g")
    shm_size: str | None
    data: tuple[DataMount, ...]
    work_dir: str = WORK_DIR
    nbenv_server: bool = False  # the image runs nbenv's server venv (/opt/nbenv/server), not the project's
    gpus: Gpus | None = None  # [resources] gpus: "all", a count or device IDs
    environment: tuple[tuple[str, str], ...] = ()  # the spec's [env], sorted by name (parents' included)
    default_url: str = "/lab"  # the start page (`[jupyter] default_url`, relative to the user's server)


def format_literal(value: str) -> str:
    """`value` as a str.format template that renders as `value` (KubeSpawner formats its `environment`)."""
    return value.replace("{", "{{").replace("}", "}}")


def spawner_template(value: str) -> str:
    """A start page as JupyterHub's `Spawner.default_url` reads it: a format template (`{username}` is
    expanded), where `%U` means the user's name (`%25U`, the same text once URL-decoded, does not)."""
    return format_literal(value).replace("%U", "%25U")


def environment(env: Environment) -> tuple[tuple[str, str], ...]:
    """The spec's [env], checked again by the spec's own rule (a hub's own variables cannot be overridden)."""
    for key, value in env.env.items():
        if problem := env_var_problem(key) or env_value_problem(value):
            raise SpecError(f"{env.file}: env.{key}: {problem}")
    return tuple(sorted(env.env.items()))


def profile(plan: BuildPlan, *, image: str) -> HubProfile:
    """The profile of a planned environment whose image is `image` (pinned by the caller)."""
    env = plan.env
    targets = data_mount_targets(env)
    return HubProfile(
        name=env.name,
        display_name=env.jupyter.kernel_display_name,
        description=env.description,
        image=image,
        kernel=plan.kernel_name,
        cpus=env.resources.cpus,
        memory=env.resources.memory,
        shm_size=env.resources.shm_size,
        data=tuple(DataMount(d.path, t) for d, t in zip(env.data, targets, strict=True)),
        nbenv_server=plan.nbenv_server,
        gpus=env.resources.gpus,
        environment=environment(env),
        default_url=start_page(env.jupyter.default_url),
    )
