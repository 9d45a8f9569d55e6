"""Reading CSV into record batches in the plan's schema: in blocks of whole lines, or streamed.

Cutting at newlines is pyarrow's own rule (`newlines_in_values=False`): each block (`csv_blocks`)
is parsed on its own. With `newlines_in_values=True`, and for bare-CR files, an input goes through
pyarrow's streaming reader instead, which also gives the exact row number for any error.
Timestamps (ISO 8601, or PeMS's "MM/DD/YYYY HH:MM:SS") are read as text and parsed once per
distinct value: PeMS repeats each timestamp for every station, and this is several times
cheaper than pyarrow's per-field timestamp parsing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from nbenv.data.csv_blocks import Block, BlockParser, BlockReader, NotSplittable
from nbenv.data.csv_schema import ISO8601, ReadPlan, convert_options, data_error, header_names, open_csv
from nbenv.errors import DataError


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


def _finish(plan: ReadPlan, batch: Any) -> Any:
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


def stream_batches(plan: ReadPlan, path: Path, stop: threading.Event) -> Iterator[tuple[Any, int]]:
    """(batch in the plan's schema, raw bytes read so far) for each block of one file, from
    pyarrow's streaming reader: for quoted line breaks, bare-CR files, and exact error messages."""
    raw, reader = open_csv(
        path, plan.header, plan.columns, plan.read_types, (), plan.block_size, plan.newlines_in_values
    )
    try:
        while not stop.is_set():
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError, EOFError) as exc:
                raise data_error(path, exc, plan.header) from None
            yield _finished(plan, path, batch), raw.tell()
    finally:
        raw.close()


def _finished(plan: ReadPlan, path: Path, batch: Any) -> Any:
    try:
        return _finish(plan, batch)
    except DataError as exc:
        raise DataError(f"{path}: {exc.message}", exc.hint) from None


def _exact_error(plan: ReadPlan, path: Path, exc: BaseException) -> DataError:
    """pyarrow's own message for a file that failed in blocks, with its row number in the whole
    file: read again by the streaming reader up to the error (errors are rare, so this is cheap)."""
    try:
        for _ in stream_batches(plan, path, threading.Event()):
            pass
    except DataError as exact:
        return exact
    return data_error(path, exc, plan.header)  # the stream read it: report what the block said


def _block_parser(plan: ReadPlan, path: Path, header_line: bytes) -> BlockParser:
    """For one file's blocks: its own header's names, the plan's kept columns and read types."""
    try:
        names = header_names(header_line) if header_line.strip() else ()
    except pa.ArrowException as exc:
        raise _exact_error(plan, path, exc) from None
    if not names or any(name not in names for name in plan.columns):
        raise _exact_error(plan, path, DataError(f"{path}: no header line, or a kept column is missing"))
    return BlockParser(names, convert_options(plan.columns, plan.read_types, ()))


def parse_block(plan: ReadPlan, path: Path, parser: BlockParser, block: Block) -> list[Any]:
    """One block's batches in the plan's schema."""
    try:
        table = parser.parse(block)
    except (pa.ArrowException, OSError) as exc:
        raise _exact_error(plan, path, exc) from None
    return [_finished(plan, path, batch) for batch in table.to_batches()]


def blocks(plan: ReadPlan, path: Path, *, reuse: bool) -> Iterator[tuple[BlockParser, Block]]:
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


def read_batches(plan: ReadPlan, path: Path, stop: threading.Event) -> Iterator[tuple[Any, int]]:
    """(batch in the plan's schema, raw bytes read so far) for one file, block after block in
    this thread (a worker that has the file to itself)."""
    try:
        for parser, block in blocks(plan, path, reuse=True):
            if stop.is_set():
                return
            for batch in parse_block(plan, path, parser, block):
                yield batch, block.position
    except NotSplittable:
        yield from stream_batches(plan, path, stop)
