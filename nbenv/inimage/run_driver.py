"""Runs inside the image: `nbenv run`'s driver executes one notebook cell by cell with nbclient, prints
progress, and writes the executed notebook and a status file even when a cell fails, times out or the
kernel dies.

Usage: python -u driver.py JOB_JSON
nbenv writes this file into the run's io directory (mounted at /run/nbenv) as driver.py, with the job
beside it: {"input", "output", "status": paths; "kernel": the kernelspec; "cwd": the kernel's working
directory; "timeout": seconds for the whole notebook, 0 for none}. The Python of the image's Jupyter
server runs it (`nbenv.running.headless.driver_python`): nbclient and nbformat come with the project's
jupyterlab, or are part of nbenv's own server set. The status file holds {"outcome": ok | error |
timeout | died | crashed, "cell": the index of the last cell started, "detail": text}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import threading
import time
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async

# The kernel's own stderr (and its worker processes') reaches the terminal while cells run; from the
# shutdown on it is held back, and shown only if the run failed.
relay: dict[str, Any] = {"echo": True, "held": []}
stderr_read, stderr_write_end = os.pipe()
stderr_write: int | None = stderr_write_end


def relay_stderr() -> None:
    with os.fdopen(stderr_read, "rb") as pipe:
        for line in iter(pipe.readline, b""):
            if relay["echo"]:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
            else:
                relay["held"].append(line)


relay_thread = threading.Thread(target=relay_stderr, daemon=True)
relay_thread.start()


def close_write_end(**_: object) -> None:  # the kernel has its copy: the pipe ends when the kernel and its workers do
    global stderr_write
    if stderr_write is not None:
        os.close(stderr_write)
        stderr_write = None


class Client(NotebookClient):
    # jupyter_client's shutdown first interrupts the kernel's whole process group (SIGINT), so worker
    # processes (joblib's loky, multiprocessing) print KeyboardInterrupt tracebacks into a run that
    # succeeded. Ask the kernel to exit instead, as a program exits; only a kernel that does not is
    # stopped the hard way (nbclient's own cleanup, below).
    async def _async_cleanup_kernel(self) -> None:
        relay["echo"] = False
        with contextlib.suppress(Exception):
            if self.kc is not None and self.km is not None and await ensure_async(self.km.is_alive()):
                # kc is the asynchronous client: its shutdown (jupyter_client's `reqrep`) takes reply and
                # timeout, which the base KernelClient's annotation does not list.
                await ensure_async(self.kc.shutdown(reply=True, timeout=5))  # type: ignore[call-arg]
                for _ in range(50):
                    if not await ensure_async(self.km.is_alive()):
                        break
                    await asyncio.sleep(0.1)
        await super()._async_cleanup_kernel()


with open(sys.argv[1], encoding="utf-8") as f:
    job = json.load(f)
with open(job["input"], encoding="utf-8") as f:
    nb = nbformat.reads(f.read(), as_version=nbformat.NO_CONVERT)
code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
deadline: float = time.monotonic() + (job["timeout"] or 0)
state: dict[str, int | None] = {"cell": None}


def on_cell_start(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
    state["cell"] = cell_index
    if cell_index in code:
        line = next((text.strip() for text in cell.source.splitlines() if text.strip()), "")
        step = f"[{code.index(cell_index) + 1}/{len(code)}]"
        print(f"{step} cell {cell_index + 1}: {line[:70]}", file=sys.stderr, flush=True)


def remaining(cell: nbformat.NotebookNode) -> int:
    return max(1, math.ceil(deadline - time.monotonic()))


client = Client(
    nb,
    kernel_name=job["kernel"],
    resources={"metadata": {"path": job["cwd"]}},
    timeout_func=remaining if job["timeout"] else None,
    on_cell_start=on_cell_start,
    on_notebook_start=close_write_end,
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
    for path, text in (
        (job["output"], nbformat.writes(nb, version=nbformat.NO_CONVERT) + "\n"),
        (job["status"], json.dumps({"outcome": outcome, "cell": state["cell"], "detail": detail})),
    ):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
sys.exit(0 if outcome == "ok" else 1)
