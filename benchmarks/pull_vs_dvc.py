"""`nbenv data pull ENV` against raw `dvc pull` of the same targets, each time with none of their objects cached.

Both fetch from the repo's default remote and check out the targets. Runs are interleaved; prints medians
and the ratio nbenv/dvc, both measured in this one run. Before each run the targets' own objects are removed
from the cache (each file's object and each directory's manifest, as DVC names them: never the rest of the
cache, which may hold the only copy of other data) and the targets from the workspace. So first the
targets are pushed (`nbenv data push ENV`), and the benchmark stops before deleting anything unless the
push succeeds and every target in the workspace is unmodified (its changes would be lost). Each timed pull
starts with none of the targets' objects in the cache and must leave all of them there.

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

from nbenv.adapters.dvc import Dvc  # noqa: E402
from nbenv.plan import data_targets  # noqa: E402
from nbenv.spec.load import Loader  # noqa: E402
from nbenv.workspace import Workspace  # noqa: E402

BIN = Path(sys.executable).parent


def wipe(targets: list[str], objects: list[Path]) -> None:
    """The targets' objects out of the cache and the targets out of the workspace; nothing else."""
    for path in objects:
        path.unlink(missing_ok=True)
    for target in targets:
        path = ROOT / target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    if left := [p for p in objects if p.exists()] + [t for t in targets if (ROOT / t).exists()]:
        sys.exit(f"could not remove {left[0]}: the next pull would not start empty")


def pulled(command: list[str], targets: list[str], objects: list[Path]) -> float:
    """The time of one pull, which must fetch every object of the targets and check them all out."""
    elapsed = timed(command)
    if missing := [p for p in objects if not p.exists()] + [t for t in targets if not (ROOT / t).exists()]:
        sys.exit(f"{command[0]}: left {missing[0]} missing: its time would not be a full pull")
    return elapsed


def safe_to_wipe(targets: list[str]) -> list[Path]:
    """The targets' cache objects, once every target is pushed and unmodified in the workspace."""
    dvc = Dvc(ROOT)
    try:
        rows = dvc.status(targets)
        if changed := [r.target for r in rows if r.workspace not in ("ok", "missing") or r.remote != "ok"]:
            sys.exit(f"{changed[0]}: modified in the workspace or not on the remote: the benchmark would delete it")
        objects = dvc.cache_objects(targets)
    finally:
        dvc.close()
    if not objects:
        sys.exit(f"{', '.join(targets)}: DVC names no cache object: nothing to pull")
    return objects


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
    # Nothing is deleted unless the remote holds it: a push that fails stops here, and so does a target
    # whose workspace copy differs from what DVC tracks.
    timed([str(BIN / "nbenv"), "data", "push", args.env])
    objects = safe_to_wipe(targets)
    print(f"{len(objects)} cache objects of {', '.join(targets)} removed before each pull", file=sys.stderr)
    nbenv_times, dvc_times = [], []
    for run in range(args.runs):
        wipe(targets, objects)
        nbenv_times.append(pulled([str(BIN / "nbenv"), "data", "pull", args.env], targets, objects))
        wipe(targets, objects)
        dvc_times.append(pulled([str(BIN / "dvc"), "pull", "--quiet", *targets], targets, objects))
        print(f"run {run + 1}: nbenv {nbenv_times[-1]:.2f} s, dvc {dvc_times[-1]:.2f} s", file=sys.stderr)
    size = sum(p.stat().st_size for t in targets for p in (ROOT / t).rglob("*") if p.is_file())
    n, d = statistics.median(nbenv_times), statistics.median(dvc_times)
    print(f"| pull of {', '.join(targets)} ({size / 1e6:.1f} MB, {args.runs} runs, none cached) | median s | min s |")
    print("|---|---|---|")
    print(f"| nbenv data pull {args.env} | {n:.2f} | {min(nbenv_times):.2f} |")
    print(f"| dvc pull (same targets) | {d:.2f} | {min(dvc_times):.2f} |")
    print(f"| ratio nbenv / dvc | {n / d:.2f}x | |")


if __name__ == "__main__":
    main()
