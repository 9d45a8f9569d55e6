"""`nbenv data compact` against a pandas read_csv -> to_parquet baseline, on generated PeMS-shaped CSV.

Each run is a separate process, so its peak RSS is its own (os.wait4 reports the child's
ru_maxrss, the figure getrusage(RUSAGE_CHILDREN) would give for that child alone). The files are
read once before timing, so every run reads from the page cache. Figures are measured, never
stored; ratios are against the baseline measured in the same run.

    .venv/bin/python benchmarks/compact.py [--size BYTES|1GiB|2GiB] [--repeat 3] [--workdir DIR]
                                           [--no-extra] [--clean] [--cpus N]

nbenv and pandas alternate `--repeat` times (the machine's other load hits both alike); the table
shows medians, and each run's seconds. `--cpus N` pins every run to the first N CPUs
(sched_setaffinity): `--cpus 1` compares the work per byte alone, with no parallelism.

Runs:
  nbenv               compact(SRC, OUT, columns=PEMS_COLUMNS): the seed's column pruning
  pandas              per file: read_csv(usecols=PEMS_COLUMNS, parse_dates=["timestamp"],
                      date_format=PeMS's) -> to_parquet(engine="pyarrow", compression="zstd"):
                      the same columns and types
  nbenv partitioned   as nbenv, with partition_by=["district"] (a writer per district)
  nbenv every column  compact(SRC, OUT), no pruning
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.synthetic import PEMS_COLUMNS, PEMS_TIMESTAMP_FORMAT, generate, parse_size  # noqa: E402
from nbenv.data.compact import compact  # noqa: E402

SIZE_TARGET = 37.0  # the seed: 35.2 GB of CSV -> 951 MB of Parquet
SPEED_TARGET = 3.0  # x the baseline's MB/s
RSS_TARGET_MIB = 512  # for a 2 GiB input


def cpu_seconds() -> float:
    """User + system CPU of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_nbenv(source: Path, output: Path, kind: str) -> dict[str, float]:
    columns = None if kind == "nbenv-all" else PEMS_COLUMNS
    cpu = cpu_seconds()
    result = compact(source, output, columns=columns, partition_by=["district"] if kind == "nbenv-part" else ())
    cpu = cpu_seconds() - cpu
    return {"rows": result.rows, "output_bytes": result.output_bytes, "seconds": result.seconds, "cpu_seconds": cpu}


def run_pandas(source: Path, output: Path) -> dict[str, float]:
    import pandas as pd  # type: ignore[import-untyped]

    started, cpu = time.perf_counter(), cpu_seconds()
    output.mkdir(parents=True)
    rows = 0
    for path in sorted(source.glob("*.csv*")):
        frame = pd.read_csv(
            path, usecols=list(PEMS_COLUMNS), parse_dates=["timestamp"], date_format=PEMS_TIMESTAMP_FORMAT
        )
        target = output / f"{path.name.split('.')[0]}.parquet"
        frame.to_parquet(target, engine="pyarrow", compression="zstd", index=False)
        rows += len(frame)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    output_bytes = sum(p.stat().st_size for p in output.iterdir())
    return {"rows": rows, "output_bytes": output_bytes, "seconds": seconds, "cpu_seconds": cpu}


def child(kind: str, source: Path, output: Path) -> None:
    """Inside the measured process: one run, its figures as JSON on stdout."""
    figures = run_pandas(source, output) if kind == "pandas" else run_nbenv(source, output, kind)
    print(json.dumps(figures))


def measure(kind: str, source: Path, output: Path, cpus: int = 0) -> dict[str, float]:
    """Run one kind in a fresh process (pinned to the first `cpus` CPUs if given); add its peak RSS (MiB)."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, __file__, "--child", kind, str(source), str(output)]
    pinned = sorted(os.sched_getaffinity(0))[:cpus] if cpus else None
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, pinned)) if pinned else None,
    )
    assert process.stdout is not None
    text = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode != 0:
        sys.exit(f"{kind} failed with exit code {process.returncode}")
    figures: dict[str, float] = json.loads(text)
    figures["rss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    shutil.rmtree(output, ignore_errors=True)
    return figures


def dataset(workdir: Path, size: int) -> tuple[Path, int]:
    """Generated once per size and kept in the workdir (a marker file says it is complete)."""
    root = workdir / f"data-{size}"
    marker = root / "complete.json"
    if not marker.exists():
        print(f"generating {size / 2**30:.2f} GiB of PeMS-shaped CSV in {root} ...", file=sys.stderr)
        started = time.perf_counter()
        data = generate(root, size=size, seed=0)
        marker.write_text(json.dumps({"rows": data.rows, "bytes": data.bytes, "files": len(data.pems_files)}))
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    source = root / "pems"
    return source, sum(p.stat().st_size for p in source.iterdir())


def warm(source: Path) -> None:
    """Read every input once so that no run pays for the disk and the others not."""
    for path in sorted(source.iterdir()):
        with open(path, "rb") as handle:
            while handle.read(16 << 20):
                pass


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(input_bytes: int, runs: dict[str, list[dict[str, float]]]) -> None:
    columns = ["run", "input bytes", "output bytes", "size ratio", "rows", "seconds (median)", "MB/s", "peak RSS MiB"]
    print("| " + " | ".join([*columns, "CPU ms/MB", "cores used", "each run, s"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, results in runs.items():
        output = results[0]["output_bytes"]
        assert all(r["output_bytes"] == output for r in results), "the output changed between runs"
        seconds = median([r["seconds"] for r in results])
        each = ", ".join(f"{r['seconds']:.2f}" for r in results)
        cpu = median([r["cpu_seconds"] for r in results])
        cores = median([r["cpu_seconds"] / r["seconds"] for r in results])
        print(
            f"| {name} | {input_bytes:,} | {int(output):,} | {input_bytes / output:.1f}x | {int(results[0]['rows']):,} "
            f"| {seconds:.2f} | {input_bytes / 1e6 / seconds:.0f} | {max(r['rss_mib'] for r in results):.0f} "
            f"| {cpu * 1e3 / (input_bytes / 1e6):.2f} | {cores:.2f} | {each} |"
        )
    nbenv, pandas = runs["nbenv"], runs["pandas"]
    speedup = median([r["seconds"] for r in pandas]) / median([r["seconds"] for r in nbenv])
    rss = max(r["rss_mib"] for r in nbenv)
    ratio = input_bytes / nbenv[0]["output_bytes"]
    print()
    print(f"nbenv / pandas: throughput {speedup:.2f}x, peak RSS {rss / max(r['rss_mib'] for r in pandas):.2f}x")
    print(f"target size ratio >= {SIZE_TARGET:.0f}x: {ratio:.1f}x, {'met' if ratio >= SIZE_TARGET else 'NOT met'}")
    fast = "met" if speedup >= SPEED_TARGET else "NOT met"
    print(f"target throughput >= {SPEED_TARGET:.0f}x pandas: {speedup:.2f}x, {fast}")
    rss_note = "" if input_bytes >= 2 * 2**30 * 0.99 else " (the target is for a 2 GiB input)"
    small = "met" if rss <= RSS_TARGET_MIB else "NOT met"
    print(f"target peak RSS <= {RSS_TARGET_MIB} MiB: {rss:.0f} MiB, {small}{rss_note}")
    if nbenv[0]["rows"] != pandas[0]["rows"]:
        print(f"WARNING: row counts differ: nbenv {nbenv[0]['rows']}, pandas {pandas[0]['rows']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default=str(2**30), help="raw CSV bytes to generate (e.g. 2GiB); default 1GiB")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/nbenv-bench-compact"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of nbenv and of pandas, alternating")
    parser.add_argument("--no-extra", action="store_true", help="skip the partitioned and every-column runs")
    parser.add_argument("--clean", action="store_true", help="delete the workdir at the end")
    parser.add_argument("--cpus", type=int, default=0, help="pin every run to the first N CPUs (default: all)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0
    size = parse_size(args.size)
    if not isinstance(size, int):
        parser.error("--size: a number of bytes, e.g. 2GiB")
    args.workdir.mkdir(parents=True, exist_ok=True)
    source, input_bytes = dataset(args.workdir, size)
    warm(source)
    runs: dict[str, list[dict[str, float]]] = {"nbenv": [], "pandas": []}
    for repeat in range(args.repeat):
        for name in ("nbenv", "pandas"):
            print(f"run {repeat + 1}/{args.repeat}: {name} ...", file=sys.stderr)
            runs[name].append(measure(name, source, args.workdir / "out", args.cpus))
    if not args.no_extra:
        print("nbenv partitioned by district, then with every column ...", file=sys.stderr)
        runs["nbenv, partitioned by district"] = [measure("nbenv-part", source, args.workdir / "out", args.cpus)]
        runs["nbenv, every column"] = [measure("nbenv-all", source, args.workdir / "out", args.cpus)]
    pinned = f", each run pinned to {args.cpus} of them" if args.cpus else ""
    files = len(list(source.iterdir()))
    print(f"{files} CSV files, {input_bytes / 2**30:.2f} GiB; machine: {os.cpu_count()} cores{pinned}")
    print()
    report(input_bytes, runs)
    if args.clean:
        shutil.rmtree(args.workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
