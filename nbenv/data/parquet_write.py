"""Writing Parquet (zstd): buffered row groups, Hive partitions, and the atomic swap into place.

Output: `output/<input stem>.parquet` per input file, or with `partition_by`, Hive-style
`output/district=4/part-0.parquet` holding that partition's rows from all inputs in input order
(the partition columns live in the directory names, as Hive, pyarrow and pandas expect; at most
MAX_PARTITIONS distinct values, one open writer each). Parquet has no second unit: timestamp[s]
is stored (and read back) as timestamp[ms]. Everything is written into a staging directory beside
the output and renamed into place at the end.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from nbenv.errors import DataError

COMPRESSION_LEVEL = 3  # zstd's default level; 0.5% smaller than level 1 here, at about the same speed


ROW_GROUP_BYTES = 64 << 20  # Arrow bytes buffered per output file before a row group is written


PARTITION_BUFFER_BYTES = 96 << 20  # all partitions together; the largest is flushed beyond this


MAX_PARTITIONS = 256  # open Parquet writers (file handles) when partitioning


HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


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


class Writers:
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


def write_partitions(writers: Writers, batch: Any, partitions: Sequence[str]) -> None:
    for directory, part in _split(batch, partitions):
        rel = f"{directory}/part-0.parquet"
        if rel not in writers.open and len(writers.open) >= MAX_PARTITIONS:
            raise DataError(
                f"--partition-by {','.join(partitions)}: more than {MAX_PARTITIONS} partitions",
                "partition by a column with fewer distinct values",
            )
        writers.add(rel, part)


def staging_dir(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; the output is read by containers as another user
    return staging


def swap_into_place(staging: Path, output: Path) -> None:
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
