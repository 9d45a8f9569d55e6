"""What `nbenv data compact` reads: the input files, their header, the kept columns and their types.

Types: the first _INFER_BYTES of the first file decide every column's type (pyarrow's inference,
with the user's overrides); all files are then read with exactly those types, so every output
file has the same schema. A column empty throughout that sample becomes a string column
(lossless; override it with `schema`). Only an empty field is missing ("NA" stays text).
Timestamp columns are read as dictionary-encoded text and parsed by `csv_read` (ISO 8601, or
month/day/year as PeMS writes them, unless the user names a format).

Everything here is settled before any heavy work starts, into one `ReadPlan`; every problem is a
one-line `DataError` naming the file and, where pyarrow says it, the row or column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]

from nbenv.data.csv_blocks import open_raw
from nbenv.errors import DataError

# Month/day/year with seconds, as California's PeMS (the seed's traffic data) writes its timestamps.
US_TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"


ISO8601 = "ISO8601"  # a timestamp format meaning pyarrow's ISO 8601 parser


DEFAULT_TIMESTAMP_FORMATS = (ISO8601, US_TIMESTAMP_FORMAT)


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


_INFER_BYTES = 4 << 20  # the first block of this size decides the column types (pyarrow's own: 1 MiB)


@dataclass(frozen=True)
class ReadPlan:
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


def _is_csv(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.endswith((".csv", ".csv.gz"))


def input_files(source: Path) -> tuple[Path, ...]:
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


def output_stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".csv")


def _type(column: str, name: str) -> Any:
    if name not in TYPES:
        raise DataError(f"--schema {column}={name}: unknown type {name!r}", f"valid types: {', '.join(TYPES)}")
    return TYPES[name]


def make_plan(
    files: tuple[Path, ...],
    columns: Sequence[str] | None,
    overrides: Mapping[str, str],
    formats: tuple[str, ...],
    block_size: int,
) -> ReadPlan:
    header = read_header(files[0])
    kept = tuple(columns) if columns is not None else header
    _check_columns(files[0], header, kept)
    twins = sorted(stem for stem, count in Counter(output_stem(f) for f in files).items() if count > 1)
    if twins:
        twin = twins[0]
        raise DataError(f"{twin}.csv and {twin}.csv.gz would both become {twin}.parquet", "keep one of them")
    declared = {}
    for column, type_name in overrides.items():
        if column not in kept:
            raise DataError(
                f"--schema {column}={type_name}: no column {column!r} among the kept columns", column_list(kept)
            )
        declared[column] = _type(column, type_name)
    inferred = infer_types(files[0], header, kept, declared, formats)
    types = {name: pa.string() if pa.types.is_null(t) else t for name, t in zip(kept, inferred.types, strict=True)}
    stamps = {name: t for name, t in types.items() if pa.types.is_timestamp(t)}
    text = pa.dictionary(pa.int32(), pa.string())  # each distinct timestamp text once per block
    read_types = {name: text if name in stamps else t for name, t in types.items()}
    return ReadPlan(
        files=files,
        header=header,
        columns=kept,
        read_types=read_types,
        schema=pa.schema([(name, types[name]) for name in kept]),
        timestamps=stamps,
        formats=formats,
        block_size=block_size,
    )


def column_list(names: Sequence[str]) -> str:
    shown = ", ".join(names[:12])
    return f"columns: {shown}" + (f", ... ({len(names)} in all)" if len(names) > 12 else "")


def _check_columns(first: Path, header: tuple[str, ...], kept: tuple[str, ...]) -> None:
    if not kept:
        raise DataError("no columns to keep", column_list(header))
    for name in kept:
        if name not in header:
            raise DataError(f"{first}: no column {name!r}", column_list(header))
    if len(set(kept)) < len(kept):
        raise DataError(f"a column is named twice in {', '.join(kept)}", "name each column once")


def _open_stream(path: Path) -> tuple[Any, Any]:
    """(raw file, stream): the raw file's position is the progress, also for gzip."""
    try:
        return open_raw(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}", "check the file's permissions") from exc


def convert_options(columns: Sequence[str], types: Mapping[str, Any], formats: Sequence[str]) -> Any:
    """Only an empty field is missing: "NA", "null" or "nan" in the CSV stay what they are."""
    return pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types=dict(types),
        timestamp_parsers=[pacsv.ISO8601 if f == ISO8601 else f for f in formats],
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


def open_csv(
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
            convert_options=convert_options(columns, types, formats),
        )
    except BaseException as exc:
        raw.close()
        if isinstance(exc, pa.ArrowException | OSError | EOFError):
            raise data_error(path, exc, header) from None
        raise
    return raw, reader


def read_header(path: Path) -> tuple[str, ...]:
    """The column names, read by pyarrow from the first line only."""
    raw, stream = _open_stream(path)
    try:
        first = stream.read(1 << 20)
    except (OSError, pa.ArrowException, EOFError) as exc:
        raise data_error(path, exc, ()) from exc
    finally:
        raw.close()
    line = first.split(b"\n", 1)[0]
    if not line.strip():
        raise DataError(f"{path}: empty, or no header line", "the first line must name the columns")
    try:
        return header_names(line)
    except pa.ArrowException as exc:
        raise data_error(path, exc, ()) from exc


def header_names(line: bytes) -> tuple[str, ...]:
    """The column names in a header line, as pyarrow reads them."""
    line = line.rstrip(b"\r\n") + b"\n"
    table = pacsv.read_csv(pa.py_buffer(line), read_options=pacsv.ReadOptions(use_threads=False))
    return tuple(table.column_names)


def infer_types(
    path: Path, header: Sequence[str], columns: Sequence[str], declared: Mapping[str, Any], formats: Sequence[str]
) -> Any:
    """pyarrow's type inference over the first _INFER_BYTES of the first file, declared types kept."""
    raw, reader = open_csv(path, header, columns, declared, formats, _INFER_BYTES)
    try:
        return reader.schema
    finally:
        raw.close()


def data_error(path: Path, exc: BaseException, header: Sequence[str]) -> DataError:
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
