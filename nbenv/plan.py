"""Pure planning: (environment, lock, settings) -> what to build and how to run it. No I/O here.

Also where things land in the container (the container paths of repository paths, the data mount
targets, the import paths), which the loader's checks use too; the image's content key, tags and
labels are planned in image_plan.py."""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbenv.constants import USER_HOME
from nbenv.errors import SpecError
from nbenv.lock import Lock, Pin, name_problem, requirements_text
from nbenv.server_env import (
    CONTEXT_DIR,
    KERNEL_PINS,
    SERVER_PINS,
    installed_names,
    kernel_requirements,
    server_requirements,
)
from nbenv.spec.models import Environment, RepoConfig

VENV = "/opt/venv"
VARIANTS = ".nbenv/variants"
LAYERS_ROOT = "/opt/nbenv/layers"
TOKEN_SECRET = "jupyter_token"
CONTAINER_PORT = 8888
SERVICE = "jupyter"
# The root filesystem is read-only; HOME (Jupyter's runtime state, IPython, caches) and /tmp are
# per-container tmpfs. `exec`: pip --user scripts, numba or torch extensions run from there, as they
# could from the (writable, executable) source mount anyway; nosuid and nodev stay.
HOME_TMPFS_SIZE = 1024 * 1024 * 1024
TMP_TMPFS = f"mode=1777,exec,size={1024 * 1024 * 1024}"


def home_tmpfs(uid: int | str, gid: int | str) -> str:
    """The options of HOME's tmpfs: owned by the run UID, private to it."""
    return f"uid={uid},gid={gid},mode=0700,exec,size={HOME_TMPFS_SIZE}"


@dataclass(frozen=True)
class Layer:
    """One cached install step: the packages a group adds, in a requirements file of its own."""

    group: str
    filename: str
    text: str


@dataclass(frozen=True)
class BuildPlan:
    env: Environment
    image: str  # repository, e.g. "nbenv/traffic-analysis"
    parent_image: str | None  # repository of the parent environment's image
    from_image: str  # default FROM (the base image, or the parent's image)
    groups: tuple[str, ...]
    install_groups: tuple[str, ...]  # groups this image adds on top of its parent
    layers: tuple[Layer, ...]
    requirements_sha256: str
    target_dir: str  # where the packages go: the venv, or a layer directory for a child
    python_path: tuple[str, ...]  # container dirs added to sys.path through a .pth file
    system_packages: tuple[str, ...]
    out_dir: str  # repo-relative directory of the generated files
    is_variant: bool  # --groups override: generated outside the committed docker/ tree
    # nbenv's own Jupyter server (nbenv.server_env) runs this image: its groups install no jupyterlab.
    nbenv_server: bool = False
    server_layer: Layer | None = None  # the server set, installed by this image (a chain's root only)
    kernel_layer: Layer | None = None  # nbenv's ipykernel set, when the groups have none (root only)

    @property
    def kernel_name(self) -> str:
        return self.env.name

    @property
    def is_child(self) -> bool:
        return self.parent_image is not None


@dataclass(frozen=True)
class Mount:
    source: str  # relative to the compose file's directory ("" for a tmpfs)
    target: str
    read_only: bool
    tmpfs: bool = False  # an empty, read-only tmpfs that hides what the mounts below it show


STATE_DIR = ".nbenv"  # = workspace.STATE_DIR: the tokens, the parse cache, compose.env


def start_page(default_url: str) -> str:
    """The start page (`[jupyter] default_url`) without a `token` in its query: one there must not shadow
    the token nbenv (`up`'s URL) or a hub (the server's OAuth) gives. The rest of the query and the
    fragment are kept."""
    path, query, fragment = page_parts(default_url)
    return path + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")


def page_parts(default_url: str) -> tuple[str, str, str]:
    """(path, query without `token`, fragment) of a start page. Split by hand: urlsplit reads a path that
    starts with `//` as a host (`//x/lab` -> netloc x), and the start page is always a path on the server
    nbenv or the hub started."""
    rest, _, fragment = default_url.partition("#")
    path, _, query = rest.partition("?")
    kept = "&".join(q for q in query.split("&") if q and q.partition("=")[0] != "token")
    return path, kept, fragment


def token_file(name: str) -> str:
    """Repo-relative path of the environment's Jupyter token file (git-ignored state)."""
    return posixpath.join(STATE_DIR, "run", name, "jupyter_token")


@dataclass(frozen=True)
class RunPlan:
    project: str
    image: str
    port: int
    bind: str
    mounts: tuple[Mount, ...]
    environment: dict[str, str] = field(default_factory=dict)
    token_file: str = ""  # relative to the compose file's directory
    working_dir: str = ""


def image_repository(config: RepoConfig, name: str) -> str:
    return f"{config.image_prefix}/{name}"


def compose_project(config: RepoConfig, name: str) -> str:
    """Compose project of an environment, namespaced like its image so two workspaces never share one:
    a readable slug of the prefix and the name, then a short hash of the exact (prefix, name) pair, so
    prefixes that slug alike (`team.a`, `team-a`, `team/a`; `a-b` + `c` and `a` + `b-c`) stay apart.
    Lowercase letters, digits and `-`, starting with a letter or digit: a valid compose project name."""
    digest = hashlib.sha256(f"{config.image_prefix}\0{name}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", config.image_prefix.lower()).strip("-")[:40].rstrip("-") or "nbenv"
    return f"{slug}-{name}-{digest}"


def legacy_compose_project(config: RepoConfig, name: str) -> str:
    """The project name nbenv used before 0.2 (not injective): only to find containers it started."""
    prefix = re.sub(r"[^a-z0-9_-]+", "-", config.image_prefix.lower()).strip("-")
    return f"{prefix}-{name}"


# --- where repository paths land in the container -------------------------------------------


def relative_to_source(repo_path: str, source: str) -> str | None:
    """`repo_path` relative to the mount source `source` ("." itself), or None when it is not below it."""
    if source == ".":
        return repo_path
    if repo_path == source or repo_path.startswith(source + "/"):
        return posixpath.relpath(repo_path, source)
    return None


def container_paths_of(env: Environment, repo_path: str) -> list[str]:
    """Every place repo-relative `repo_path` appears through the environment's source mounts."""
    found = []
    for mount in env.mounts:
        relative = relative_to_source(repo_path, mount.source)
        if relative is not None:
            found.append(posixpath.normpath(posixpath.join(mount.target, relative)))
    return list(dict.fromkeys(found))


def container_path_of(env: Environment, repo_path: str) -> str | None:
    """Where repo-relative `repo_path` appears through the environment's first source mount that holds it."""
    return next(iter(container_paths_of(env, repo_path)), None)


def working_dir(env: Environment) -> str:
    """Where Jupyter's root and `nbenv run`'s working directory are: the first source mount's target, else HOME."""
    return env.mounts[0].target if env.mounts else USER_HOME


def data_mount_targets(env: Environment) -> list[str]:
    """The container path of each data entry (explicit target, else its place under a source mount)."""
    return [d.target or container_path_of(env, d.path) or posixpath.join(USER_HOME, "data", d.path) for d in env.data]


def data_targets(environments: Sequence[Environment]) -> list[str]:
    """Every data path (repo-relative: what DVC pulls) the environments declare, their parents' included,
    in a stable order."""
    return sorted({d.path for env in environments for d in env.data})


def import_paths(env: Environment, source_dirs: Sequence[str]) -> list[str] | None:
    """Container directories to put on sys.path so the project's package (in the repo-relative
    `source_dirs`) imports from the mount; None when a source mount holds not all of them."""
    paths = [container_path_of(env, d) for d in source_dirs]
    return None if any(p is None for p in paths) else [p for p in paths if p]


# --- the build plan ------------------------------------------------------------------------


def order_groups(env: Environment, groups: Sequence[str] | None) -> tuple[str, ...]:
    """The image's groups: the parent's first (its image already has them), then the rest as given."""
    if groups is None:
        return env.groups
    inherited = tuple(g for g in env.groups if g not in env.own_groups)
    return (*inherited, *(g for g in dict.fromkeys(groups) if g not in inherited))


def missing_parent_groups(env: Environment, groups: Sequence[str]) -> list[str]:
    inherited = [g for g in env.groups if g not in env.own_groups]
    return [g for g in inherited if g not in groups]


def jupyter_problem(env: Environment, lock: Lock, groups: Sequence[str]) -> str | None:
    """Why the selected groups cannot run this environment's Jupyter, if they cannot. JupyterLab is
    always there (nbenv supplies its own server when the groups have none); the classic interface
    needs the project's own `notebook` package."""
    if env.jupyter.interface == "notebook" and not lock.has("notebook", groups):
        return (
            f"the groups {', '.join(groups)} install no notebook, which Jupyter (interface = 'notebook') needs; "
            "nbenv supplies only JupyterLab"
        )
    return None


def uses_nbenv_server(lock: Lock, groups: Sequence[str]) -> bool:
    """Whether an image with these groups runs nbenv's own server: they install no jupyterlab. A project
    that pins its own jupyterlab keeps it."""
    return not lock.has("jupyterlab", groups)


def build_plan(
    env: Environment,
    *,
    lock: Lock,
    config: RepoConfig,
    python_path: Sequence[str],
    parent: Environment | None,
    groups: Sequence[str] | None = None,
) -> BuildPlan:
    chosen = order_groups(env, groups)
    inherited = tuple(g for g in chosen if parent is not None and g in parent.groups)
    install_groups = tuple(g for g in chosen if g not in inherited)
    pins = lock.pins(chosen, exclude_groups=inherited)
    layers = tuple(_layer(group, [p for p in pins if p.layer == group]) for group in install_groups)
    layers = tuple(layer for layer in layers if layer.text.count("==") > 0)
    digest = hashlib.sha256("".join(layer.text for layer in layers).encode()).hexdigest()
    is_variant = groups is not None and tuple(chosen) != env.groups
    out_dir = _variant_dir(env.name, chosen) if is_variant else posixpath.join(config.generated_dir, env.name)
    parent_repo = image_repository(config, parent.name) if parent else None
    own_packages = tuple(p for p in env.system_packages if parent is None or p not in parent.system_packages)
    # The union of groups only grows along a chain: when an image needs nbenv's server (or ipykernel set),
    # so did its chain's root, which installed it; children reuse it from the parent image.
    nbenv_server = uses_nbenv_server(lock, chosen)
    server_layer = kernel_layer = None
    if parent is None and nbenv_server:
        server_layer = Layer("nbenv-server", f"{CONTEXT_DIR}/{SERVER_PINS}", server_requirements())
    kernel = kernel_requirements(installed_names(lock, chosen)) if not lock.has("ipykernel", chosen) else None
    if parent is None and kernel is not None:
        kernel_layer = Layer("nbenv-kernel", f"{CONTEXT_DIR}/{KERNEL_PINS}", kernel)
    return BuildPlan(
        env=env,
        image=image_repository(config, env.name),
        parent_image=parent_repo,
        from_image=f"{parent_repo}:latest" if parent_repo else env.base_image,
        groups=chosen,
        install_groups=install_groups,
        layers=layers,
        requirements_sha256=digest,
        target_dir=posixpath.join(LAYERS_ROOT, env.name) if parent else VENV,
        python_path=tuple(python_path) if env.importable else (),
        system_packages=own_packages,
        out_dir=out_dir,
        is_variant=is_variant,
        nbenv_server=nbenv_server,
        server_layer=server_layer,
        kernel_layer=kernel_layer,
    )


def _variant_dir(name: str, groups: Sequence[str]) -> str:
    """`.nbenv/variants/NAME/GROUPS`: the names were checked on reading; checked again here, because this
    directory is written and cleaned, so it must stay under `.nbenv/variants/` whatever a name holds."""
    for part in (name, *groups):
        if problem := name_problem(part, "group name" if part in groups else "name"):
            raise SpecError(f"--groups: {problem}")
    out_dir = posixpath.join(VARIANTS, name, "-".join(sorted(groups)))
    if posixpath.normpath(out_dir) != out_dir or not out_dir.startswith(VARIANTS + "/") or out_dir.count("/") != 3:
        raise SpecError(f"--groups: the variant directory {out_dir!r} would leave {VARIANTS}/")
    return out_dir


def _layer(group: str, pins: list[Pin]) -> Layer:
    # Only the group's own name: a variant with other groups then shares this step's build cache.
    header = f"Generated by nbenv from poetry.lock: packages that group '{group}' adds."
    return Layer(group, f"requirements/{group}.txt", requirements_text(pins, header=header))


def run_plan(env: Environment, build: BuildPlan, *, project: str, token_file: str) -> RunPlan:
    """How compose runs the image: ports, mounts (source read-write, data read-only), the token secret."""
    to_root = posixpath.relpath(".", build.out_dir)

    def from_compose(repo_path: str) -> str:
        return posixpath.normpath(posixpath.join(to_root, repo_path))

    mounts = [Mount(from_compose(m.source), m.target, read_only=False) for m in env.mounts]
    # nbenv's state (every environment's token, the parse cache) is hidden under a mount of the
    # repository root: an empty read-only tmpfs over it. `.nbenv/` exists before a container starts
    # (the token is written first), so Docker creates no root-owned mountpoint in the repository.
    for mount in env.mounts:
        if mount.source == ".":
            mounts.append(Mount("", posixpath.join(mount.target, STATE_DIR), read_only=True, tmpfs=True))
    for data, target in zip(env.data, data_mount_targets(env), strict=True):
        mounts.append(Mount(from_compose(data.path), target, read_only=True))
        # Data under a source mount is also visible read-write through it: shadow that view under
        # every source mount that holds it (the loader refuses views that symlinks would open).
        for shadow in container_paths_of(env, data.path):
            if shadow != target:
                mounts.append(Mount(from_compose(data.path), shadow, read_only=True))
    return RunPlan(
        project=project,
        image=f"{build.image}:latest",
        port=env.jupyter.port,
        bind=env.jupyter.bind,
        mounts=tuple(mounts),
        environment=dict(sorted(env.env.items())),
        token_file=from_compose(token_file),
        working_dir=working_dir(env),
    )
