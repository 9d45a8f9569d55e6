"""Who the container runs as (nbenv.identity): the table, the engine kinds, the write check."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbenv.identity import EngineKind, Identity, can_write, decide, engine_kind
from nbenv.running.headless import ContainerRun, docker_run_argv
from nbenv.spec.models import Resources

ROOTFUL = ["name=seccomp,profile=default"]
ROOTLESS = ["name=seccomp,profile=default", "name=rootless", "name=cgroupns"]
REMAPPED = ["name=apparmor", "name=seccomp,profile=default", "name=userns"]


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        (ROOTFUL, EngineKind()),
        (ROOTLESS, EngineKind(rootless=True)),
        (REMAPPED, EngineKind(userns_remap=True)),
        ([], EngineKind()),
        (["name=rootlessish", "profile=name=userns"], EngineKind()),  # exact names only
    ],
)
def test_engine_kind_reads_docker_info_security_options(options: list[str], kind: EngineKind) -> None:
    assert engine_kind(options) == kind


uids = st.integers(min_value=0, max_value=2**31 - 2)


@given(caller=st.tuples(uids, uids), owner=st.tuples(uids, uids))
def test_the_table(caller: tuple[int, int], owner: tuple[int, int]) -> None:
    rootful = decide(EngineKind(), caller=caller, owner=owner)
    if caller[0] == 0:  # root runs it for the workspace's owner (root included)
        assert (rootful.uid, rootful.gid) == owner
    else:  # anyone else runs as themselves: never the owner's rights
        assert (rootful.uid, rootful.gid) == caller
    assert (rootful.host_uid, rootful.host_gid) == (rootful.uid, rootful.gid)
    assert not rootful.userns_host
    rootless = decide(EngineKind(rootless=True), caller=caller, owner=owner)
    # Container UID 0 is the caller in the engine's user namespace; any other UID would be a subordinate one.
    assert (rootless.uid, rootless.gid, rootless.host_uid, rootless.host_gid) == (0, 0, *caller)
    remapped = decide(EngineKind(userns_remap=True), caller=caller, owner=owner)
    assert remapped.userns_host and (remapped.uid, remapped.gid) == (rootful.uid, rootful.gid)


def test_compose_env_never_names_a_user_only_numbers() -> None:
    assert Identity(4321, 4321, 4321, 4321).compose_env() == {
        "NBENV_UID": "4321",
        "NBENV_GID": "4321",
        "NBENV_USERNS_MODE": "",
    }
    assert Identity(0, 0, 0, 0, userns_host=True).compose_env()["NBENV_USERNS_MODE"] == "host"


def _stat(path: Path, uid: int, gid: int, mode: int) -> os.stat_result:
    info = list(path.stat())
    info[stat.ST_UID], info[stat.ST_GID], info[stat.ST_MODE] = uid, gid, stat.S_IFDIR | mode
    return os.stat_result(info)


@pytest.mark.parametrize(
    ("owner", "mode", "who", "writable"),
    [
        ((1000, 100), 0o755, (1000, 100), True),
        ((1000, 100), 0o555, (1000, 100), False),  # the owner bits decide, even where group/other allow
        ((0, 0), 0o755, (0, 0), True),  # root's own files: owner bits
        ((0, 0), 0o555, (0, 0), False),  # no CAP_DAC_OVERRIDE: root without w bit cannot write
        ((1000, 100), 0o755, (0, 0), False),  # UID 0 without capabilities is not the owner
        ((1000, 100), 0o775, (4321, 100), True),  # shared group
        ((1000, 100), 0o755, (4321, 100), False),
        ((1000, 100), 0o757, (4321, 4321), True),  # other bits
        ((1000, 100), 0o766, (4321, 4321), False),  # w without x: cannot create entries
    ],
)
def test_can_write_is_the_kernels_bit_test_without_capabilities(
    tmp_path: Path, owner: tuple[int, int], mode: int, who: tuple[int, int], writable: bool
) -> None:
    assert can_write(_stat(tmp_path, *owner, mode), *who) is writable


def _argv(identity: Identity) -> list[str]:
    spec = ContainerRun(
        image="nbenv/x:ck-1",
        name="n",
        labels={},
        mounts=(),
        workdir="/home/jovyan/work",
        environment={},
        resources=Resources(),
        command=("python",),
        identity=identity,
    )
    return docker_run_argv("docker", spec)


@pytest.mark.security
@pytest.mark.parametrize("identity", [Identity(0, 0, 0, 0), Identity(4321, 4321, 4321, 4321)])
def test_nbenv_run_is_confined_like_up(identity: Identity) -> None:
    argv = _argv(identity)
    assert argv[argv.index("--user") + 1] == f"{identity.uid}:{identity.gid}"
    assert "--read-only" in argv and "--userns" not in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    tmpfs = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert tmpfs[0].startswith(f"/home/jovyan:uid={identity.uid},gid={identity.gid},mode=0700,")
    assert tmpfs[1].startswith("/tmp:mode=1777,")


def test_a_remapped_engine_opts_the_run_out_of_the_remap() -> None:
    argv = _argv(Identity(1000, 100, 1000, 100, userns_host=True))
    assert argv[argv.index("--userns") + 1] == "host"


@pytest.mark.badinput
def test_a_source_the_run_uid_cannot_write_is_one_line(tmp_path: Path) -> None:
    from nbenv.errors import RunError
    from nbenv.identity import check_can_save
    from nbenv.spec.models import SourceMount

    class Env:  # the one field check_can_save reads
        mounts = (SourceMount(source="."), SourceMount(source="src"))

    (tmp_path / "src").mkdir()
    owner = tmp_path.stat()
    me = Identity(owner.st_uid, owner.st_gid, owner.st_uid, owner.st_gid)
    check_can_save(tmp_path, Env(), me)  # type: ignore[arg-type]
    (tmp_path / "src").chmod(0o555)
    with pytest.raises(RunError) as caught:
        check_can_save(tmp_path, Env(), me)  # type: ignore[arg-type]
    assert caught.value.message.startswith(f"src: owned by UID {owner.st_uid} (mode dr-xr-xr-x): the container")
    assert "\n" not in caught.value.message and caught.value.hint
