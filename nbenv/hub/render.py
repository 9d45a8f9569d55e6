"""Pure renderers of `docker/hub/`: hub profiles and settings -> the files `nbenv hub generate` writes.

Every value from the specs lands in one file only, `profiles.json`, dumped by `json.dumps`; the
JupyterHub configs (`jupyterhub_config.py` for DockerSpawner, `swarm_config.py` for SwarmSpawner) are
fixed text, the same for every project, that read it. So no spec value is ever written as Python
source. Host paths are absolute only at run time: the configs join the repository root
(`NBENV_HUB_REPO`, set by `nbenv hub up`) with the repository-relative data paths, so the generated
files are the same for every checkout.

The Dockerfiles (the hub image, and each environment's thin hub layer that adds the hub's
`jupyterhub-singleuser`) are built from validated values only: image references, absolute paths
nbenv owns, file names it chooses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from nbenv.constants import USER_GID, USER_UID
from nbenv.hub.profiles import HubProfile, spawner_template
from nbenv.plan import VENV
from nbenv.render.dockerfile import install_step, label_value, tools_stage
from nbenv.running.gpus import device_request
from nbenv.server_env import HUB_PINS, SERVER_VENV, SINGLEUSER_PINS
from nbenv.spec.models import HubSettings, RepoConfig, size_bytes

OUT_DIR = "hub"  # under generated_dir: docker/hub/
CONFIG = "jupyterhub_config.py"
SWARM_CONFIG = "swarm_config.py"
PROFILES = "profiles.json"
HUB_IMAGE_DIR = "image"  # docker/hub/image/: the hub image's Dockerfile and pins
LAYERS_DIR = "singleuser"  # docker/hub/singleuser/NAME/: each environment's hub layer
HUB_VENV = "/opt/nbenv/hub"
# Where the hub container sees what `nbenv hub up` mounts into it.
HUB_CONFIG_DIR = "/srv/nbenv-hub/config"
HUB_STATE_DIR = "/srv/nbenv-hub/state"
HUB_SECRETS_DIR = "/srv/nbenv-hub/secrets"
HUB_PORT = 8000  # inside the hub container; published on [tool.nbenv.hub] bind:port
LABEL = "nbenv.hub"  # every container, volume and network of a hub carries it (value: the hub id)
FORMAT_VERSION = 1


def hub_id(config: RepoConfig) -> str:
    """The hub's name, namespaced like compose projects (a readable slug of the image prefix, then a hash of
    it): the hub container, and the prefix of its users' containers and volumes. No environment's compose
    project can take it (those hash (prefix, name), this hashes the prefix with a NUL-led marker)."""
    digest = hashlib.sha256(f"{config.image_prefix}\0\0hub".encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", config.image_prefix.lower()).strip("-")[:40].rstrip("-") or "nbenv"
    return f"{slug}-hub-{digest}"


def option(profile: HubProfile) -> str:
    """What the profile form shows and what `user_options["image"]` names: unique (the name is)."""
    return f"{profile.name}: {profile.display_name}"


def server_bin(profile: HubProfile) -> str:
    """The directory of the venv that runs Jupyter in the image (where jupyterhub-singleuser is)."""
    return f"{SERVER_VENV}/bin" if profile.nbenv_server else f"{VENV}/bin"


def singleuser_command(profile: HubProfile) -> list[str]:
    """The single-user server: the hub's jupyterhub-singleuser, the environment's kernel the default.
    nbenv's server by absolute path; the project's own from PATH (a child environment's layer comes first)."""
    return [
        f"{SERVER_VENV}/bin/jupyterhub-singleuser" if profile.nbenv_server else "jupyterhub-singleuser",
        f"--ServerApp.root_dir={profile.work_dir}",
        "--KernelSpecManager.ensure_native_kernel=False",
        f"--MappingKernelManager.default_kernel_name={profile.kernel}",
    ]


def profile_data(profile: HubProfile) -> dict[str, object]:
    return {
        "name": profile.name,
        "option": option(profile),
        "display_name": profile.display_name,
        "description": profile.description,
        "image": profile.image,
        "kernel": profile.kernel,
        "cpus": profile.cpus,
        "memory_bytes": size_bytes(profile.memory) if profile.memory else None,
        "shm_size_bytes": size_bytes(profile.shm_size) if profile.shm_size else None,
        "data": [{"path": d.path, "target": d.target} for d in profile.data],
        "work_dir": profile.work_dir,
        "command": singleuser_command(profile),
        # The spec's [env] as it is (DockerSpawner formats no environment value), and the start page as
        # JupyterHub's Spawner.default_url template (braces and %U defused).
        "environment": dict(profile.environment),
        "default_url": spawner_template(profile.default_url),
        # [resources] gpus: DockerSpawner's device request (none without gpus, so the key is left out).
        **({"device_requests": [device_request(profile.gpus)]} if profile.gpus is not None else {}),
    }


def profiles_json(profiles: Sequence[HubProfile], settings: HubSettings, *, hub: str) -> str:
    """The data every hub config reads: one profile per environment, in the form's order."""
    document = {
        "//": "Generated by nbenv (`nbenv hub generate`) from environments/*.toml and [tool.nbenv.hub]: do not edit.",
        "format": FORMAT_VERSION,
        "hub_id": hub,
        "network": settings.network,
        "authenticator": settings.authenticator,
        "admin_users": sorted(settings.admin_users),
        "label": LABEL,
        "profiles": [profile_data(p) for p in profiles],
    }
    return json.dumps(document, indent=2, ensure_ascii=True, sort_keys=False) + "\n"


def fixed(name: str) -> str:
    """A fixed file of the hub (package data under nbenv/hub/files/), the same for every project."""
    return resources.files("nbenv.hub").joinpath("files", name).read_text("utf-8")


@dataclass(frozen=True)
class Layer:
    """An environment's hub layer: its pinned image plus the hub's jupyterhub-singleuser and the work
    directory the user's volume is mounted on (owned by the image user, so a new volume is theirs)."""

    name: str
    from_image: str  # the Dockerfile's default FROM (the environment's :latest); the build pins its ck- ref
    dockerfile: str
    requirements: str | None  # the nbenv-singleuser pins this image still needs, or None (its groups have them)


def layer(profile: HubProfile, *, from_image: str, requirements: str | None) -> Layer:
    return Layer(profile.name, from_image, layer_dockerfile(profile, from_image, requirements), requirements)


def layer_dockerfile(profile: HubProfile, from_image: str, requirements: str | None) -> str:
    python = f"{server_bin(profile)}/python"
    packages = f"{server_bin(profile).removesuffix('/bin')}/lib/python3*/site-packages"
    lines = [
        f"# Generated by nbenv: the hub layer of environment {profile.name}: do not edit, run `nbenv hub generate`.",
        "# Its image, pinned, plus the hub's jupyterhub-singleuser (hash-checked, the nbenv-singleuser pins",
        "# its Jupyter venv lacks) and the work directory each user's volume is mounted on.",
        f"ARG BASE_IMAGE={from_image}",
        *tools_stage(),
        "",
        "FROM tools AS singleuser",
        "ENV UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never",
    ]
    if requirements is not None:
        lines += install_step(SINGLEUSER_PINS, python=python, packages=packages)
    else:
        lines.append("# Its groups install jupyterhub at the hub's version already.")
    lines += [
        "",
        "FROM ${BASE_IMAGE}",
        "USER 0",
    ]
    if requirements is not None:
        venv = server_bin(profile).removesuffix("/bin")
        lines.append(f"COPY --from=singleuser {venv} {venv}")
    lines += [
        f"RUN install -d -o {USER_UID} -g {USER_GID} -m 0755 {profile.work_dir}",
        f"USER {USER_UID}:{USER_GID}",
        f"LABEL {LABEL}.environment={label_value(profile.name)} {LABEL}.singleuser={label_value('jupyterhub')}",
    ]
    return "\n".join(lines) + "\n"


def hub_dockerfile(base_image: str) -> str:
    packages = f"{HUB_VENV}/lib/python3*/site-packages"
    lines = [
        "# Generated by nbenv: the hub image (`nbenv hub up` builds it): do not edit, run `nbenv hub generate`.",
        "# JupyterHub, DockerSpawner/SwarmSpawner, NativeAuthenticator and the Python configurable-http-proxy,",
        f"# hash-checked from nbenv's pins (nbenv/render/{HUB_PINS}), in a venv of its own on nbenv's Debian base.",
        f"ARG BASE_IMAGE={base_image}",
        *tools_stage(),
        "",
        "FROM tools AS hub",
        "ENV UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never",
        *install_step(
            HUB_PINS,
            python=f"{HUB_VENV}/bin/python",
            packages=packages,
            first=f"python3 -m venv --without-pip {HUB_VENV}",
        ),
        "",
        "FROM ${BASE_IMAGE}",
        f"COPY --from=hub {HUB_VENV} {HUB_VENV}",
        f"ENV PATH={HUB_VENV}/bin:$PATH HOME={HUB_STATE_DIR}",
        f"WORKDIR {HUB_STATE_DIR}",
        f"EXPOSE {HUB_PORT}",
        'ENTRYPOINT ["tini", "-g", "--"]',
        f'CMD ["jupyterhub", "-f", "{HUB_CONFIG_DIR}/{CONFIG}"]',
        f"LABEL {LABEL}.image={label_value('hub')}",
    ]
    return "\n".join(lines) + "\n"


def files(
    profiles: Sequence[HubProfile], settings: HubSettings, *, hub: str, layers: Sequence[Layer], base_image: str
) -> dict[str, str]:
    """Every file of docker/hub/, by path relative to it."""
    out = {
        CONFIG: fixed(CONFIG),
        SWARM_CONFIG: fixed(SWARM_CONFIG),
        PROFILES: profiles_json(profiles, settings, hub=hub),
        f"{HUB_IMAGE_DIR}/Dockerfile": hub_dockerfile(base_image),
        f"{HUB_IMAGE_DIR}/{HUB_PINS}": _pins(HUB_PINS),
    }
    for item in layers:
        out[f"{LAYERS_DIR}/{item.name}/Dockerfile"] = item.dockerfile
        if item.requirements is not None:
            out[f"{LAYERS_DIR}/{item.name}/{SINGLEUSER_PINS}"] = item.requirements
    return out


def _pins(filename: str) -> str:
    from nbenv.server_env import shipped

    return shipped(filename)
