"""What nbenv mounts or reads as user data, beyond symlinks (issue 13, items 7, 9, 18, 19 and the
hidden `.nbenv/`): container targets normalised before the system-directory rule, read-only data
read-only under every source mount, nbenv's state hidden from containers, special files and
endless files refused without hanging, an unknown DVC remote named."""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.dvc_outs import tracked_outputs
from nbenv.errors import DataError
from nbenv.plan import Mount, compose_project, run_plan, token_file
from nbenv.project import load_lock, plan_for
from nbenv.running import lifecycle as launch
from nbenv.running.headless import docker_run_argv, host_mounts
from nbenv.spec.load import Loader
from nbenv.spec.models import SYSTEM_DIRS, SYSTEM_EXACT, SourceMount
from nbenv.ui import quiet
from nbenv.workspace import Workspace
from tests.conftest import REPO, run_cli, snapshot

TA = "environments/traffic-analysis.toml"
PEMS = "data/processed/pems"


def append(root: Path, text: str, spec: str = TA) -> None:
    with (root / spec).open("a") as handle:
        handle.write(text)


def one_line(result: object, code: int, pattern: str) -> None:
    lines = result.err_lines  # type: ignore[attr-defined]
    assert result.code == code, result.err  # type: ignore[attr-defined]
    assert 1 <= len(lines) <= 2 and "Traceback" not in result.err, result.err  # type: ignore[attr-defined]
    assert re.search(pattern, lines[0]), lines[0]
    assert len(lines) == 1 or lines[1].startswith("  hint: ")


# --- item 9: mount targets are normalised before the system-directory rule ---------------------

SPELLINGS = ["/{d}", "//{d}", "///{d}", "/./{d}", "/{d}/", "/{d}/.", "//{d}//sub", "/./{d}/./sub/", "/{d}//x"]
REFUSED = sorted(SYSTEM_DIRS) + [p.lstrip("/") for p in SYSTEM_EXACT]


@pytest.mark.hostile("mount target spellings (//etc, /lib64, ...)")
@pytest.mark.badinput
@pytest.mark.parametrize(("top", "spelling"), list(itertools.product(REFUSED, SPELLINGS)))
def test_every_spelling_of_a_system_directory_is_refused(top: str, spelling: str) -> None:
    value = spelling.format(d=top)
    normalized = posixpath.normpath("/" + value.lstrip("/"))
    if "/" + top in SYSTEM_EXACT and normalized != "/" + top:  # below /home/jovyan is the user's place
        try:
            SourceMount(target=value)
        except ValueError as exc:
            assert "system directory" not in str(exc)
        return
    with pytest.raises(ValueError, match="would hide a system directory"):
        SourceMount(target=value)


@pytest.mark.hostile("mount target spellings (//etc, /lib64, ...)")
@pytest.mark.badinput
@settings(max_examples=300, deadline=None)
@given(
    top=st.sampled_from(sorted(SYSTEM_DIRS)),
    noise=st.lists(st.sampled_from(["/", "./", "//", "/./"]), max_size=4),
    rest=st.lists(st.sampled_from(["x", "lib", ".", "secrets", "venv"]), max_size=3),
    trailing=st.sampled_from(["", "/", "//", "/."]),
)
def test_no_spelling_gets_past_the_system_directory_rule(
    top: str, noise: list[str], rest: list[str], trailing: str
) -> None:
    value = "/" + "".join(noise) + top + "".join("/" + part for part in rest) + trailing
    with pytest.raises(ValueError, match="would hide a system directory"):
        SourceMount(target=value)


@pytest.mark.parametrize("target", ["/home/jovyan/work", "/home/jovyan/specs", "/srv/data", "/mnt/x", "/data"])
def test_ordinary_targets_stay_accepted(target: str) -> None:
    assert SourceMount(target=target).target == target


@pytest.mark.hostile("mount target spellings (//etc, /lib64, ...)")
@pytest.mark.badinput
@pytest.mark.parametrize("target", ["//etc", "/./etc", "/etc/", "/usr//lib", "/lib64", "/run/secrets", "/opt/venv"])
def test_the_issue_repro_mounting_environments_at_etc_is_one_line(workspace: Path, target: str) -> None:
    append(workspace, f'\n[[mounts]]\nsource = "."\n\n[[mounts]]\nsource = "environments"\ntarget = "{target}"\n')
    before = snapshot(workspace)
    result = run_cli("generate", cwd=workspace)
    one_line(result, 3, rf"^{TA}:\d+: mounts\[1\]\.target: '{target}' would hide a system directory")
    assert snapshot(workspace) == before


# --- item 7: read-only data stays read-only under every source mount ---------------------------


def _plan(root: Path, name: str = "traffic-analysis") -> tuple[object, object]:
    ws = Workspace(root.resolve())
    plan = plan_for(ws, Loader(ws), load_lock(ws), name)
    return plan, run_plan(plan.env, plan, project=compose_project(ws.config, name), token_file=token_file(name))


OVERLAPS = [
    (
        [(".", "/home/jovyan/work"), ("data", "/home/jovyan/d")],
        ["/home/jovyan/work/" + PEMS, "/home/jovyan/d/processed/pems"],
    ),
    (
        [("data", "/home/jovyan/d"), (".", "/home/jovyan/work")],
        ["/home/jovyan/d/processed/pems", "/home/jovyan/work/" + PEMS],
    ),
    (
        [(".", "/home/jovyan/work"), ("data", "/home/jovyan/d"), ("data/processed", "/home/jovyan/p")],
        ["/home/jovyan/work/" + PEMS, "/home/jovyan/d/processed/pems", "/home/jovyan/p/pems"],
    ),
]


@pytest.mark.hostile("read-only data under overlapping mounts")
@pytest.mark.security
@pytest.mark.parametrize(("mounts", "views"), OVERLAPS)
def test_data_is_read_only_under_every_source_mount_that_holds_it(
    workspace: Path, mounts: list[tuple[str, str]], views: list[str]
) -> None:
    """The issue's repro: mounts `.` and `data`, data `data/processed/pems`: before, only the first
    mount's view was read-only and the container wrote into `.../processed/pems/` through the second."""
    (workspace / PEMS).mkdir(parents=True)
    (workspace / "data/processed/climate").mkdir(parents=True)
    append(workspace, "".join(f'\n[[mounts]]\nsource = "{s}"\ntarget = "{t}"\n' for s, t in mounts))
    plan, service = _plan(workspace)
    read_only = {m.target for m in service.mounts if m.read_only and m.source.endswith(PEMS)}  # type: ignore[attr-defined]
    assert set(views) <= read_only
    argv = docker_run_argv("docker", _container(workspace, plan, service))
    options = [value for flag, value in itertools.pairwise(argv) if flag == "--mount"]
    for view in views:
        assert f"type=bind,source={(workspace / PEMS).resolve()},target={view},readonly" in options
    assert run_cli("generate", cwd=workspace).code == 0
    compose = yaml.safe_load((workspace / "docker/traffic-analysis/compose.yaml").read_text())
    volumes = compose["services"]["jupyter"]["volumes"]
    for view in views:
        assert {"type": "bind", "source": "../../" + PEMS, "target": view, "read_only": True} | {
            "bind": {"create_host_path": False}
        } in volumes


def _container(root: Path, plan: object, service: object) -> object:
    from nbenv.running.headless import ContainerRun
    from nbenv.spec.models import Resources

    return ContainerRun(
        image="i",
        name="n",
        labels={},
        mounts=host_mounts(root.resolve(), plan.out_dir, service.mounts),  # type: ignore[attr-defined]
        workdir="/home/jovyan/work",
        environment={},
        resources=Resources(),
        command=("true",),
    )


@pytest.mark.hostile("read-only data under overlapping mounts")
@pytest.mark.badinput
@pytest.mark.security
def test_a_source_mount_inside_read_only_data_is_refused(workspace: Path) -> None:
    (workspace / PEMS / "part").mkdir(parents=True)
    append(workspace, f'\n[[mounts]]\nsource = "."\n\n[[mounts]]\nsource = "{PEMS}/part"\ntarget = "/home/jovyan/p"\n')
    one_line(
        run_cli("validate", cwd=workspace),
        3,
        rf"^{TA}:\d+: mounts\[1\]\.source: mount source '{PEMS}/part' lies inside the read-only data '{PEMS}'",
    )


@pytest.mark.hostile("read-only data under overlapping mounts")
@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.parametrize("how", ["data-through-link", "mount-through-link"])
def test_data_visible_read_write_through_a_symlink_is_refused(workspace: Path, how: str) -> None:
    """The read-only shadow sits where the path as written puts it; a symlink would open another view."""
    (workspace / PEMS).mkdir(parents=True)
    (workspace / "data/processed/climate").mkdir(parents=True)
    if how == "data-through-link":
        (workspace / "realdata").mkdir()
        (workspace / "linked").symlink_to("realdata")
        (workspace / "linked.dvc").write_text("outs:\n- path: linked\n")
        append(workspace, '\n[[data]]\npath = "linked"\n')
        expect = r"data\[2\]\.path: the read-only data 'linked' is also visible read-write through mount source '\.'"
    else:
        (workspace / "alias").symlink_to("data")
        append(workspace, '\n[[mounts]]\nsource = "."\n\n[[mounts]]\nsource = "alias"\ntarget = "/home/jovyan/a"\n')
        expect = (
            r"mounts\[1\]\.source: the read-only data '[^']+' is also visible read-write through mount source 'alias'"
        )
    one_line(run_cli("validate", cwd=workspace), 3, rf"^{TA}:\d+: {expect}")


# --- .nbenv/ (tokens, parse cache) is hidden from containers --------------------------------


@pytest.mark.hostile(".nbenv/ and .git/ seen by containers")
@pytest.mark.security
def test_nbenv_state_is_hidden_under_a_mount_of_the_root(workspace: Path) -> None:
    plan, service = _plan(workspace)
    hidden = [m for m in service.mounts if m.tmpfs]  # type: ignore[attr-defined]
    assert hidden == [Mount("", "/home/jovyan/work/.nbenv", read_only=True, tmpfs=True)]
    argv = docker_run_argv("docker", _container(workspace, plan, service))
    assert "type=tmpfs,target=/home/jovyan/work/.nbenv,tmpfs-size=4096,readonly" in argv
    assert run_cli("generate", cwd=workspace).code == 0
    compose = yaml.safe_load((workspace / "docker/traffic-analysis/compose.yaml").read_text())
    assert {"type": "tmpfs", "target": "/home/jovyan/work/.nbenv", "read_only": True, "tmpfs": {"size": 4096}} in (
        compose["services"]["jupyter"]["volumes"]
    )


@pytest.mark.hostile(".nbenv/ and .git/ seen by containers")
@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.parametrize(
    ("source", "make", "expect"),
    [
        (".nbenv", [".nbenv/run/base"], r"'\.nbenv' is inside \.nbenv/"),
        (".nbenv/run", [".nbenv/run/base"], r"'\.nbenv/run' is inside \.nbenv/"),
        (".git/hooks", [".git/hooks"], r"'\.git/hooks' is inside \.git/"),
        ("rootlink", [], r"'rootlink' is the repository root through a symlink"),
    ],
)
def test_mounts_that_would_show_tokens_or_git_hooks_are_refused(
    workspace: Path, source: str, make: list[str], expect: str
) -> None:
    for directory in make:
        (workspace / directory).mkdir(parents=True)
    (workspace / "rootlink").symlink_to(".")
    append(workspace, f'\n[[mounts]]\nsource = "{source}"\ntarget = "/home/jovyan/s"\n', spec="environments/base.toml")
    one_line(run_cli("validate", cwd=workspace), 3, rf"^environments/base\.toml:\d+: mounts\[0\]\.source: {expect}")


# --- item 18: special files never hang, endless files are capped -------------------------------


def _limited() -> None:
    """In the child: at most 4 GiB of address space, so that a regression reading /dev/zero fails
    the test instead of taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _cli(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, so that a hang fails the test instead of blocking it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "NBENV_DOCKER": "/nonexistent/docker"}
    return subprocess.run(
        [sys.executable, "-m", "nbenv", "--repo", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
        preexec_fn=_limited,
    )


@pytest.mark.hostile("special and endless files (FIFO, device, size)")
@pytest.mark.badinput
@pytest.mark.parametrize("name", ["a.dvc", "data/b.dvc", "sub/dvc.yaml"])
def test_a_fifo_named_like_a_dvc_file_does_not_hang_validate(workspace: Path, name: str) -> None:
    (workspace / name).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(workspace / name)
    result = _cli(workspace, "validate")
    assert result.returncode == 0, result.stderr  # skipped: the demo's data is declared in dvc.yaml
    append(workspace, '\n[[data]]\npath = "elsewhere"\n')
    result = _cli(workspace, "validate")
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines()[0] == f"{name}: is a FIFO (named pipe), not a file", result.stderr


@pytest.mark.hostile("special and endless files (FIFO, device, size)")
@pytest.mark.badinput
def test_a_dvc_file_linked_to_a_device_or_out_of_the_repository_is_not_read(workspace: Path, tmp_path: Path) -> None:
    (workspace / "zero.dvc").symlink_to("/dev/zero")
    (tmp_path / "out.dvc").write_text("outs:\n- path: ../../etc\n")
    (workspace / "out.dvc").symlink_to(tmp_path / "out.dvc")
    walk = (
        "import json, sys; from pathlib import Path; from nbenv.dvc_outs import tracked_outputs; broken = {}; "
        "outputs = tracked_outputs(Path(sys.argv[1]), broken); print(json.dumps([outputs, broken]))"
    )
    child = subprocess.run(
        [sys.executable, "-c", walk, str(workspace)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=_limited,  # a regression would read /dev/zero without end
    )
    assert child.returncode == 0, child.stderr[-2000:]
    outputs, broken = json.loads(child.stdout)
    assert not any("etc" in out for out in outputs)
    assert set(broken) == {"zero.dvc", "out.dvc"}
    assert all("leads outside the repository" in problem for problem in broken.values())


@pytest.mark.hostile("symlink: DVC file walk")
@pytest.mark.security
def test_the_dvc_file_walk_follows_no_directory_symlink(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/x.dvc").write_text("outs:\n- path: x\n")
    (workspace / "ext").symlink_to(tmp_path / "elsewhere")
    (workspace / "inner").mkdir()
    (workspace / "inner/loop").symlink_to("..")  # a loop: os.walk must not go round it
    (workspace / "inner/y.dvc").write_text("outs:\n- path: y\n")
    outputs = tracked_outputs(workspace)
    assert "inner/y" in outputs and not any(out.startswith(("ext", "inner/loop")) for out in outputs)


def _notebook_json() -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})


@pytest.mark.hostile("special and endless files (FIFO, device, size)")
@pytest.mark.badinput
@pytest.mark.parametrize(
    ("make", "expect"),
    [
        ("/dev/zero", r": is a device, not a file$"),
        ("fifo", r"^nb\.ipynb: is a FIFO \(named pipe\), not a file$"),
        ("huge", r"^nb\.ipynb: \d+ bytes, more than the 64 MiB nbenv reads from such a file$"),
        ("dir", r"^nb\.ipynb: is a directory, not a file$"),
    ],
)
def test_a_notebook_that_is_no_file_or_endless_is_one_line_and_never_hangs(
    workspace: Path, make: str, expect: str
) -> None:
    notebook = workspace / "nb.ipynb"
    if make == "fifo":
        os.mkfifo(notebook)
    elif make == "huge":
        with notebook.open("wb") as handle:
            handle.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    elif make == "dir":
        notebook.mkdir()
    result = _cli(workspace, "run", "traffic-analysis", make if make == "/dev/zero" else str(notebook))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in result.stderr
    assert re.search(expect, lines[0]), lines[0]


@pytest.mark.security
def test_an_output_the_user_names_outside_the_repository_is_allowed(workspace: Path, tmp_path: Path) -> None:
    """The command line is trusted, the repository is not: `--output /tmp/x.ipynb` passes the checks."""
    (workspace / "nb.ipynb").write_text(_notebook_json())
    result = _cli(workspace, "run", "base", "nb.ipynb", "--no-pull", "--output", str(tmp_path / "x.ipynb"))
    assert result.returncode == 6, result.stderr  # got to the engine
    assert not (tmp_path / "x.ipynb").exists()


# --- --allow-missing creates data directories only inside the repository ---------------------


@pytest.mark.hostile("symlink: data-entry")
@pytest.mark.security
def test_allow_missing_creates_no_directory_through_a_link_placed_after_validation(
    workspace: Path, tmp_path: Path
) -> None:
    ws = Workspace(workspace.resolve())
    env = Loader(ws).environment("traffic-analysis")
    (tmp_path / "outside").mkdir()
    (workspace / "data").symlink_to(tmp_path / "outside")  # swapped in after the spec was checked
    with pytest.raises(DataError, match="leads outside the repository"):
        launch._check_data(ws, env, allow_missing=True, say=quiet)
    assert list((tmp_path / "outside").iterdir()) == []


def test_allow_missing_still_creates_the_empty_directories(workspace: Path) -> None:
    ws = Workspace(workspace.resolve())
    env = Loader(ws).environment("traffic-analysis")
    launch._check_data(ws, env, allow_missing=True, say=quiet)
    assert (workspace / PEMS).is_dir() and not (workspace / PEMS).is_symlink()


# --- item 19: an unknown DVC remote --------------------------------------------------------------


@pytest.mark.hostile("accepted, failing later (unknown DVC remote)")
@pytest.mark.badinput
@pytest.mark.parametrize("command", ["status", "push", "pull"])
def test_an_unknown_remote_is_one_line_naming_the_configured_ones(workspace: Path, command: str) -> None:
    from dvc.repo import Repo

    Repo.init(str(workspace), no_scm=True).close()
    (workspace / ".dvc/config").write_text(
        "[core]\n    no_scm = True\n    remote = local\n['remote \"local\"']\n    url = /tmp/nowhere\n"
    )
    for path in (PEMS, "data/processed/climate"):
        (workspace / path).mkdir(parents=True)
    result = run_cli("data", command, "traffic-analysis", "--remote", "nonexistent", cwd=workspace)
    one_line(result, 8, r"^--remote 'nonexistent': no such DVC remote \(configured: local\)$")


# --- the executed notebook is written beside, never through, a link ----------------------------


@pytest.mark.hostile("symlink: default-output")
@pytest.mark.security
def test_an_output_link_inside_the_repository_is_replaced_not_written_through(workspace: Path) -> None:
    """`notebooks/traffic.out.ipynb -> ../.git/config` (inside, so accepted) must not clobber git's config."""
    from nbenv.running.headless import _output_target, _write_output

    (workspace / ".git").mkdir()
    (workspace / ".git/config").write_text("[core]\n")
    (workspace / "notebooks").mkdir()
    link = workspace / "notebooks/traffic.out.ipynb"
    link.symlink_to("../.git/config")
    if os.geteuid() == 0:
        os.chown(workspace / "notebooks", 1000, 100)
    target = _output_target(workspace.resolve(), link)
    assert target == workspace.resolve() / "notebooks/traffic.out.ipynb"
    _write_output(target, {"cells": [], "nbformat": 4})
    assert (workspace / ".git/config").read_text() == "[core]\n"
    assert not link.is_symlink() and json.loads(link.read_text())["nbformat"] == 4
    if os.geteuid() == 0:  # as root: owned like its directory, never root-owned in a user's tree
        assert (link.stat().st_uid, link.stat().st_gid) == (1000, 100)


# --- Docker creates no root-owned mountpoint in the repository ---------------------------------


@pytest.mark.hostile("mount target spellings (//etc, /lib64, ...)")
@pytest.mark.badinput
@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (
            '\n[[mounts]]\nsource = "."\n\n[[mounts]]\nsource = "environments"\ntarget = "/home/jovyan/work/specs"\n',
            r"mounts\[1\]\.target: '/home/jovyan/work/specs' lies inside the source mount at '/home/jovyan/work'",
        ),
        (
            '\n[[data]]\npath = "data/processed/pems"\ntarget = "/home/jovyan/work/pems"\n',
            r"data\[0\]\.target: '/home/jovyan/work/pems' lies inside the source mount at '/home/jovyan/work'",
        ),
    ],
)
def test_a_target_inside_a_source_mount_that_would_need_a_new_mountpoint_is_refused(
    workspace: Path, extra: str, expect: str
) -> None:
    if "[[data]]" in extra:  # replace the demo's data entries with the one under test
        text = (workspace / TA).read_text()
        head, _, rest = text.partition("[[data]]")
        (workspace / TA).write_text(head + rest[rest.index("[env]") :] + extra)
    else:
        append(workspace, extra)
    before = snapshot(workspace)
    one_line(run_cli("generate", cwd=workspace), 3, rf"^{TA}:\d+: {expect}")
    assert snapshot(workspace) == before


def test_a_target_at_its_own_place_under_a_source_mount_is_accepted(workspace: Path) -> None:
    append(
        workspace,
        '\n[[mounts]]\nsource = "."\n\n[[mounts]]\nsource = "environments"\n'
        'target = "/home/jovyan/work/environments"\n',
    )
    assert run_cli("validate", cwd=workspace).code == 0
