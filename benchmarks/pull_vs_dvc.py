"""`nbenv data pull ENV` against raw `dvc pull` of the same targets, from an empty cache each time.

Both fetch from the repo's default remote into an empty cache and check out the targets.
Runs are interleaved; prints medians and the ratio nbenv/dvc, measured in one run. The cache and the
targets are deleted before each run, so first the targets are pushed (`nbenv data push ENV`): the
benchmark stops before deleting anything unless the remote holds every one of them.

    .venv/bin/python benchmarks/pull_vs_dvc.py [ENV] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbenv.plan import data_targets  # noqa: E402
from nbenv.spec.load import Loader  # noqa: E402
from nbenv.workspace import Workspace  # noqa: E402

BIN = Path(sys.executable).parent


def wipe(targets: list[str]) -> None:
    shutil.rmtree(ROOT / ".dvc" / "cache", ignore_errors=True)
    for target in targets:
        shutil.rmtree(ROOT / target, ignore_errors=True)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env", nargs="?", default="traffic-analysis")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    targets = data_targets([Loader(Workspace(ROOT)).environment(args.env)])
    # Nothing is deleted unless the remote holds it: a push that fails stops here.
    timed([str(BIN / "nbenv"), "data", "push", args.env])
    nbenv_times, dvc_times = [], []
    for run in range(args.runs):
        wipe(targets)
        nbenv_times.append(timed([str(BIN / "nbenv"), "data", "pull", args.env]))
        wipe(targets)
        dvc_times.append(timed([str(BIN / "dvc"), "pull", "--quiet", *targets]))
        print(f"run {run + 1}: nbenv {nbenv_times[-1]:.2f} s, dvc {dvc_times[-1]:.2f} s", file=sys.stderr)
    size = sum(p.stat().st_size for t in targets for p in (ROOT / t).rglob("*") if p.is_file())
    n, d = statistics.median(nbenv_times), statistics.median(dvc_times)
    print(f"| pull of {', '.join(targets)} ({size / 1e6:.1f} MB, {args.runs} runs, empty cache) | median s | min s |")
    print("|---|---|---|")
    print(f"| nbenv data pull {args.env} | {n:.2f} | {min(nbenv_times):.2f} |")
    print(f"| dvc pull (same targets) | {d:.2f} | {min(dvc_times):.2f} |")
    print(f"| ratio nbenv / dvc | {n / d:.2f}x | |")


if __name__ == "__main__":
    main()
