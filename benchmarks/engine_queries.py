"""Engine queries through the Engine API (docker SDK) against the docker CLI: `nbenv ps`, `nbenv list`,
`nbenv up` of an environment that is already running (the no-op path), and `nbenv down` followed by
`nbenv up` that starts it (compose through python-on-whales, waiting for Jupyter), old code against new.

    .venv/bin/python benchmarks/engine_queries.py [--baseline-rev fe583c4] [--runs 9] [--port 8951]

The old code is a `git worktree` of --baseline-rev (default: the commit before issue 16's engine adapter)
in a temporary directory; the new code is this checkout. Both run as `python -m nbenv` with PYTHONPATH
pointing at their tree, on the same workspace: a copy of this repository (committed files) with its own
image prefix, whose `base` environment is built and started once, outside the timed part. The runs
alternate old/new, so both see the same machine load. Each command's docker CLI processes are counted
through $NBENV_DOCKER, a shim that logs its argv and runs docker (compose, through python-on-whales,
and builds still start the CLI). Prints medians, the ratio new/old, and the CLI processes per command;
progress goes to stderr. At the end the environment is stopped, and the run's image tags and temporary
directories removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DOCKER = shutil.which("docker") or "docker"
PREFIX = "nbenv-bench-engine"
ENV = "base"
START = "up (start)"
SHIM = """#!/bin/sh
printf '%s\\n' "$*" >> "$NBENV_BENCH_LOG"
exec {docker} "$@"
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


class Side:
    """One version of nbenv: its code tree, run against the shared workspace."""

    def __init__(self, label: str, code: Path, ws: Path, work: Path) -> None:
        self.label, self.code, self.ws = label, code, ws
        self.log = work / f"{label}.docker.log"
        shim = work / f"{label}-docker"
        shim.write_text(SHIM.format(docker=DOCKER))
        shim.chmod(0o755)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(code),
            "NBENV_DOCKER": str(shim),
            "NBENV_BENCH_LOG": str(self.log),
            "NO_COLOR": "1",
        }

    def timed(self, *args: str) -> tuple[float, str, int]:
        """Seconds, stdout and the docker CLI processes of one `nbenv ARGS`."""
        self.log.write_text("")
        started = time.perf_counter()
        # cwd: the code tree, so `-m nbenv` finds that tree's nbenv first (the workspace holds a copy too)
        result = run([PY, "-m", "nbenv", "-C", str(self.ws), *args], cwd=self.code, env=self.env)
        seconds = time.perf_counter() - started
        return seconds, result.stdout + result.stderr, len(self.log.read_text().splitlines())


IMPORT_SDK = "import time; t = time.perf_counter(); import docker; docker.APIClient(); print(time.perf_counter() - t)"


def per_query(ref: str, runs: int) -> dict[str, float]:
    """Medians (s): one image inspect through the CLI (a process) and through the SDK (a request), and
    what the SDK costs once per command (importing it and making the client, which asks /version)."""
    import docker

    api = docker.APIClient()
    cli, sdk, once = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([DOCKER, "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, check=True)
        cli.append(time.perf_counter() - started)
        started = time.perf_counter()
        api.inspect_image(ref)
        sdk.append(time.perf_counter() - started)
        once.append(float(run([PY, "-c", IMPORT_SDK], cwd=Path(tempfile.gettempdir())).stdout))
    return {key: statistics.median(v) for key, v in (("cli", cli), ("sdk", sdk), ("once", once))}


def remove_prefixed_images(prefix: str) -> None:
    """Every image tagged PREFIX/...: what a benchmark built under its own image prefix."""
    tags = subprocess.run(
        [DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
    ).stdout.split()
    mine = [tag for tag in tags if tag.startswith(f"{prefix}/")]
    if mine:
        subprocess.run([DOCKER, "rmi", "-f", *mine], capture_output=True)


def make_workspace(work: Path, prefix: str = PREFIX) -> Path:
    """A committed copy of this repository's committed files under `work`, with image prefix `prefix`."""
    ws = work / "ws"
    ws.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(ws)], input=archive, check=True)
    pyproject = ws / "pyproject.toml"
    text = pyproject.read_text()
    if 'image_prefix = "nbenv"' not in text:
        sys.exit('pyproject.toml: image_prefix is not "nbenv" any more: update this benchmark')
    pyproject.write_text(text.replace('image_prefix = "nbenv"', f'image_prefix = "{prefix}"'))
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        run(command, cwd=ws)
    run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench"], cwd=ws)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default="fe583c4", help="the old code: a commit of this repository")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--port", type=int, default=8951)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nbenv-bench-engine-"))
    old_tree = work / "old"
    run(["git", "worktree", "add", "--detach", str(old_tree), options.baseline_rev], cwd=ROOT)
    ws = make_workspace(work)
    sides = [Side("old", old_tree, ws, work), Side("new", ROOT, ws, work)]
    commands = {
        "ps": ["ps"],
        "list": ["list"],
        "up (already running)": ["up", ENV, "--no-pull", "--port", str(options.port)],
        START: ["up", ENV, "--no-pull", "--port", str(options.port)],  # last: it follows a `down`
    }
    try:
        log(f"building and starting {ENV} ({PREFIX}) once, untimed")
        sides[1].timed("up", ENV, "--no-pull", "--port", str(options.port))
        for side in sides:  # both see the running environment as theirs: nothing restarts
            _, output, _ = side.timed(*commands["up (already running)"])
            version = subprocess.run([PY, "-c", "import nbenv.constants"], cwd=side.code, capture_output=True)
            if (version.returncode == 0) != (side.label == "new"):  # constants.py is new: the right tree runs
                sys.exit(f"{side.label}: `python -m nbenv` does not run {side.code}")
            if "is already running" not in output:
                sys.exit(f"{side.label}: `up` did not take the no-op path:\n{output[-2000:]}")
        times: dict[tuple[str, str], list[float]] = {}
        processes: dict[tuple[str, str], int] = {}
        for run_index in range(options.runs):
            log(f"run {run_index + 1}/{options.runs}")
            for name, args in commands.items():
                for side in sides if run_index % 2 == 0 else sides[::-1]:
                    # a start is timed from stopped: each side stops the environment first (that is timed too)
                    for step, step_args in ([("down", ["down", ENV])] if name == START else []) + [(name, args)]:
                        seconds, output, count = side.timed(*step_args)
                        if step == START and "is already running" in output:
                            sys.exit(f"{side.label}: `up` after `down` did not start the environment")
                        times.setdefault((step, side.label), []).append(seconds)
                        processes[(step, side.label)] = count
        load = os.getloadavg()
        print(f"nbenv engine queries: old = {options.baseline_rev} (docker CLI), new = this checkout (Engine API)")
        print(f"{options.runs} runs each, alternating; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
        print("| command | old median (s) | new median (s) | new/old | docker CLI processes old -> new |")
        print("|---|---|---|---|---|")
        for name in [*list(commands)[:-1], "down", START]:
            old, new = (statistics.median(times[(name, s.label)]) for s in sides)
            print(
                f"| `nbenv {name}` | {old:.3f} | {new:.3f} | {new / old:.2f} | "
                f"{processes[(name, 'old')]} -> {processes[(name, 'new')]} |"
            )
        query = per_query(f"{PREFIX}/{ENV}:latest", options.runs)
        print(
            f"\none image inspect: docker CLI {query['cli'] * 1000:.1f} ms, Engine API {query['sdk'] * 1000:.1f} ms "
            f"({query['sdk'] / query['cli']:.2f}); once per command: importing the SDK and making its client "
            f"{query['once'] * 1000:.0f} ms"
        )
        spread = {key: (min(v), max(v)) for key, v in times.items()}
        print("\nmin-max (s): " + "; ".join(f"{n} {s}: {lo:.3f}-{hi:.3f}" for (n, s), (lo, hi) in spread.items()))
    finally:
        subprocess.run([PY, "-m", "nbenv", "-C", str(ws), "down", ENV], cwd=ROOT, env=sides[1].env, capture_output=True)
        tags = subprocess.run(
            [DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{PREFIX}/*"], capture_output=True, text=True
        ).stdout.split()
        if tags:
            subprocess.run([DOCKER, "image", "rm", *tags], capture_output=True)
        subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
