"""`nbenv run`: execute a notebook headless in its environment's image and write the executed copy.

The flow: parse `-p` values and inject them into a copy of the notebook (pure, on the host, with
the json module), pull the environment's data, build its image if stale (the ImageBuilder that
`up` uses), then `docker run` a small nbclient driver in a throwaway container with the compose
service's mounts (source read-write, data read-only), no network, no capabilities. The notebook
goes in and comes back through a private temp directory; the host writes the executed notebook
atomically. No Jupyter server, no token, no port.
"""

from __future__ import annotations

import ast
import contextlib
import json
import keyword
import math
import os
import posixpath
import secrets
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv import datasync
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
from nbenv.safepath import MiB, confine, is_inside, owned_dir, read_regular
from nbenv.server_env import SERVER_VENV
from nbenv.spec.models import Resources
from nbenv.ui import Say, quiet
from nbenv.workspace import Workspace

Notebook = dict[str, Any]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
IO_DIR = "/run/nbenv"  # the temp directory inside the container (user mounts may not target /run)
MAX_NOTEBOOK = 64 * MiB  # notebooks with embedded plots reach a few MiB; /dev/zero never ends
BACKSTOP_SECONDS = 90.0  # after --timeout, on top of kernel start-up and shutdown: then the container is killed


# --- pure: parameters -------------------------------------------------------------------------


def parse_value(text: str) -> object:
    """Like papermill's `-p`: a Python literal (int, float, bool, None, quoted string) when it parses
    as one, else the text itself as a string."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return text


def parse_parameters(items: Sequence[str]) -> dict[str, object]:
    """`NAME=VALUE` items -> {name: value}; a later item wins. UsageError on bad syntax."""
    values: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(
                f"-p {item!r}: expected NAME=VALUE with NAME a Python identifier", "e.g. -p top_n=5 -p district=None"
            )
        value = parse_value(raw)
        if isinstance(value, float) and not math.isfinite(value):
            # repr() would inject `inf`/`nan`, names a notebook does not define: refuse rather than guess.
            raise UsageError(
                f"-p {item!r}: {raw.strip()} is out of the range of a float",
                "pass it as a string: -p " + json.dumps(f"{name}={raw.strip()!r}"),
            )
        values[name] = value
    return values


def _tags(cell: Mapping[str, Any]) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)]


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def parameters_cell(values: Mapping[str, object], *, nbformat_minor: int) -> dict[str, Any]:
    """The `injected-parameters` code cell, in papermill's format (`# Parameters` then `name = repr`)."""
    lines = ["# Parameters\n", *(f"{name} = {value!r}\n" for name, value in values.items())]
    lines[-1] = lines[-1].rstrip("\n")
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [INJECTED_TAG]},
        "outputs": [],
        "source": lines,
    }
    if nbformat_minor >= 5:
        cell["id"] = INJECTED_TAG
    return cell


def inject_parameters(notebook: Mapping[str, Any], values: Mapping[str, object], *, where: str) -> Notebook:
    """A copy of `notebook` with an `injected-parameters` cell right after the first cell tagged
    `parameters` (cells injected by an earlier run are dropped first). Keeps nbformat and
    nbformat_minor. In nbformat >= 4.5 a cell without an id gets `nbenv-INDEX`, so that nbformat
    does not invent a random one in the container (two runs stay comparable).

    UsageError when there are values but no `parameters` cell.
    """
    nb: Notebook = json.loads(json.dumps(notebook))  # a deep copy, JSON types only
    minor = int(nb.get("nbformat_minor", 0))
    cells = [c for c in nb.get("cells", []) if not (values and INJECTED_TAG in _tags(c))]
    if values:
        at = next((i for i, cell in enumerate(cells) if PARAMETERS_TAG in _tags(cell)), None)
        if at is None:
            raise UsageError(
                f"{where}: -p given, but no cell is tagged {PARAMETERS_TAG!r}",
                "tag the cell that holds the defaults `parameters` (JupyterLab: property inspector > Cell Tags)",
            )
        taken = {c.get("id") for c in cells}
        injected = parameters_cell(values, nbformat_minor=minor)
        while "id" in injected and injected["id"] in taken:
            injected["id"] += "-1"
        cells.insert(at + 1, injected)
    if minor >= 5:
        for index, cell in enumerate(cells):
            cell.setdefault("id", f"nbenv-{index}")
    nb["cells"] = cells
    return nb


def read_notebook(path: Path, *, where: str) -> Notebook:
    """The notebook's JSON; one-line errors for a missing file, a FIFO or a device (never read
    blocking), more than MAX_NOTEBOOK bytes, bad JSON or an nbformat other than 4."""
    if not path.exists() and not path.is_symlink():
        raise UsageError(
            f"{where}: no such notebook", "check the path (it is relative to the current directory)"
        ) from None
    data = read_regular(path, display=where, limit=MAX_NOTEBOOK, error=UsageError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: cannot read it: not UTF-8 (byte {exc.start})") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NbenvError(f"{where}:{exc.lineno}: not a notebook: invalid JSON: {exc.msg}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NbenvError(f"{where}: not a notebook: no list of cells")
    if nb.get("nbformat") != 4:
        raise NbenvError(
            f"{where}: nbformat {nb.get('nbformat')} is not supported (nbenv runs nbformat 4)",
            "open and save it in JupyterLab, which upgrades it",
        )
    return nb


# --- pure: results ----------------------------------------------------------------------------


def _first_line(text: str, limit: int) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class CellFailure:
    index: int  # 0-based, in the executed notebook (the injected cell counts)
    first_line: str
    ename: str
    evalue: str

    def describe(self) -> str:
        """`cell 5 (`x = 1 / 0`)`: the position counted from 1, as a reader counts cells."""
        return f"cell {self.index + 1} (`{self.first_line}`)"


def failing_cell(notebook: Mapping[str, Any], *, index: int | None = None) -> CellFailure | None:
    """The cell whose error stopped the run: the cell at `index` (the driver reports it) when it
    holds an error output, else the first code cell with an error output that is not tagged
    `raises-exception` (nbclient runs on after those)."""
    cells = notebook.get("cells") or []
    order = ([index] if index is not None and 0 <= index < len(cells) else []) + list(range(len(cells)))
    for i in order:
        cell = cells[i]
        if cell.get("cell_type") != "code" or "raises-exception" in _tags(cell):
            continue
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                return CellFailure(
                    i,
                    _first_line(_source(cell), 80),
                    str(output.get("ename", "")),
                    _first_line(str(output.get("evalue", "")), 200),
                )
    return None


def cell_at(notebook: Mapping[str, Any], index: int) -> CellFailure:
    """A cell named by index (for a timeout or a dead kernel, which leave no error output)."""
    cells = notebook.get("cells") or []
    source = _source(cells[index]) if 0 <= index < len(cells) else ""
    return CellFailure(index, _first_line(source, 80), "", "")


OUTPUT_PATTERN = "*.out.ipynb"  # what `default_output` names: excluded in git's info/exclude


def default_output(notebook: Path) -> Path:
    """`NAME.out.ipynb` beside the input: visible, never the input itself."""
    stem = notebook.name[: -len(".ipynb")] if notebook.name.endswith(".ipynb") else notebook.name
    return notebook.with_name(f"{stem}.out.ipynb")


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


# The driver runs inside the image, with the Python of its Jupyter server (`driver_python`): nbclient and
# nbformat come with the project's jupyterlab, or are part of nbenv's own server set. It executes the
# notebook cell by cell, prints progress, and writes the executed notebook and a status file even
# when a cell fails, times out or the kernel dies.
DRIVER = r"""
import asyncio, json, math, os, sys, threading, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async

# The kernel's own stderr (and its worker processes') reaches the terminal while cells run; from the
# shutdown on it is held back, and shown only if the run failed.
relay = {"echo": True, "held": []}
stderr_read, stderr_write = os.pipe()

def relay_stderr():
    with os.fdopen(stderr_read, "rb") as pipe:
        for line in iter(pipe.readline, b""):
            if relay["echo"]:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
            else:
                relay["held"].append(line)

relay_thread = threading.Thread(target=relay_stderr, daemon=True)
relay_thread.start()

def close_write_end(**_):  # the kernel has its copy: the pipe ends when the kernel and its workers do
    if stderr_write is not None:
        os.close(stderr_write)
        globals()["stderr_write"] = None

class Client(NotebookClient):
    # jupyter_client's shutdown first interrupts the kernel's whole process group (SIGINT), so worker
    # processes (joblib's loky, multiprocessing) print KeyboardInterrupt tracebacks into a run that
    # succeeded. Ask the kernel to exit instead, as a program exits; only a kernel that does not is
    # stopped the hard way (nbclient's own cleanup, below).
    async def _async_cleanup_kernel(self):
        relay["echo"] = False
        try:
            if self.kc is not None and self.km is not None and await ensure_async(self.km.is_alive()):
                await ensure_async(self.kc.shutdown(reply=True, timeout=5))
                for _ in range(50):
                    if not await ensure_async(self.km.is_alive()):
                        break
                    await asyncio.sleep(0.1)
        except Exception:
            pass
        await super()._async_cleanup_kernel()

job = json.load(open(sys.argv[1], encoding="utf-8"))
with open(job["input"], encoding="utf-8") as f:
    nb = nbformat.reads(f.read(), as_version=nbformat.NO_CONVERT)
code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
deadline = time.monotonic() + job["timeout"] if job["timeout"] else None
state = {"cell": None}

def on_cell_start(cell, cell_index, **_):
    state["cell"] = cell_index
    if cell_index in code:
        line = next((l.strip() for l in cell.source.splitlines() if l.strip()), "")
        step = f"[{code.index(cell_index) + 1}/{len(code)}]"
        print(f"{step} cell {cell_index + 1}: {line[:70]}", file=sys.stderr, flush=True)

def remaining(cell):
    return max(1, math.ceil(deadline - time.monotonic()))

client = Client(
    nb, kernel_name=job["kernel"], resources={"metadata": {"path": job["cwd"]}},
    timeout_func=remaining if deadline else None, on_cell_start=on_cell_start, on_notebook_start=close_write_end,
    shutdown_kernel="immediate",  # after the shutdown request above: the container is thrown away
)
outcome, detail = "ok", ""
try:
    client.execute(stderr=stderr_write)
except CellTimeoutError:
    outcome = "timeout"
except CellExecutionError:
    outcome = "error"
except DeadKernelError as exc:
    outcome, detail = "died", str(exc)
except Exception as exc:
    outcome, detail = "crashed", f"{type(exc).__name__}: {exc}"
finally:
    close_write_end()
    relay_thread.join(timeout=2)  # a process that left the kernel's group may hold the pipe: not waited for
    if outcome != "ok":
        for line in relay["held"]:
            sys.stderr.buffer.write(line)
        sys.stderr.flush()
    for path, text in ((job["output"], nbformat.writes(nb, version=nbformat.NO_CONVERT) + "\n"),
                       (job["status"], json.dumps({"outcome": outcome, "cell": state["cell"], "detail": detail}))):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
sys.exit(0 if outcome == "ok" else 1)
"""


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
    target = _output_target(ws.root, given_target)
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
    if build:
        image = project.builder(say=say, live=live).build(name).ref
    else:
        image = f"{plan.image}:latest"
        if engine.image_id(image) is None:
            raise RunError(f"{name}: no image {image} yet (--no-build)", f"build it: `nbenv image build {name}`")
        say(f"{name}: using {image} as it is (--no-build: not checked against the spec)")
    service = run_plan(env, plan, project=compose_project(ws.config, name), token_file=token_file(name))
    notebook_dir = ws.rel(notebook.resolve().parent)
    cwd = container_path_of(env, notebook_dir) if not Path(notebook_dir).is_absolute() else None
    identity = for_workspace(ws.root, engine.security_options)
    check_can_save(ws.root, env, identity)
    # The mountpoint of the tmpfs that hides .nbenv/ exists before Docker needs it (else Docker
    # would create it in the repository, owned by root).
    owned_dir(ws.root, STATE_DIR, what="state directory", error=RunError)
    with tempfile.TemporaryDirectory(prefix="nbenv-run-") as tmp:
        # The temp dir stays 0700 (the host user's); its `io` subdirectory, reachable by the container
        # through its bind mount, is 0700 too and belongs to the user the container runs as.
        io = Path(tmp) / "io"
        io.mkdir(mode=0o700)
        hand_over(io, identity)
        (io / "input.ipynb").write_text(json.dumps(prepared, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (io / "driver.py").write_text(DRIVER, encoding="utf-8")
        job = {
            "input": f"{IO_DIR}/input.ipynb",
            "output": f"{IO_DIR}/output.ipynb",
            "status": f"{IO_DIR}/status.json",
            "kernel": name,  # the image registers a kernel named after the environment
            "cwd": cwd or IO_DIR,  # the notebook's own directory, as in JupyterLab
            "timeout": timeout or 0,
        }
        (io / "job.json").write_text(json.dumps(job), encoding="utf-8")
        compose_name = compose_project(ws.config, name)
        spec = ContainerRun(
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
        say(f"running {where} in {image}")
        code, killed = _run_container(engine, spec, timeout=timeout, say=say)
        status = _read_json(io / "status.json")
        executed = _read_json(io / "output.ipynb")
        if executed is not None:
            # Checked again now that the container (which could write the source tree) is gone.
            target = _output_target(ws.root, given_target)
            _write_output(target, executed)
            if output is None:  # nbenv chose the name: git ignores it locally (not in the user's .gitignore)
                exclude_locally(ws.root, OUTPUT_PATTERN)
    return _outcome(
        where, given_target, image, code=code, killed=killed, status=status, executed=executed, timeout=timeout
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
    """Run it attached, streaming its progress lines; on any interruption the container is removed."""
    killed = threading.Event()

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
            on_line=lambda line: say(f"  {line}") if line.strip() else None,
        )
    except BaseException:  # Ctrl-C included: do not leave the container running
        with contextlib.suppress(NbenvError):
            engine.remove_containers([spec.name])
        raise
    finally:
        if timer:
            timer.cancel()
    return code, killed.is_set()


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
    raise RunError(f"{where}: the run failed in {described}: {_first_line(str(detail), 200)}", written)
