"""CSV (plain or gzip) -> Parquet (zstd): keep some columns, optionally partition, stream, swap in atomically.

Why blocks: the seed's raw data is tens of gigabytes of CSV, more than a laptop's memory. Each
input is cut into blocks of whole lines of about `block_size` bytes (`csv_blocks`), each parsed by
pyarrow's `read_csv` on its own, and written as Parquet row groups of about ROW_GROUP_BYTES, so
memory depends on those sizes and on the number of worker threads, never on the input size.
Small blocks are also the fast choice: a 1 MiB block stays in the CPU cache while it is parsed.

Why threads: pyarrow's parse releases the GIL. Without partitioning every input becomes its own
output file, so with at least _WORKERS inputs each worker thread reads, parses and writes whole
files side by side. With partitioning (outputs shared between inputs) or fewer inputs, a cutter
thread cuts the inputs into blocks, the workers parse blocks side by side (a bounded number
ahead), and the main thread writes them in input order: one input also uses every core. Either
way the output is the same bytes on every run, so DVC hashes stay put.

This module is the command: checks, the plan, the threads and the result. The parts it drives:
`csv_schema` (the inputs, their columns and types: one `ReadPlan`), `csv_read` (blocks or a
stream of CSV -> record batches in the plan's schema), `csv_blocks` (cutting at newlines) and
`parquet_write` (row groups, Hive partitions, the atomic swap into place).
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from nbenv.data.csv_blocks import NotSplittable
from nbenv.data.csv_read import blocks, parse_block, read_batches, stream_batches
from nbenv.data.csv_schema import DEFAULT_TIMESTAMP_FORMATS, ReadPlan, column_list, input_files, make_plan, output_stem
from nbenv.data.parquet_write import Writers, staging_dir, swap_into_place, write_partitions
from nbenv.errors import DataError


def _usable_cpus() -> int:
    """CPUs this process may run on (taskset, cpusets), not all the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_WORKERS = max(1, min(4, _usable_cpus()))  # files in flight; each uses about one core
DEFAULT_BLOCK_SIZE = 1 << 20  # 1 MiB: a block and its parse stay in the CPU cache (4 MiB: 10-20% slower)
_QUEUE_BYTES = 16 << 20  # in-order mode: CSV bytes cut ahead of the writer (being parsed or waiting)


@dataclass(frozen=True)
class CompactResult:
    input_bytes: int
    output_bytes: int
    rows: int
    files_in: int
    files_out: int
    seconds: float


def parse_schema_overrides(items: Sequence[str]) -> dict[str, str]:
    """CLI helper: ["station=int32", "avg_speed=float32"] -> {"station": "int32", ...}."""
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, type_name = item.partition("=")
        if not sep or not name.strip() or not type_name.strip():
            raise DataError(f"--schema {item!r}: expected COLUMN=TYPE", "e.g. --schema station=int32")
        overrides[name.strip()] = type_name.strip()
    return overrides


def compact(
    source: Path,
    output: Path,
    *,
    columns: Sequence[str] | None = None,
    partition_by: Sequence[str] = (),
    schema: Mapping[str, str] = MappingProxyType({}),
    timestamp_format: str | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    newlines_in_values: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> CompactResult:
    """Compact `source` (a CSV file, or a directory of *.csv / *.csv.gz) into Parquet at `output`.

    Everything is written into a temp dir beside `output` and renamed into place at the end: on
    any error or Ctrl-C nothing is left at `output` and an old `output` stays as it was.
    `timestamp_format` (strptime) replaces the default formats: ISO 8601, then PeMS's.
    `newlines_in_values`: quoted values may span lines (slower: each input is parsed as one stream).
    `on_progress(bytes_read, bytes_total)` is called after each block (compressed bytes for gzip).
    Every user error is a `DataError` of one line with a hint.
    """
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    if isinstance(columns, str):
        raise DataError(f"columns {columns!r}: give a list of names", "e.g. columns=['timestamp', 'station']")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 4096:
        raise DataError(f"block size {block_size!r}: must be at least 4096 bytes", "the default is 1 MiB")
    files = input_files(source)
    _check_output(source, output)
    formats = (timestamp_format,) if timestamp_format else DEFAULT_TIMESTAMP_FORMATS
    plan = replace(make_plan(files, columns, schema, formats, block_size), newlines_in_values=newlines_in_values)
    partitions = _check_partitions(plan, partition_by)
    staging = staging_dir(output)
    try:
        rows, written = _run(plan, staging, partitions, on_progress)
        swap_into_place(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CompactResult(
        input_bytes=sum(f.stat().st_size for f in files),
        output_bytes=sum((output / rel).stat().st_size for rel in written),
        rows=rows,
        files_in=len(files),
        files_out=len(written),
        seconds=time.perf_counter() - started,
    )


def _check_output(source: Path, output: Path) -> None:
    """Refuse outputs that would replace the input or a file: the final swap removes what is there."""
    src, out = source.resolve(), output.resolve()
    if src == out or src.is_relative_to(out):
        raise DataError(f"{output}: the output would replace the source {source}", "choose another output directory")
    if output.exists() and not output.is_dir():
        raise DataError(f"{output}: exists and is not a directory", "choose another output path or remove the file")


def _check_partitions(plan: ReadPlan, partition_by: Sequence[str]) -> tuple[str, ...]:
    for name in partition_by:
        if name not in plan.columns:
            raise DataError(f"--partition-by {name}: not a kept column", column_list(plan.columns))
    if len(partition_by) and len(set(partition_by)) == len(plan.columns):
        raise DataError("every kept column is a partition column", "keep at least one other column")
    return tuple(dict.fromkeys(partition_by))


@dataclass(frozen=True)
class _Progress:
    index: int  # which input
    position: int  # its raw bytes read so far
    rows: int


_END = object()


def _put(events: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put, but give up once the run is stopped (nobody is reading any more)."""
    while not stop.is_set():
        try:
            events.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _Pool:
    """Worker threads for the inputs; `close` stops them between blocks and waits for them."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="nbenv-compact")

    def close(self) -> None:
        self.stop.set()
        self.executor.shutdown(wait=True, cancel_futures=True)


def _compact_file(plan: ReadPlan, index: int, root: Path, events: queue.Queue[Any], stop: threading.Event) -> None:
    path = plan.files[index]
    rel = f"{output_stem(path)}.parquet"
    writers = Writers(root, plan.schema)
    try:
        for batch, position in read_batches(plan, path, stop):
            writers.add(rel, batch)
            _put(events, _Progress(index, position, batch.num_rows), stop)
        if stop.is_set():
            writers.abort()
            return
        writers.close(rel)
        _put(events, (index, rel), stop)
    except BaseException as exc:
        writers.abort()
        _put(events, exc, stop)


def _run_per_file(plan: ReadPlan, root: Path, report: Callable[[int, int], None]) -> tuple[int, list[str]]:
    """Inputs in parallel (their outputs are separate files); progress and errors come back here."""
    events: queue.Queue[Any] = queue.Queue()
    pool = _Pool()
    rows, written = 0, list[str]()
    try:
        sizes = [path.stat().st_size for path in plan.files]
        for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):  # largest first: no long tail on one core
            pool.executor.submit(_compact_file, plan, index, root, events, pool.stop)
        while len(written) < len(plan.files):
            event = events.get()
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, _Progress):
                rows += event.rows
                report(event.index, event.position)
            else:
                written.append(event[1])
                report(event[0], -1)
    finally:
        pool.close()
    return rows, sorted(written)


def _cut(plan: ReadPlan, executor: ThreadPoolExecutor, jobs: queue.Queue[Any], stop: threading.Event) -> None:
    """The cutter thread: every input in order, in blocks of whole lines; each block's parse goes to
    the pool and its future into `jobs` (bounded: this thread waits while the writer catches up)."""
    try:
        for index, path in enumerate(plan.files):
            try:
                for parser, block in blocks(plan, path, reuse=False):
                    if stop.is_set():
                        return
                    _put(jobs, (index, block.position, executor.submit(parse_block, plan, path, parser, block)), stop)
            except NotSplittable:
                for batch, position in stream_batches(plan, path, stop):
                    _put(jobs, (index, position, _done([batch])), stop)
            _put(jobs, (index, -1, None), stop)
        _put(jobs, _END, stop)
    except BaseException as exc:
        _put(jobs, exc, stop)


def _done(batches: list[Any]) -> Future[list[Any]]:
    future: Future[list[Any]] = Future()
    future.set_result(batches)
    return future


def _run_ordered(
    plan: ReadPlan, root: Path, partitions: tuple[str, ...], report: Callable[[int, int], None]
) -> tuple[int, list[str]]:
    """A cutter thread splits the inputs into blocks, the workers parse blocks side by side, and
    this thread writes them in input order. For partitions, whose files are shared between
    inputs, so that the bytes repeat run to run; and for fewer inputs than workers, so that even
    one input uses every core. At most `depth` blocks are cut ahead of the writer."""
    writers = Writers(root, pa.schema([f for f in plan.schema if f.name not in partitions]))
    jobs: queue.Queue[Any] = queue.Queue(maxsize=max(_WORKERS + 1, _QUEUE_BYTES // plan.block_size))
    pool = _Pool()
    cutter = threading.Thread(target=_cut, args=(plan, pool.executor, jobs, pool.stop), name="nbenv-compact-cut")
    rows = 0
    try:
        cutter.start()
        while (event := jobs.get()) is not _END:
            if isinstance(event, BaseException):
                raise event
            index, position, future = event
            if future is None:  # that input is done
                if not partitions:
                    writers.close(f"{output_stem(plan.files[index])}.parquet")
                report(index, -1)
                continue
            for batch in future.result():
                rows += batch.num_rows
                if partitions:
                    write_partitions(writers, batch, partitions)
                else:
                    writers.add(f"{output_stem(plan.files[index])}.parquet", batch)
            report(index, position)
        writers.close_all()
    except BaseException:
        writers.abort()
        raise
    finally:
        pool.stop.set()
        if cutter.is_alive():
            cutter.join()
        pool.close()
    return rows, sorted(writers.written)


def _run(
    plan: ReadPlan, root: Path, partitions: tuple[str, ...], on_progress: Callable[[int, int], None] | None
) -> tuple[int, list[str]]:
    """Read every input and write it; returns the row count and the written files (relative)."""
    sizes = [f.stat().st_size for f in plan.files]
    positions = [0] * len(sizes)
    total = sum(sizes)
    read = 0

    def report(index: int, position: int) -> None:
        """`position` -1: that input is done."""
        nonlocal read
        position = sizes[index] if position < 0 else min(position, sizes[index])
        read, positions[index] = read + position - positions[index], position
        if on_progress is not None:
            on_progress(read, total)

    if partitions or len(plan.files) < _WORKERS:
        return _run_ordered(plan, root, partitions, report)
    return _run_per_file(plan, root, report)
