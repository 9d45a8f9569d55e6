"""`nbenv run`: execute a notebook headless in its environment's image and write the executed copy.

The flow: parse `-p` values and inject them into a copy of the notebook (pure, on the host, with
the json module), pull the environment's data, build its image if stale (the ImageBuilder that
`up` uses), then `docker run` a small nbclient driver in a throwaway container with the compose
service's mounts (source read-write, data read-only), no network, no capabilities. The notebook
goes in and comes back through a private temp directory; the host writes the executed notebook
atomically. No Jupyter server, no token, no port.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import secrets
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv import datasync, inimage
from nbenv.adapters.engine import EngineAPI
from nbenv.adapters.git import exclude_locally
from nbenv.adapters.process import argv, stream
from nbenv.constants import USER_HOME
from nbenv.errors import DataError, NbenvError, RunError, UsageError
from nbenv.fs import atomic_write
from nbenv.identity import DEFAULT, Identity, check_can_save, for_workspace, hand_over
from nbenv.plan import (
    STATE_DIR,
    TMP_TMPFS,
    BuildPlan,
    Mount,
    compose_project,
    container_path_of,
    data_targets,
    home_tmpfs,
    run_plan,
    token_file,
)
from nbenv.project import Project
from nbenv.render.compose import TMPFS_SIZE
from nbenv.running.gpus import docker_gpus_option, is_no_gpu_driver, no_gpu_error
from nbenv.running.notebook import (
    OUTPUT_PATTERN,
    Notebook,
    cell_at,
    default_output,
    failing_cell,
    first_line,
    inject_parameters,
    parse_parameters,
    read_notebook,
)
from nbenv.safepath import confine, is_inside, owned_dir
from nbenv.server_env import SERVER_VENV
from nbenv.spec.models import Environment, Resources
from nbenv.ui import Say, quiet
from nbenv.workspace import Workspace

IO_DIR = "/run/nbenv"  # the temp directory inside the container (user mounts may not target /run)
BACKSTOP_SECONDS = 90.0  # after --timeout, on top of kernel start-up and shutdown: then the container is killed


# --- pure: the container ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerRun:
    image: str
    name: str
    labels: Mapping[str, str]
    mounts: tuple[Mount, ...]  # sources are absolute host paths
    workdir: str
    environment: Mapping[str, str]
    resources: Resources
    command: tuple[str, ...]
    identity: Identity = DEFAULT  # who runs it: the workspace's owner (nbenv.identity)


def _output_target(root: Path, path: Path) -> Path:
    """Where the executed notebook goes: its directory resolved and confined like a notebook, and
    the file itself never written through. A link there that leads out of the repository is refused;
    one that stays inside is replaced by the file (not followed to, say, `.git/config`)."""
    _confined_path(root, path, what="output")
    absolute = Path(os.path.abspath(path))
    return _confined_path(root, absolute.parent, what="output") / absolute.name


def _mount_option(mount: Mount) -> str:
    """`--mount` takes CSV: quote a field holding a comma or a quote."""
    if mount.tmpfs:
        fields = ["type=tmpfs", f"target={mount.target}", f"tmpfs-size={TMPFS_SIZE}"]
        quoted = [f'"{f.replace(chr(34), chr(34) * 2)}"' if ("," in f or '"' in f) else f for f in fields]
        return ",".join([*quoted, "readonly"])
    fields = ["type=bind", f"source={mount.source}", f"target={mount.target}"]
    quoted = [f'"{f.replace(chr(34), chr(34) * 2)}"' if ("," in f or '"' in f) else f for f in fields]
    return ",".join([*quoted, *(["readonly"] if mount.read_only else [])])


def docker_run_argv(docker: str, spec: ContainerRun) -> list[str]:
    """`docker run` for a headless run, confined like `nbenv up`'s service: removed on exit, labelled,
    as the workspace's owner, no network (the notebook reads mounted data; the kernel talks to
    nbclient over loopback, which `none` keeps), no capabilities, no privilege escalation, a
    read-only root filesystem with HOME and /tmp on tmpfs, never pulling. `--mount` (not `-v`)
    fails on a missing source instead of creating an empty root-owned directory."""
    who = spec.identity
    return argv(
        docker,
        "run",
        "--rm",
        ["--name", spec.name],
        [part for key, value in sorted(spec.labels.items()) for part in ("--label", f"{key}={value}")],
        ["--user", f"{who.uid}:{who.gid}"],
        ["--userns", "host"] if who.userns_host else None,
        ["--network", "none"],
        ["--cap-drop", "ALL"],
        ["--security-opt", "no-new-privileges"],
        "--read-only",
        ["--tmpfs", f"{USER_HOME}:{home_tmpfs(who.uid, who.gid)}"],
        ["--tmpfs", f"/tmp:{TMP_TMPFS}"],
        ["--pull", "never"],
        ["--workdir", spec.workdir],
        [part for mount in spec.mounts for part in ("--mount", _mount_option(mount))],
        [part for key, value in sorted(spec.environment.items()) for part in ("--env", f"{key}={value}")],
        ["--cpus", f"{spec.resources.cpus:g}"] if spec.resources.cpus is not None else None,
        ["--memory", spec.resources.memory] if spec.resources.memory is not None else None,
        ["--shm-size", spec.resources.shm_size] if spec.resources.shm_size is not None else None,
        ["--gpus", docker_gpus_option(spec.resources.gpus)] if spec.resources.gpus is not None else None,
        spec.image,
        list(spec.command),
    )


def host_mounts(root: Path, out_dir: str, mounts: Sequence[Mount]) -> tuple[Mount, ...]:
    """The compose service's mounts (sources relative to its directory) with absolute host sources:
    the real paths, confined to the repository once more right before `docker run` (the loader
    checked them when planning; a running container of the same repository could have swapped a
    directory for a symlink since)."""
    base = root / out_dir
    return tuple(
        m
        if m.tmpfs
        else Mount(
            str(confine(root, posixpath.normpath(str(base / m.source)), what="mount source", error=RunError)),
            m.target,
            m.read_only,
        )
        for m in mounts
    )


def _confined_path(root: Path, path: Path, *, what: str) -> Path:
    """A notebook or output path from the command line. A path that goes through the repository
    (it, or a directory on its way, lies there) is resolved and must stay inside it: a committed
    symlink (`notebooks/x.out.ipynb -> /etc/...`, `notebooks -> /`) cannot lead reads or writes out.
    A path the user names outside the repository is used as given: the command line is trusted,
    the repository is not."""
    absolute = Path(os.path.abspath(path))
    real_root = root.resolve()
    through_repo = any(is_inside(real_root, p.resolve()) for p in (absolute, *absolute.parents))
    if not through_repo:
        return absolute
    return confine(real_root, absolute, what=what, error=UsageError)


# The driver (nbenv/inimage/run_driver.py) runs inside the image, with the Python of its Jupyter server
# (`driver_python`); it executes the notebook cell by cell and writes the executed notebook and a status
# file even when a cell fails, times out or the kernel dies.
DRIVER_SCRIPT = "run_driver.py"


def driver_python(plan: BuildPlan) -> str:
    """The interpreter that runs the driver: nbenv's server venv when the image runs nbenv's server (the
    kernel environment may have no nbclient), else the environment's own `python`. The kernel is the
    environment's either way (the kernelspec named after it)."""
    return f"{SERVER_VENV}/bin/python" if plan.nbenv_server else "python"


# --- act --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    output: Path
    image: str


def run_notebook(
    project: Project,
    *,
    name: str,
    notebook: Path,
    parameters: Sequence[str] = (),
    output: Path | None = None,
    timeout: float | None = None,
    pull: bool = True,
    build: bool = True,
    say: Say = quiet,
    live: bool = False,
) -> RunResult:
    """Execute `notebook` in `name`'s image; write the executed notebook to `output` (default
    NAME.out.ipynb beside it) atomically, also when a cell fails (RunError naming the cell)."""
    ws = project.ws
    where = ws.rel(notebook)
    values = parse_parameters(parameters)  # everything a user can get wrong is checked before Docker
    given_target = output if output is not None else default_output(notebook)
    notebook = _confined_path(ws.root, notebook, what="notebook")
    _output_target(ws.root, given_target)
    prepared = inject_parameters(read_notebook(notebook, where=where), values, where=where)
    plan = project.plan(name)
    env = plan.env
    targets = data_targets([env])
    if not pull:  # what gets mounted is checked before Docker is needed
        _check_run_data(ws, name, env.file, targets)
    engine = project.engine
    if pull and targets:
        say(f"data: {datasync.pull(ws.root, targets, jobs=None, remote=None, say=say).line()}")
        _check_run_data(ws, name, env.file, targets)
    image = _image(project, plan, build=build, live=live, say=say)
    identity = for_workspace(ws.root, engine.security_options)
    check_can_save(ws.root, env, identity)
    # The mountpoint of the tmpfs that hides .nbenv/ exists before Docker needs it (else Docker
    # would create it in the repository, owned by root).
    owned_dir(ws.root, STATE_DIR, what="state directory", error=RunError)
    with tempfile.TemporaryDirectory(prefix="nbenv-run-") as tmp:
        io = _exchange_dir(Path(tmp), prepared, _job(ws, env, notebook, timeout), identity)
        spec = _container(ws, plan, image, io, identity)
        say(f"running {where} in {image}")
        try:
            code, killed = _run_container(engine, spec, timeout=timeout, say=say)
        except NoGpuDriver:
            raise no_gpu_error(env) from None
        status = _read_json(io / "status.json")
        executed = _read_json(io / "output.ipynb")
        if executed is not None:
            # Checked again now that the container (which could write the source tree) is gone.
            _write_output(_output_target(ws.root, given_target), executed)
            if output is None:  # nbenv chose the name: git ignores it locally (not in the user's .gitignore)
                exclude_locally(ws.root, OUTPUT_PATTERN)
    return _outcome(
        where, given_target, image, code=code, killed=killed, status=status, executed=executed, timeout=timeout
    )


def _image(project: Project, plan: BuildPlan, *, build: bool, live: bool, say: Say) -> str:
    """The environment's image: built if stale, or with --no-build the one there is, as it is."""
    name = plan.env.name
    if build:
        return project.builder(say=say, live=live).build(name).ref
    image = f"{plan.image}:latest"
    if project.engine.image_id(image) is None:
        raise RunError(f"{name}: no image {image} yet (--no-build)", f"build it: `nbenv image build {name}`")
    say(f"{name}: using {image} as it is (--no-build: not checked against the spec)")
    return image


def _job(ws: Workspace, env: Environment, notebook: Path, timeout: float | None) -> dict[str, object]:
    """What the driver reads from job.json: the files in the exchange directory, the kernel, where to run."""
    notebook_dir = ws.rel(notebook.resolve().parent)
    cwd = container_path_of(env, notebook_dir) if not Path(notebook_dir).is_absolute() else None
    return {
        "input": f"{IO_DIR}/input.ipynb",
        "output": f"{IO_DIR}/output.ipynb",
        "status": f"{IO_DIR}/status.json",
        "kernel": env.name,  # the image registers a kernel named after the environment
        "cwd": cwd or IO_DIR,  # the notebook's own directory, as in JupyterLab
        "timeout": timeout or 0,
    }


def _exchange_dir(tmp: Path, prepared: Notebook, job: Mapping[str, object], identity: Identity) -> Path:
    """`io` in the 0700 temp dir (the host user's): reachable by the container through its bind mount,
    0700 too and the container user's; it holds the notebook, the driver and the job."""
    io = tmp / "io"
    io.mkdir(mode=0o700)
    hand_over(io, identity)
    (io / "input.ipynb").write_text(json.dumps(prepared, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (io / "driver.py").write_text(inimage.script(DRIVER_SCRIPT), encoding="utf-8")
    (io / "job.json").write_text(json.dumps(job), encoding="utf-8")
    return io


def _container(ws: Workspace, plan: BuildPlan, image: str, io: Path, identity: Identity) -> ContainerRun:
    """The throwaway container: the compose service's mounts and environment, plus the exchange directory."""
    name, env = plan.env.name, plan.env
    compose_name = compose_project(ws.config, name)
    service = run_plan(env, plan, project=compose_name, token_file=token_file(name))
    return ContainerRun(
        image=image,
        name=f"{compose_name}-run-{secrets.token_hex(4)}",
        labels={"nbenv.environment": name, "nbenv.project": compose_name, "nbenv.run": "headless"},
        mounts=(*host_mounts(ws.root, plan.out_dir, service.mounts), Mount(str(io), IO_DIR, read_only=False)),
        workdir=service.working_dir,
        # No __pycache__ in the source tree from imports of the project's package.
        environment={**service.environment, "PYTHONDONTWRITEBYTECODE": "1"},
        resources=env.resources,
        command=(driver_python(plan), "-u", f"{IO_DIR}/driver.py", f"{IO_DIR}/job.json"),
        identity=identity,
    )


def _check_run_data(ws: Workspace, name: str, spec_file: str, targets: Sequence[str]) -> None:
    """The data is in the workspace and holds no symlink out of the repository (it gets mounted)."""
    if missing := datasync.missing_targets(ws.root, targets):
        raise DataError(
            f"{spec_file}: data: not in the workspace: {', '.join(missing)}",
            f"`nbenv data pull {name}` fetches it (or drop --no-pull)",
        )
    datasync.check_data(ws.root, targets)


def _run_container(engine: EngineAPI, spec: ContainerRun, *, timeout: float | None, say: Say) -> tuple[int, bool]:
    """Run it attached, streaming its progress lines; on any interruption the container is removed. An
    engine without GPU support (for a spec with [resources] gpus) is one line (NoGpuDriver) naming the fix."""
    killed = threading.Event()
    no_driver = threading.Event()

    def on_line(line: str) -> None:
        if is_no_gpu_driver(line):
            no_driver.set()
        elif line.strip():
            say(f"  {line}")

    def backstop() -> None:
        killed.set()
        engine.kill(spec.name)

    timer = threading.Timer(timeout + BACKSTOP_SECONDS, backstop) if timeout else None
    try:
        if timer:
            timer.daemon = True
            timer.start()
        code = stream(
            docker_run_argv(engine.docker, spec),
            env=None,
            on_line=on_line,
        )
    except BaseException:  # Ctrl-C included: do not leave the container running
        with contextlib.suppress(NbenvError):
            engine.remove_containers([spec.name])
        raise
    finally:
        if timer:
            timer.cancel()
    if no_driver.is_set() and code != 0:
        with contextlib.suppress(NbenvError):
            engine.remove_containers([spec.name])
        raise NoGpuDriver(spec.name)
    return code, killed.is_set()


class NoGpuDriver(RunError):
    """`docker run --gpus` on an engine without the NVIDIA runtime: run_notebook names the spec's fix."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_output(target: Path, executed: Notebook) -> None:
    """Atomically, in nbformat's on-disk layout; as root, owned like its directory (never root-owned
    files in a user's source tree). A symlink in the output's place (one that stays inside the
    repository: `_output_target` refused any other) is replaced by the file, never written through."""
    if target.is_symlink():
        target.unlink()
    atomic_write(target, json.dumps(executed, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    if os.geteuid() == 0:
        parent = target.parent.stat()
        # Never through a symlink put in the file's place meanwhile: lchown changes only that entry.
        os.chown(target, parent.st_uid, parent.st_gid, follow_symlinks=False)


def _outcome(
    where: str,
    target: Path,
    image: str,
    *,
    code: int,
    killed: bool,
    status: Mapping[str, Any] | None,
    executed: Notebook | None,
    timeout: float | None,
) -> RunResult:
    if killed:
        raise RunError(
            f"{where}: did not finish within --timeout {timeout or 0:g} s (plus {BACKSTOP_SECONDS:g} s for the kernel)",
            "the container was stopped; no executed notebook was written",
        )
    if status is None or executed is None:
        raise RunError(
            f"{where}: the run failed before the notebook executed (docker run exit {code})",
            "the output above says why",
        )
    outcome, cell = status.get("outcome"), status.get("cell")
    if outcome == "ok" and code == 0:
        return RunResult(target, image)
    written = f"the partially executed notebook is in {target}"
    if outcome == "error":
        failure = failing_cell(executed, index=cell)
        if failure is not None:
            raise RunError(
                f"{where}: {failure.describe()} failed: {failure.ename}: {failure.evalue}",
                f"{written}, with the error and its traceback",
            )
    described = cell_at(executed, cell).describe() if isinstance(cell, int) else "the notebook"
    if outcome == "timeout":
        raise RunError(f"{where}: {described} did not finish within --timeout {timeout or 0:g} s", written)
    if outcome == "died":
        raise RunError(f"{where}: the kernel died in {described} (out of memory?)", written)
    detail = status.get("detail") or f"exit {code}"
    raise RunError(f"{where}: the run failed in {described}: {first_line(str(detail), 200)}", written)
