"""Who the container runs as, decided at run time and never baked into the image.

The container writes the mounted source as the workspace's owner, so every file Jupyter, `nbenv run`
or `nbenv shell` creates there belongs to that owner on the host. The image stays the same for every
user: HOME and Jupyter's runtime state live on a tmpfs owned by the run UID, the root filesystem is
read-only, and no process in the container holds a capability (see docs/design/ownership.md).

| engine                    | caller                  | runs as                                            |
|---------------------------|-------------------------|----------------------------------------------------|
| rootful                   | root                    | the owner of the workspace root (`stat .`)         |
| rootful                   | anyone else             | the caller's own UID:GID (never borrowed rights)   |
| rootless (Docker, Podman) | anyone                  | 0:0, which *is* the caller in its user namespace   |
| `userns-remap` daemon     | as rootful              | as rootful, opted out of the remap (`--userns host`)|
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nbenv.constants import USER_GID, USER_UID
from nbenv.errors import RunError
from nbenv.spec.models import Environment

# What compose interpolates into the generated file (`user:`, the HOME tmpfs, `userns_mode:`).
UID_VARIABLE, GID_VARIABLE, USERNS_VARIABLE = "NBENV_UID", "NBENV_GID", "NBENV_USERNS_MODE"


@dataclass(frozen=True)
class EngineKind:
    rootless: bool = False
    userns_remap: bool = False


def engine_kind(security_options: Iterable[str]) -> EngineKind:
    """From `docker info`'s SecurityOptions (`name=seccomp,profile=default`, `name=rootless`, `name=userns`)."""
    names = {
        field.removeprefix("name=")
        for option in security_options
        for field in str(option).split(",")
        if field.startswith("name=")
    }
    return EngineKind(rootless="rootless" in names, userns_remap="userns" in names)


@dataclass(frozen=True)
class Identity:
    """The container's UID:GID, and the host UID:GID its writes land as (they differ only when rootless)."""

    uid: int
    gid: int
    host_uid: int
    host_gid: int
    userns_host: bool = False

    def compose_env(self) -> dict[str, str]:
        return {
            UID_VARIABLE: str(self.uid),
            GID_VARIABLE: str(self.gid),
            USERNS_VARIABLE: "host" if self.userns_host else "",
        }

    def describe(self) -> str:
        where = f" (host {self.host_uid}:{self.host_gid}, rootless engine)" if self.host_uid != self.uid else ""
        return f"{self.uid}:{self.gid}{where}"


def decide(kind: EngineKind, *, caller: tuple[int, int], owner: tuple[int, int]) -> Identity:
    """Pure: the table in this module's docstring."""
    if kind.rootless:
        return Identity(0, 0, *caller)
    uid, gid = owner if caller[0] == 0 else caller
    return Identity(uid, gid, uid, gid, userns_host=kind.userns_remap)


def for_workspace(root: Path, security_options: Iterable[str]) -> Identity:
    """Who runs the containers of the workspace at `root`, on the engine with these SecurityOptions."""
    info = root.stat()
    return decide(engine_kind(security_options), caller=(os.geteuid(), os.getegid()), owner=(info.st_uid, info.st_gid))


def hand_over(path: Path, identity: Identity) -> None:
    """As root running another owner's environment: give nbenv's own fresh file or directory (the token,
    `nbenv run`'s exchange directory; never a link) to the user the container runs as."""
    if os.geteuid() == 0 and identity.host_uid != 0:
        os.chown(path, identity.host_uid, identity.host_gid, follow_symlinks=False)


DEFAULT = Identity(USER_UID, USER_GID, USER_UID, USER_GID)  # what the image's USER line says, for a bare `docker run`


def can_write(info: os.stat_result, uid: int, gid: int) -> bool:
    """Whether a process with exactly this UID:GID and no capability may create files in a directory
    with `info`: the owner, else the group, else the other bits decide (UID 0 included: without
    CAP_DAC_OVERRIDE root is an ordinary user of its own files)."""
    mode = info.st_mode
    if info.st_uid == uid:
        return bool(mode & stat.S_IWUSR and mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(mode & stat.S_IWGRP and mode & stat.S_IXGRP)
    return bool(mode & stat.S_IWOTH and mode & stat.S_IXOTH)


def check_can_save(root: Path, env: Environment, identity: Identity) -> None:
    """The container writes each source mount as `identity` (the workspace's owner, or you): where that
    cannot work, saving a notebook (or a run's output) would fail, so nbenv refuses with one line."""
    for mount in env.mounts:
        info = (root / mount.source).stat()
        if not can_write(info, identity.host_uid, identity.host_gid):
            you = "you" if identity.host_uid == os.geteuid() else "the workspace's owner"
            raise RunError(
                f"{mount.source}: owned by UID {info.st_uid} (mode {stat.filemode(info.st_mode)}): the container "
                f"runs as {you}, UID {identity.host_uid}, and could not save notebooks there",
                f"run nbenv as its owner (UID {info.st_uid}), or give UID {identity.host_uid} write access "
                f"(e.g. `chmod g+w` with a shared group)",
            )
