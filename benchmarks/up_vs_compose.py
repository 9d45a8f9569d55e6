"""`nbenv up` to Jupyter ready, against bare `docker compose up -d` + the same readiness poll.

Both start the same compose file with the image already built; each run is followed by a
`down`, outside the timed part. Prints medians and the ratio nbenv/bare, measured in one run.

    .venv/bin/python benchmarks/up_vs_compose.py [ENV] [--runs 5] [--port 8899]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbenv.plan import compose_project  # noqa: E402
from nbenv.running.jupyter import status_code  # noqa: E402
from nbenv.running.state import read_token  # noqa: E402
from nbenv.workspace import Workspace  # noqa: E402

NBENV = str(Path(sys.executable).parent / "nbenv")


def sh(*command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(command), cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return result


def wait_ready(port: int, token: str, timeout: float = 120) -> None:
    """The same poll nbenv uses: GET /api/status with the token until 200."""
    deadline = time.monotonic() + timeout
    while status_code(port, token, host="127.0.0.1") != 200:
        if time.monotonic() > deadline:
            sys.exit("Jupyter did not answer")
        time.sleep(0.25)


def time_nbenv(env: str, port: int) -> float:
    started = time.perf_counter()
    sh(NBENV, "up", env, "--port", str(port), "--allow-missing")
    elapsed = time.perf_counter() - started
    sh(NBENV, "down", env)
    return elapsed


def time_bare(env: str, port: int) -> float:
    project = compose_project(Workspace(ROOT).config, env)
    compose = ["docker", "compose", "-p", project, "-f", f"docker/{env}/compose.yaml"]
    compose += ["--env-file", f".nbenv/run/{env}/compose.env"]
    token = read_token(Workspace(ROOT), env)
    assert token, "run `nbenv up` once first"
    started = time.perf_counter()
    sh(*compose, "up", "-d")
    wait_ready(port, token)
    elapsed = time.perf_counter() - started
    sh(*compose, "down")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env", nargs="?", default="traffic-analysis")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8899)
    args = parser.parse_args()
    print(f"warming up: nbenv up {args.env} (builds if needed)", file=sys.stderr)
    time_nbenv(args.env, args.port)  # builds if stale; leaves the token file for the bare runs
    nbenv_times, bare_times = [], []
    for run in range(args.runs):  # interleaved, so drift affects both alike
        nbenv_times.append(time_nbenv(args.env, args.port))
        bare_times.append(time_bare(args.env, args.port))
        print(f"run {run + 1}: nbenv {nbenv_times[-1]:.2f} s, bare {bare_times[-1]:.2f} s", file=sys.stderr)
    nbenv_median, bare_median = statistics.median(nbenv_times), statistics.median(bare_times)
    print(f"| measure ({args.runs} runs, image present) | median s | min s | max s |")
    print("|---|---|---|---|")
    print(f"| nbenv up → ready | {nbenv_median:.2f} | {min(nbenv_times):.2f} | {max(nbenv_times):.2f} |")
    print(
        f"| docker compose up -d + poll → ready | {bare_median:.2f} | {min(bare_times):.2f} | {max(bare_times):.2f} |"
    )
    print(f"| ratio nbenv / bare | {nbenv_median / bare_median:.2f}x | | |")


if __name__ == "__main__":
    main()
