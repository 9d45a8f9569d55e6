"""CSV (plain or gzip) -> Parquet (zstd): keep some columns, optionally partition, stream, swap in atomically.

Why blocks: the seed's raw data is tens of gigabytes of CSV, more than a laptop's memory. Each
input is cut into blocks of whole lines of about `block_size` bytes (`csv_blocks`), each parsed by
pyarrow's `read_csv` on its own, and written as Parquet row groups of about ROW_GROUP_BYTES, so
memory depends on those sizes and on the number of worker threads, never on the input size.
Small blocks are also the fast choice: a 1 MiB block stays in the CPU cache while it is parsed.
Cutting at newlines is pyarrow's own rule (`newlines_in_values=False`); with
`newlines_in_values=True`, and for bare-CR files, an input goes through pyarrow's streaming
reader instead, which also gives the exact row number for any error.

Why threads: pyarrow's parse releases the GIL. Without partitioning every input becomes its own
output file, so with at least _WORKERS inputs each worker thread reads, parses and writes whole
files side by side. With partitioning (outputs shared between inputs) or fewer inputs, a cutter
thread cuts the inputs into blocks, the workers parse blocks side by side (a bounded number
ahead), and the main thread writes them in input order: one input also uses every core. Either
way the output is the same bytes on every run, so DVC hashes stay put.

Types: the first _INFER_BYTES of the first file decide every column's type (pyarrow's inference,
with the user's overrides); all files are then read with exactly those types, so every output
file has the same schema. A column empty throughout that sample becomes a string column
(lossless; override it with `schema`). Only an empty field is missing ("NA" stays text).
Timestamps (ISO 8601, or PeMS's "MM/DD/YYYY HH:MM:SS") are read as text and parsed once per
distinct value: PeMS repeats each timestamp for every station, and this is several times
cheaper than pyarrow's per-field timestamp parsing. Parquet has no second unit: timestamp[s]
is stored (and read back) as timestamp[ms].

Output: `output/<input stem>.parquet` per input file, or with `partition_by`, Hive-style
`output/district=4/part-0.parquet` holding that partition's rows from all inputs in input order
(the partition columns live in the directory names, as Hive, pyarrow and pandas expect; at most
MAX_PARTITIONS distinct values, one open writer each).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from nbenv.data.csv_blocks import Block, BlockParser, BlockReader, NotSplittable, open_raw
from nbenv.errors import DataError

PEMS_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "station",
    "district",
    "freeway",
    "direction",
    "lane_type",
    "samples",
    "pct_observed",
    "total_flow",
    "avg_occupancy",
    "avg_speed",
)
PEMS_TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"
ISO8601 = "ISO8601"  # a timestamp format meaning pyarrow's ISO 8601 parser
DEFAULT_TIMESTAMP_FORMATS = (ISO8601, PEMS_TIMESTAMP_FORMAT)

TYPES: Mapping[str, Any] = MappingProxyType(
    {
        **{f"int{bits}": getattr(pa, f"int{bits}")() for bits in (8, 16, 32, 64)},
        **{f"uint{bits}": getattr(pa, f"uint{bits}")() for bits in (8, 16, 32, 64)},
        "float32": pa.float32(),
        "float64": pa.float64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
        **{f"timestamp[{unit}]": pa.timestamp(unit) for unit in ("s", "ms", "us")},
    }
)
COMPRESSION_LEVEL = 3  # zstd's default level; 0.5% smaller than level 1 here, at about the same speed
ROW_GROUP_BYTES = 64 << 20  # Arrow bytes buffered per output file before a row group is written
PARTITION_BUFFER_BYTES = 96 << 20  # all partitions together; the largest is flushed beyond this
MAX_PARTITIONS = 256  # open Parquet writers (file handles) when partitioning
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _usable_cpus() -> int:
    """CPUs this process may run on (taskset, cpusets), not all the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_WORKERS = max(1, min(4, _usable_cpus()))  # files in flight; each uses about one core
DEFAULT_BLOCK_SIZE = 1 << 20  # 1 MiB: a block and its parse stay in the CPU cache (4 MiB: 10-20% slower)
_QUEUE_BYTES = 16 << 20  # in-order mode: CSV bytes cut ahead of the writer (being parsed or waiting)
_INFER_BYTES = 4 << 20  # the first block of this size decides the column types (pyarrow's own: 1 MiB)


@dataclass(frozen=True)
class CompactResult:
    input_bytes: int
    output_bytes: int
    rows: int
    files_in: int
    files_out: int
    seconds: float


@dataclass(frozen=True)
class _Plan:
    """Everything the readers and the writer need, settled before any heavy work starts."""

    files: tuple[Path, ...]
    header: tuple[str, ...]  # the first file's columns
    columns: tuple[str, ...]  # kept, in output order
    read_types: Mapping[str, Any]  # what the CSV reader produces (timestamps as dictionary-encoded text)
    schema: Any  # pa.Schema of the batches after timestamp parsing
    timestamps: Mapping[str, Any]  # column -> pa.timestamp type, parsed from text
    formats: tuple[str, ...]
    block_size: int
    newlines_in_values: bool = False  # quoted values may hold line breaks: no cutting at newlines


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
    files = _inputs(source)
    _check_output(source, output)
    formats = (timestamp_format,) if timestamp_format else DEFAULT_TIMESTAMP_FORMATS
    plan = replace(_make_plan(files, columns, schema, formats, block_size), newlines_in_values=newlines_in_values)
    partitions = _check_partitions(plan, partition_by)
    staging = _staging_dir(output)
    try:
        rows, written = _run(plan, staging, partitions, on_progress)
        _swap_into_place(staging, output)
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


# -- inputs, outputs and the plan ---------------------------------------------------------------


def _is_csv(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.endswith((".csv", ".csv.gz"))


def _inputs(source: Path) -> tuple[Path, ...]:
    if source.is_dir():
        files = tuple(sorted(p for p in source.iterdir() if _is_csv(p)))
        if not files:
            raise DataError(
                f"{source}: no .csv or .csv.gz files", "compact reads SOURCE/*.csv and SOURCE/*.csv.gz (not subfolders)"
            )
        return files
    if source.is_file():
        return (source,)
    raise DataError(f"{source}: no such file or directory", "give a CSV file or a directory of CSV files")


def _check_output(source: Path, output: Path) -> None:
    """Refuse outputs that would replace the input or a file: the final swap removes what is there."""
    src, out = source.resolve(), output.resolve()
    if src == out or src.is_relative_to(out):
        raise DataError(f"{output}: the output would replace the source {source}", "choose another output directory")
    if output.exists() and not output.is_dir():
        raise DataError(f"{output}: exists and is not a directory", "choose another output path or remove the file")


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".csv")


def _type(column: str, name: str) -> Any:
    if name not in TYPES:
        raise DataError(f"--schema {column}={name}: unknown type {name!r}", f"valid types: {', '.join(TYPES)}")
    return TYPES[name]


def _make_plan(
    files: tuple[Path, ...],
    columns: Sequence[str] | None,
    overrides: Mapping[str, str],
    formats: tuple[str, ...],
    block_size: int,
) -> _Plan:
    header = _header(files[0])
    kept = tuple(columns) if columns is not None else header
    _check_columns(files[0], header, kept)
    twins = sorted(stem for stem, count in Counter(_stem(f) for f in files).items() if count > 1)
    if twins:
        twin = twins[0]
        raise DataError(f"{twin}.csv and {twin}.csv.gz would both become {twin}.parquet", "keep one of them")
    declared = {}
    for column, type_name in overrides.items():
        if column not in kept:
            raise DataError(f"--schema {column}={type_name}: no column {column!r} among the kept columns", _list(kept))
        declared[column] = _type(column, type_name)
    inferred = _infer(files[0], header, kept, declared, formats)
    types = {name: pa.string() if pa.types.is_null(t) else t for name, t in zip(kept, inferred.types, strict=True)}
    stamps = {name: t for name, t in types.items() if pa.types.is_timestamp(t)}
    text = pa.dictionary(pa.int32(), pa.string())  # each distinct timestamp text once per block
    read_types = {name: text if name in stamps else t for name, t in types.items()}
    return _Plan(
        files=files,
        header=header,
        columns=kept,
        read_types=read_types,
        schema=pa.schema([(name, types[name]) for name in kept]),
        timestamps=stamps,
        formats=formats,
        block_size=block_size,
    )


def _list(names: Sequence[str]) -> str:
    shown = ", ".join(names[:12])
    return f"columns: {shown}" + (f", ... ({len(names)} in all)" if len(names) > 12 else "")


def _check_columns(first: Path, header: tuple[str, ...], kept: tuple[str, ...]) -> None:
    if not kept:
        raise DataError("no columns to keep", _list(header))
    for name in kept:
        if name not in header:
            raise DataError(f"{first}: no column {name!r}", _list(header))
    if len(set(kept)) < len(kept):
        raise DataError(f"a column is named twice in {', '.join(kept)}", "name each column once")


def _check_partitions(plan: _Plan, partition_by: Sequence[str]) -> tuple[str, ...]:
    for name in partition_by:
        if name not in plan.columns:
            raise DataError(f"--partition-by {name}: not a kept column", _list(plan.columns))
    if len(partition_by) and len(set(partition_by)) == len(plan.columns):
        raise DataError("every kept column is a partition column", "keep at least one other column")
    return tuple(dict.fromkeys(partition_by))


def _open_stream(path: Path) -> tuple[Any, Any]:
    """(raw file, stream): the raw file's position is the progress, also for gzip."""
    try:
        return open_raw(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}", "check the file's permissions") from exc


def _convert_options(columns: Sequence[str], types: Mapping[str, Any], formats: Sequence[str]) -> Any:
    """Only an empty field is missing: "NA", "null" or "nan" in the CSV stay what they are."""
    return pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types=dict(types),
        timestamp_parsers=[pacsv.ISO8601 if f == ISO8601 else f for f in formats],
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


def _open_csv(
    path: Path,
    header: Sequence[str],
    columns: Sequence[str],
    types: Mapping[str, Any],
    formats: Sequence[str],
    block: int,
    newlines_in_values: bool = False,
) -> tuple[Any, Any]:
    raw, stream = _open_stream(path)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=block, use_threads=False),  # row numbers in errors
            parse_options=pacsv.ParseOptions(newlines_in_values=newlines_in_values),
            convert_options=_convert_options(columns, types, formats),
        )
    except BaseException as exc:
        raw.close()
        if isinstance(exc, pa.ArrowException | OSError | EOFError):
            raise _data_error(path, exc, header) from None
        raise
    return raw, reader


def _header(path: Path) -> tuple[str, ...]:
    """The column names, read by pyarrow from the first line only."""
    raw, stream = _open_stream(path)
    try:
        first = stream.read(1 << 20)
    except (OSError, pa.ArrowException, EOFError) as exc:
        raise _data_error(path, exc, ()) from exc
    finally:
        raw.close()
    line = first.split(b"\n", 1)[0]
    if not line.strip():
        raise DataError(f"{path}: empty, or no header line", "the first line must name the columns")
    try:
        return _names(line)
    except pa.ArrowException as exc:
        raise _data_error(path, exc, ()) from exc


def _names(line: bytes) -> tuple[str, ...]:
    """The column names in a header line, as pyarrow reads them."""
    line = line.rstrip(b"\r\n") + b"\n"
    table = pacsv.read_csv(pa.py_buffer(line), read_options=pacsv.ReadOptions(use_threads=False))
    return tuple(table.column_names)


def _infer(
    path: Path, header: Sequence[str], columns: Sequence[str], declared: Mapping[str, Any], formats: Sequence[str]
) -> Any:
    """pyarrow's type inference over the first _INFER_BYTES of the first file, declared types kept."""
    raw, reader = _open_csv(path, header, columns, declared, formats, _INFER_BYTES)
    try:
        return reader.schema
    finally:
        raw.close()


def _data_error(path: Path, exc: BaseException, header: Sequence[str]) -> DataError:
    """One line naming the file, the row or column pyarrow reports, and what to do."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:200] + "..."
    if "CSV parse error" in text:
        return DataError(f"{path}: {text}", "fix or remove the malformed row (a missing or extra delimiter?)")
    if text.startswith("In CSV column #"):
        index_text, _, rest = text.removeprefix("In CSV column #").partition(":")
        index = int(index_text) if index_text.isdigit() else -1
        name = header[index] if 0 <= index < len(header) else f"#{index_text}"
        return DataError(
            f"{path}: column {name}:{rest}",
            f"declare a type that fits every value: --schema {name}=float64 (or string)",
        )
    if "include_columns" in text:
        return DataError(f"{path}: {text}", "every input file needs the kept columns")
    return DataError(f"{path}: {text}", "check that the file is CSV (gzip only if it ends in .gz)")


# -- reading ------------------------------------------------------------------------------------


def _parse_timestamps(encoded: Any, target: Any, formats: Sequence[str]) -> Any:
    """Parse each distinct text once (PeMS repeats every timestamp for each station)."""
    return _parse_distinct(encoded.dictionary, target, formats).take(encoded.indices)


def _parse_with(texts: Any, target: Any, fmt: str) -> Any:
    if fmt == ISO8601:
        return pc.cast(texts, target)
    return pc.cast(pc.strptime(texts, format=fmt, unit=target.unit), target)


def _parse_distinct(distinct: Any, target: Any, formats: Sequence[str]) -> Any:
    """The first format that fits every value; if none does (mixed formats), value by value."""
    for fmt in formats:
        try:
            return _parse_with(distinct, target, fmt)
        except pa.ArrowInvalid:
            continue
    parsed = []
    for index in range(len(distinct)):
        one = distinct.slice(index, 1)
        for fmt in formats:
            try:
                parsed.append(_parse_with(one, target, fmt))
                break
            except pa.ArrowInvalid:
                continue
        else:
            raise ValueError(f"{one[0].as_py()!r} is not a timestamp in {' or '.join(formats)}")
    return pa.concat_arrays(parsed)


def _finish(plan: _Plan, batch: Any) -> Any:
    """The batch with its timestamp columns parsed, in the plan's schema."""
    if not plan.timestamps:
        return batch
    arrays = list(batch.columns)
    for index, name in enumerate(batch.schema.names):
        if name in plan.timestamps:
            try:
                arrays[index] = _parse_timestamps(arrays[index], plan.timestamps[name], plan.formats)
            except ValueError as exc:
                raise DataError(
                    f"column {name}: {exc}", f"pass --timestamp-format, or --schema {name}=string to keep the text"
                ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=plan.schema)


def _stream_batches(plan: _Plan, path: Path, stop: threading.Event) -> Iterator[tuple[Any, int]]:
    """(batch in the plan's schema, raw bytes read so far) for each block of one file, from
    pyarrow's streaming reader: for quoted line breaks, bare-CR files, and exact error messages."""
    raw, reader = _open_csv(
        path, plan.header, plan.columns, plan.read_types, (), plan.block_size, plan.newlines_in_values
    )
    try:
        while not stop.is_set():
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError, EOFError) as exc:
                raise _data_error(path, exc, plan.header) from None
            yield _finished(plan, path, batch), raw.tell()
    finally:
        raw.close()


def _finished(plan: _Plan, path: Path, batch: Any) -> Any:
    try:
        return _finish(plan, batch)
    except DataError as exc:
        raise DataError(f"{path}: {exc.message}", exc.hint) from None


def _exact_error(plan: _Plan, path: Path, exc: BaseException) -> DataError:
    """pyarrow's own message for a file that failed in blocks, with its row number in the whole
    file: read again by the streaming reader up to the error (errors are rare, so this is cheap)."""
    try:
        for _ in _stream_batches(plan, path, threading.Event()):
            pass
    except DataError as exact:
        return exact
    return _data_error(path, exc, plan.header)  # the stream read it: report what the block said


def _block_parser(plan: _Plan, path: Path, header_line: bytes) -> BlockParser:
    """For one file's blocks: its own header's names, the plan's kept columns and read types."""
    try:
        names = _names(header_line) if header_line.strip() else ()
    except pa.ArrowException as exc:
        raise _exact_error(plan, path, exc) from None
    if not names or any(name not in names for name in plan.columns):
        raise _exact_error(plan, path, DataError(f"{path}: no header line, or a kept column is missing"))
    return BlockParser(names, _convert_options(plan.columns, plan.read_types, ()))


def _parse_block(plan: _Plan, path: Path, parser: BlockParser, block: Block) -> list[Any]:
    """One block's batches in the plan's schema."""
    try:
        table = parser.parse(block)
    except (pa.ArrowException, OSError) as exc:
        raise _exact_error(plan, path, exc) from None
    return [_finished(plan, path, batch) for batch in table.to_batches()]


def _blocks(plan: _Plan, path: Path, *, reuse: bool) -> Iterator[tuple[BlockParser, Block]]:
    """A file's blocks of whole lines, each with the parser for that file. `NotSplittable`
    (before any block) if the file has to go through the streaming reader instead."""
    if plan.newlines_in_values:
        raise NotSplittable(path)
    try:
        reader = BlockReader(path, plan.block_size, reuse=reuse)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}", "check the file's permissions") from exc
    with reader:
        blocks = reader.blocks()
        parser = None
        try:
            for block in blocks:
                parser = parser or _block_parser(plan, path, reader.header_line)
                yield parser, block
        except (pa.ArrowException, OSError, EOFError) as exc:  # reading, e.g. gzip that is not
            raise _exact_error(plan, path, exc) from None
        if parser is None:  # no rows: still a file with the kept columns
            _block_parser(plan, path, reader.header_line)


def _read_batches(plan: _Plan, path: Path, stop: threading.Event) -> Iterator[tuple[Any, int]]:
    """(batch in the plan's schema, raw bytes read so far) for one file, block after block in
    this thread (a worker that has the file to itself)."""
    try:
        for parser, block in _blocks(plan, path, reuse=True):
            if stop.is_set():
                return
            for batch in _parse_block(plan, path, parser, block):
                yield batch, block.position
    except NotSplittable:
        yield from _stream_batches(plan, path, stop)


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


# -- writing ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _writing(root: Path) -> Iterator[None]:
    """A full disk or a permission problem is the user's to fix: one line, not a traceback."""
    try:
        yield
    except OSError as exc:
        where = root.parent
        raise DataError(f"cannot write Parquet in {where}: {exc}", "check free space and permissions there") from None


@dataclass
class _Output:
    writer: Any
    pending: list[Any] = field(default_factory=list)
    pending_bytes: int = 0


class _Writers:
    """Open Parquet writers by relative path, each buffering batches into full-size row groups."""

    def __init__(self, root: Path, schema: Any) -> None:
        self.root = root
        self.schema = schema
        self.open: dict[str, _Output] = {}
        self.written: list[str] = []
        self.buffered = 0

    def add(self, rel: str, batch: Any) -> None:
        with _writing(self.root):
            self._add(rel, batch)

    def _add(self, rel: str, batch: Any) -> None:
        out = self.open.get(rel) or self._create(rel)
        out.pending.append(batch)
        out.pending_bytes += batch.nbytes
        self.buffered += batch.nbytes
        if out.pending_bytes >= ROW_GROUP_BYTES:
            self._flush(out)
        while self.buffered > PARTITION_BUFFER_BYTES:
            self._flush(max(self.open.values(), key=lambda o: o.pending_bytes))

    def _create(self, rel: str) -> _Output:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = pq.ParquetWriter(
            str(path), self.schema, compression="zstd", compression_level=COMPRESSION_LEVEL, use_dictionary=True
        )
        self.open[rel] = out = _Output(writer)
        self.written.append(rel)
        return out

    def _flush(self, out: _Output) -> None:
        if out.pending:
            table = pa.Table.from_batches(out.pending, schema=self.schema)
            out.writer.write_table(table, row_group_size=max(1, table.num_rows))
            self.buffered -= out.pending_bytes
            out.pending, out.pending_bytes = [], 0

    def close(self, rel: str) -> None:
        with _writing(self.root):
            out = self.open.get(rel) or self._create(rel)  # an input without rows: an empty file, same schema
            self._flush(out)
            out.writer.close()
            del self.open[rel]

    def close_all(self) -> None:
        for rel in list(self.open):
            self.close(rel)

    def abort(self) -> None:
        for out in self.open.values():
            with contextlib.suppress(Exception):  # the staging dir is removed next anyway
                out.writer.close()
        self.open.clear()


# -- one output file per input, several inputs: each worker reads and writes its own files -------


def _compact_file(plan: _Plan, index: int, root: Path, events: queue.Queue[Any], stop: threading.Event) -> None:
    path = plan.files[index]
    rel = f"{_stem(path)}.parquet"
    writers = _Writers(root, plan.schema)
    try:
        for batch, position in _read_batches(plan, path, stop):
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


def _run_per_file(plan: _Plan, root: Path, report: Callable[[int, int], None]) -> tuple[int, list[str]]:
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


# -- in input order: workers parse ahead, this thread writes ---------------------------------------


def _cut(plan: _Plan, executor: ThreadPoolExecutor, jobs: queue.Queue[Any], stop: threading.Event) -> None:
    """The cutter thread: every input in order, in blocks of whole lines; each block's parse goes to
    the pool and its future into `jobs` (bounded: this thread waits while the writer catches up)."""
    try:
        for index, path in enumerate(plan.files):
            try:
                for parser, block in _blocks(plan, path, reuse=False):
                    if stop.is_set():
                        return
                    _put(jobs, (index, block.position, executor.submit(_parse_block, plan, path, parser, block)), stop)
            except NotSplittable:
                for batch, position in _stream_batches(plan, path, stop):
                    _put(jobs, (index, position, _done([batch])), stop)
            _put(jobs, (index, -1, None), stop)
        _put(jobs, _END, stop)
    except BaseException as exc:
        _put(jobs, exc, stop)


def _done(batches: list[Any]) -> Future[list[Any]]:
    future: Future[list[Any]] = Future()
    future.set_result(batches)
    return future


def _split(batch: Any, partitions: Sequence[str]) -> Iterator[tuple[str, Any]]:
    """(Hive directory, its rows without the partition columns, in input order) per partition:
    one stable sort by the columns' dictionary codes, then each partition takes its own rows,
    rather than a filter pass over the whole batch per partition. (No Python values go into
    pyarrow here: converting them imports pandas, 0.3 s.)"""
    names = [f"_{i}" for i in range(len(partitions))]
    codes, texts = [], []
    for name in partitions:
        encoded = pc.dictionary_encode(batch.column(name), null_encoding="encode")
        codes.append(encoded.indices)
        texts.append([HIVE_NULL if v is None else quote(v, safe="") for v in _texts(encoded.dictionary)])
    keys = pa.RecordBatch.from_arrays(codes, names=names)
    order = pc.sort_indices(keys, sort_keys=[(n, "ascending") for n in names])  # stable
    runs = [pc.run_end_encode(column) for column in keys.take(order).columns]
    run_ends = [r.run_ends.to_pylist() for r in runs]
    run_codes = [r.values.to_pylist() for r in runs]
    ends = sorted(set().union(*run_ends))  # a partition ends where any column's run ends
    rest = batch.drop_columns(list(partitions))
    for start, end in zip([0, *ends[:-1]], ends, strict=True):
        values = [texts[i][run_codes[i][bisect.bisect_right(run_ends[i], start)]] for i in range(len(partitions))]
        # its own copy (a take of its rows): a slice of one sorted batch would keep all of it alive
        # until the last partition with a slice flushes, far beyond the buffer budget
        rows = rest if len(ends) == 1 else rest.take(order.slice(start, end - start))
        yield "/".join(f"{name}={value}" for name, value in zip(partitions, values, strict=True)), rows


def _texts(values: Any) -> list[str | None]:
    texts: list[str | None] = pc.cast(values, pa.string()).to_pylist()
    return texts


def _write_partitions(writers: _Writers, batch: Any, partitions: Sequence[str]) -> None:
    for directory, part in _split(batch, partitions):
        rel = f"{directory}/part-0.parquet"
        if rel not in writers.open and len(writers.open) >= MAX_PARTITIONS:
            raise DataError(
                f"--partition-by {','.join(partitions)}: more than {MAX_PARTITIONS} partitions",
                "partition by a column with fewer distinct values",
            )
        writers.add(rel, part)


def _run_ordered(
    plan: _Plan, root: Path, partitions: tuple[str, ...], report: Callable[[int, int], None]
) -> tuple[int, list[str]]:
    """A cutter thread splits the inputs into blocks, the workers parse blocks side by side, and
    this thread writes them in input order. For partitions, whose files are shared between
    inputs, so that the bytes repeat run to run; and for fewer inputs than workers, so that even
    one input uses every core. At most `depth` blocks are cut ahead of the writer."""
    writers = _Writers(root, pa.schema([f for f in plan.schema if f.name not in partitions]))
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
                    writers.close(f"{_stem(plan.files[index])}.parquet")
                report(index, -1)
                continue
            for batch in future.result():
                rows += batch.num_rows
                if partitions:
                    _write_partitions(writers, batch, partitions)
                else:
                    writers.add(f"{_stem(plan.files[index])}.parquet", batch)
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
    plan: _Plan, root: Path, partitions: tuple[str, ...], on_progress: Callable[[int, int], None] | None
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


# -- atomic output --------------------------------------------------------------------------------


def _staging_dir(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; the output is read by containers as another user
    return staging


def _swap_into_place(staging: Path, output: Path) -> None:
    """Rename the finished dir to `output`; an old `output` is renamed aside first, then removed."""
    old = output.parent / f".{output.name}.old-{uuid.uuid4().hex[:8]}"
    if output.exists():
        os.rename(output, old)
    try:
        os.rename(staging, output)
    except BaseException:
        if old.exists():
            os.rename(old, output)
        raise
    shutil.rmtree(old, ignore_errors=True)
