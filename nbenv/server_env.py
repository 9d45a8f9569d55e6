"""nbenv's own pinned Jupyter server and ipykernel sets, for environments whose groups lack them.

A project whose groups install no jupyterlab still gets a working JupyterLab: nbenv installs its own
pinned, hash-checked server set into a venv of its own (SERVER_VENV), and the project's environment
stays the kernel (the same split as repo2docker's NB_PYTHON_PREFIX / KERNEL_PYTHON_PREFIX). A kernel
environment without ipykernel also gets nbenv's pinned ipykernel set, minus the packages its groups
already install (their pins win).

Both sets ship inside the package (nbenv/render/jupyter-server.txt, nbenv/render/ipykernel.txt):
requirements files with hashes and markers, written from nbenv's own poetry.lock (optional groups
nbenv-server and nbenv-kernel) by `scripts/server-pins`; tests/unit/test_server_env.py keeps them equal
to the lock. The markers cover every Python nbenv supports, so one file serves every base image.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from nbenv.lock import Lock, canonical, requirements_text

SERVER_VENV = "/opt/nbenv/server"
SERVER_GROUP = "nbenv-server"
KERNEL_GROUP = "nbenv-kernel"
SERVER_PINS = "jupyter-server.txt"
KERNEL_PINS = "ipykernel.txt"
# `nbenv hub`: the hub's own set (JupyterHub, DockerSpawner/SwarmSpawner, NativeAuthenticator, the Python
# configurable-http-proxy) for the hub image, and the hub's jupyterhub for single-user servers.
HUB_GROUP = "nbenv-hub"
SINGLEUSER_GROUP = "nbenv-singleuser"
HUB_PINS = "jupyterhub.txt"
SINGLEUSER_PINS = "jupyterhub-singleuser.txt"
# Where the generated build context holds them: a directory no Poetry group's requirements file can take.
CONTEXT_DIR = "nbenv"


@dataclass(frozen=True)
class Requirement:
    name: str  # as written (canonical() for comparisons)
    text: str  # the requirement's whole logical line: `name==version ; marker \` and its hash lines


# What the server venv needs: JupyterLab, and nbclient/nbformat for `nbenv run`'s driver. jupyterlab
# declares ipykernel, but the server never imports it (it starts kernels through kernelspecs, and the
# kernel is the project's environment): ipykernel and what only it needs (jedi, debugpy, IPython: about
# a third of the venv) stay out. tests/e2e/test_server_env.py runs the server without them.
SERVER_ROOTS = ("jupyterlab", "nbclient", "nbformat")
SERVER_SKIPS = ("ipykernel",)


def server_packages(lock_data: Mapping[str, Any]) -> set[str]:
    """The canonical names of SERVER_ROOTS' dependency closure in a parsed poetry.lock (requested extras
    included, markers ignored), without SERVER_SKIPS and what only they need."""
    return dependency_closure(lock_data, [(root, ()) for root in SERVER_ROOTS], skip=SERVER_SKIPS)


def dependency_closure(
    lock_data: Mapping[str, Any], roots: Sequence[tuple[str, Sequence[str]]], *, skip: Sequence[str] = ()
) -> set[str]:
    """Canonical names of the roots' (name, extras) dependency closure in a parsed poetry.lock: extras
    followed, markers ignored; a name in `skip` is left out with what only it needs."""
    packages = {canonical(str(p["name"])): p for p in lock_data.get("package", [])}
    skipped = {canonical(name) for name in skip}
    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(canonical(name), tuple(extras)) for name, extras in roots]
    while todo:
        name, extras = todo.pop()
        if name in skipped or name not in packages:
            continue
        package = packages[name]
        if name not in seen:
            seen.add(name)
            for dependency, spec in (package.get("dependencies") or {}).items():
                wanted = tuple(spec.get("extras", ())) if isinstance(spec, dict) else ()
                todo.append((canonical(dependency), wanted))
        for extra in extras:
            for item in (package.get("extras") or {}).get(extra, []):
                if match := re.match(r"[A-Za-z0-9._-]+", item):
                    todo.append((canonical(match.group(0)), ()))
    return seen


def pins_text(lock: Lock, group: str, *, only: Collection[str] | None = None) -> str:
    """The shipped file of `group` (SERVER_GROUP or KERNEL_GROUP), from nbenv's own lock; `only`: just
    these packages (canonical names) of the group."""
    what = {
        SERVER_GROUP: "Jupyter server",
        KERNEL_GROUP: "ipykernel",
        HUB_GROUP: "JupyterHub (the hub image)",
        SINGLEUSER_GROUP: "jupyterhub-singleuser",
    }[group]
    header = (
        f"nbenv's pinned {what} set: group {group} of nbenv's poetry.lock, with hashes and markers.\n"
        "Written by scripts/server-pins; do not edit (tests/unit/test_server_env.py checks it)."
    )
    pins = [p for p in lock.pins([group]) if only is None or canonical(p.name) in only]
    return requirements_text(pins, header=header)


def shipped_texts(lock: Lock, lock_data: Mapping[str, Any]) -> dict[str, str]:
    """{filename: text} of both shipped files, from nbenv's lock (parsed, and as TOML data)."""
    return {
        SERVER_PINS: pins_text(lock, SERVER_GROUP, only=server_packages(lock_data)),
        KERNEL_PINS: pins_text(lock, KERNEL_GROUP),
        HUB_PINS: pins_text(lock, HUB_GROUP),
        SINGLEUSER_PINS: pins_text(lock, SINGLEUSER_GROUP),
    }


def parse(text: str) -> tuple[Requirement, ...]:
    """The requirements of a file written by `requirements_text` (comment lines dropped)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(" "):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return tuple(Requirement(block[0].split("==", 1)[0], "\n".join(block)) for block in blocks)


@functools.cache
def shipped(filename: str) -> str:
    """The text of a shipped pins file (package data)."""
    return resources.files("nbenv.render").joinpath(filename).read_text("utf-8")


def server_requirements() -> str:
    return shipped(SERVER_PINS)


def kernel_requirements(installed: Iterable[str]) -> str | None:
    """nbenv's ipykernel set without the packages in `installed` (the environment's own), or None if
    nothing is left."""
    have = {canonical(name) for name in installed}
    keep = [r for r in parse(shipped(KERNEL_PINS)) if canonical(r.name) not in have]
    if not keep:
        return None
    header = (
        "Generated by nbenv: its pinned ipykernel set (nbenv/render/ipykernel.txt), for a kernel environment\n"
        "whose groups install no ipykernel, without the packages those groups install (their pins win)."
    )
    return "\n".join([*(f"# {line}" for line in header.splitlines()), *(r.text for r in keep)]) + "\n"


def installed_names(lock: Lock, groups: Sequence[str]) -> list[str]:
    """Every package the groups install (any marker)."""
    return [pin.name for pin in lock.pins(groups)]
