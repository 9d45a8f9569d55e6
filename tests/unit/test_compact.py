"""CSV -> Parquet compaction: values round-trip, columns, partitions, overrides, errors, atomicity."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo.synthetic import PEMS_COLUMNS, PEMS_TIMESTAMP_FORMAT, GeneratedData, generate
from nbenv.data import compact as compact_module
from nbenv.data.compact import compact, parse_schema_overrides
from nbenv.errors import DataError


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    """A few days of generated PeMS-shaped CSV (the demo size)."""
    return generate(tmp_path_factory.mktemp("raw") / "raw", size="small")


@pytest.fixture(params=["per-file", "in-order"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of running: workers writing their own files (at least as many inputs as
    workers), and workers only parsing for the main thread's writer (fewer inputs)."""
    monkeypatch.setattr(compact_module, "_WORKERS", 1 if request.param == "per-file" else 64)
    return str(request.param)


def reference(path: Path, columns: list[str] | None = None, types: dict[str, Any] | None = None) -> Any:
    """The CSV as pyarrow's non-streaming reader sees it with the same parsing rules."""
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            include_columns=columns or [],
            column_types=types or {},
            timestamp_parsers=[pacsv.ISO8601, PEMS_TIMESTAMP_FORMAT],
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# -- round trips ---------------------------------------------------------------------------------


def test_kept_columns_round_trip_file_by_file(raw: GeneratedData, tmp_path: Path, mode: str) -> None:
    source = raw.pems_files[0].parent
    result = compact(source, tmp_path / "out", columns=PEMS_COLUMNS)
    assert listing(tmp_path / "out") == [f"part-{day:05d}.parquet" for day in range(7)]
    total = 0
    for csv_path in raw.pems_files:
        table = pq.read_table(tmp_path / "out" / f"{csv_path.name.removesuffix('.csv')}.parquet")
        expected = reference(csv_path, list(PEMS_COLUMNS))
        assert table.column_names == list(PEMS_COLUMNS)
        assert table.equals(expected.cast(table.schema))
        total += table.num_rows
    assert result.rows == total == 30 * 288 * 7
    assert (result.files_in, result.files_out) == (7, 7)
    assert result.input_bytes == sum(p.stat().st_size for p in raw.pems_files)
    assert result.output_bytes == sum(p.stat().st_size for p in (tmp_path / "out").iterdir())
    assert result.output_bytes * 10 < result.input_bytes


def test_values_match_pandas(raw: GeneratedData, tmp_path: Path) -> None:
    """An independent parser: pandas' C reader agrees with what was written."""
    compact(raw.pems_files[2], tmp_path / "out", columns=PEMS_COLUMNS)
    ours = pd.read_parquet(tmp_path / "out" / "part-00002.parquet")
    theirs = pd.read_csv(raw.pems_files[2], usecols=list(PEMS_COLUMNS))
    theirs["timestamp"] = pd.to_datetime(theirs["timestamp"], format=PEMS_TIMESTAMP_FORMAT)
    assert len(ours) == len(theirs)
    for column in PEMS_COLUMNS:
        left, right = ours[column], theirs[column]
        if column == "timestamp":
            assert (left.to_numpy() == right.to_numpy()).all()
        elif column in ("direction", "lane_type"):
            assert left.tolist() == right.tolist()
        else:
            assert left.astype("float64").equals(right.astype("float64")), column
    assert str(ours["timestamp"].dtype).startswith("datetime64")


def test_gzip_input_gives_the_same_tables(tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", size=1_500_000)
    packed = generate(tmp_path / "packed", size=1_500_000, compress=True)
    compact(plain.pems_files[0].parent, tmp_path / "from-csv", columns=PEMS_COLUMNS)
    result = compact(packed.pems_files[0].parent, tmp_path / "from-gz", columns=PEMS_COLUMNS)
    assert listing(tmp_path / "from-gz") == listing(tmp_path / "from-csv") != []
    for name in listing(tmp_path / "from-gz"):
        assert pq.read_table(tmp_path / "from-gz" / name).equals(pq.read_table(tmp_path / "from-csv" / name))
    assert result.input_bytes == sum(p.stat().st_size for p in packed.pems_files)


def test_every_column_by_default(raw: GeneratedData, tmp_path: Path) -> None:
    compact(raw.climate_files[0], tmp_path / "climate")
    table = pq.read_table(tmp_path / "climate" / "climate.parquet")
    expected = reference(raw.climate_files[0])
    assert table.column_names == expected.column_names
    assert table.equals(expected.cast(table.schema))
    assert pa.types.is_timestamp(table.schema.field("timestamp").type)


def test_column_selection_keeps_the_given_order(raw: GeneratedData, tmp_path: Path) -> None:
    compact(raw.pems_files[1], tmp_path / "out", columns=["avg_speed", "station", "timestamp"])
    table = pq.read_table(tmp_path / "out" / "part-00001.parquet")
    assert table.column_names == ["avg_speed", "station", "timestamp"]
    assert table.equals(reference(raw.pems_files[1], ["avg_speed", "station", "timestamp"]).cast(table.schema))


def test_partitioning_layout_and_content(raw: GeneratedData, tmp_path: Path) -> None:
    source = raw.pems_files[0].parent
    result = compact(source, tmp_path / "out", columns=PEMS_COLUMNS, partition_by=["district"])
    expected = pa.concat_tables(reference(p, list(PEMS_COLUMNS)) for p in raw.pems_files)
    districts = sorted(set(expected.column("district").to_pylist()))
    assert listing(tmp_path / "out") == sorted(
        [f"district={d}" for d in districts] + [f"district={d}/part-0.parquet" for d in districts]
    )
    assert result.files_out == len(districts) and result.rows == expected.num_rows
    for district in districts:
        part = pq.read_table(tmp_path / "out" / f"district={district}" / "part-0.parquet")
        assert "district" not in part.column_names
        rows = expected.filter(pa.compute.equal(expected.column("district"), district)).drop_columns(["district"])
        assert part.equals(rows.cast(part.schema))  # input order kept within a partition
    dataset = ds.dataset(tmp_path / "out", format="parquet", partitioning="hive").to_table()
    assert dataset.num_rows == expected.num_rows


def test_two_partition_columns(raw: GeneratedData, tmp_path: Path) -> None:
    compact(raw.pems_files[0], tmp_path / "out", columns=PEMS_COLUMNS, partition_by=["lane_type", "district"])
    expected = reference(raw.pems_files[0], list(PEMS_COLUMNS))
    columns = expected.column("lane_type").to_pylist(), expected.column("district").to_pylist()
    pairs = sorted(set(zip(*columns, strict=True)))
    files = [p for p in listing(tmp_path / "out") if p.endswith(".parquet")]
    assert files == sorted(f"lane_type={t}/district={d}/part-0.parquet" for t, d in pairs)
    for lane_type, district in pairs:
        part = pq.read_table(tmp_path / "out" / f"lane_type={lane_type}" / f"district={district}" / "part-0.parquet")
        keep = pa.compute.and_(
            pa.compute.equal(expected.column("lane_type"), lane_type),
            pa.compute.equal(expected.column("district"), district),
        )
        assert part.equals(expected.filter(keep).drop_columns(["lane_type", "district"]).cast(part.schema))


def test_compaction_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas when Python values are converted: 0.3 s and 50 MB for nothing."""
    source = make_inputs(tmp_path)
    code = (
        "import sys; from pathlib import Path; from nbenv.data.compact import compact; "
        f"compact(Path({str(source)!r}), Path({str(tmp_path / 'a')!r})); "
        f"compact(Path({str(source)!r}), Path({str(tmp_path / 'b')!r}), partition_by=['k']); "
        "assert 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_partition_values_are_escaped_and_nulls_have_a_directory(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["city", "n"], [["San José", 1], ["a/b", 2], ["", 3], ["San José", 4]])
    compact(source, tmp_path / "out", partition_by=["city"])
    assert [p for p in listing(tmp_path / "out") if p.endswith(".parquet")] == [
        "city=San%20Jos%C3%A9/part-0.parquet",
        "city=__HIVE_DEFAULT_PARTITION__/part-0.parquet",
        "city=a%2Fb/part-0.parquet",
    ]
    table = ds.dataset(tmp_path / "out", partitioning="hive").to_table().sort_by("n")
    assert table.column("city").to_pylist() == ["San José", "a/b", None, "San José"]


def test_schema_overrides_are_honoured(raw: GeneratedData, tmp_path: Path) -> None:
    overrides = {
        "station": "int32",
        "district": "int8",
        "avg_speed": "float32",
        "pct_observed": "uint8",
        "timestamp": "timestamp[us]",
        "freeway": "string",
    }
    compact(raw.pems_files[0], tmp_path / "out", columns=PEMS_COLUMNS, schema=overrides)
    table = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    types = {field.name: str(field.type) for field in table.schema}
    assert {name: types[name] for name in overrides} == {
        "station": "int32",
        "district": "int8",
        "avg_speed": "float",
        "pct_observed": "uint8",
        "timestamp": "timestamp[us]",
        "freeway": "string",
    }
    expected = reference(raw.pems_files[0], list(PEMS_COLUMNS), {"freeway": pa.string(), "avg_speed": pa.float32()})
    assert table.equals(expected.cast(table.schema))


def test_seconds_are_stored_as_milliseconds(tmp_path: Path) -> None:
    """Parquet has no second unit: timestamp[s] comes back as timestamp[ms], the same instants."""
    source = write_csv(tmp_path / "in.csv", ["t"], [["2024-03-01T10:00:01"], ["2024-03-01 10:00:02"]])
    compact(source, tmp_path / "out", schema={"t": "timestamp[s]"})
    column = pq.read_table(tmp_path / "out" / "in.parquet").column("t")
    assert str(column.type) == "timestamp[ms]"
    assert [str(v) for v in column.to_pylist()] == ["2024-03-01 10:00:01", "2024-03-01 10:00:02"]


def test_timestamps_in_mixed_formats(tmp_path: Path) -> None:
    """Like pyarrow's reader, each value may match any of the formats."""
    source = write_csv(tmp_path / "in.csv", ["t"], [["2024-03-01T10:00:00"], ["03/01/2024 10:05:00"], [""]])
    compact(source, tmp_path / "out")
    column = pq.read_table(tmp_path / "out" / "in.parquet").column("t")
    assert [str(v) if v else v for v in column.to_pylist()] == ["2024-03-01 10:00:00", "2024-03-01 10:05:00", None]


def test_timestamp_format_option(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["day", "v"], [["01.02.2024", 1], ["31.12.2023", 2]])
    compact(source, tmp_path / "out", timestamp_format="%d.%m.%Y")
    column = pq.read_table(tmp_path / "out" / "in.parquet").column("day")
    assert [v.date().isoformat() for v in column.to_pylist()] == ["2024-02-01", "2023-12-31"]


def test_only_empty_fields_are_missing_and_empty_columns_become_text(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["code", "n", "none"], [["NA", "", ""], ["null", "3", ""], ["", "4", ""]])
    compact(source, tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "in.parquet")
    assert table.column("code").to_pylist() == ["NA", "null", None]
    assert table.column("n").to_pylist() == [None, 3, 4]
    assert table.schema.field("none").type == pa.string()
    assert table.column("none").null_count == 3


def test_quoted_fields_with_delimiters_and_newlines_free_values(tmp_path: Path) -> None:
    rows = [['say "hi"', "a,b", 1], ["x", "", 2]]
    source = write_csv(tmp_path / "in.csv", ["s", "t", "n"], rows)
    compact(source, tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "in.parquet")
    assert table.to_pylist() == [{"s": 'say "hi"', "t": "a,b", "n": 1}, {"s": "x", "t": None, "n": 2}]


def test_an_input_without_rows_gives_an_empty_file_with_the_schema(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in" / "a.csv", ["k", "v"], [[1, 2.5]])
    write_csv(tmp_path / "in" / "b.csv", ["k", "v"], [])
    result = compact(tmp_path / "in", tmp_path / "out")
    empty = pq.read_table(tmp_path / "out" / "b.parquet")
    assert empty.num_rows == 0 and empty.schema == pq.read_table(tmp_path / "out" / "a.parquet").schema
    assert (result.rows, result.files_out) == (1, 2)


def test_progress_reaches_the_total(raw: GeneratedData, tmp_path: Path, mode: str) -> None:
    seen: list[tuple[int, int]] = []
    result = compact(
        raw.pems_files[0].parent, tmp_path / "out", columns=PEMS_COLUMNS, on_progress=lambda r, t: seen.append((r, t))
    )
    assert len(seen) > len(raw.pems_files)
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    assert seen[-1] == (result.input_bytes, result.input_bytes)


def test_small_blocks_stream_through(raw: GeneratedData, tmp_path: Path) -> None:
    compact(raw.pems_files[3], tmp_path / "out", columns=PEMS_COLUMNS, block_size=64 << 10)
    table = pq.read_table(tmp_path / "out" / "part-00003.parquet")
    assert table.equals(reference(raw.pems_files[3], list(PEMS_COLUMNS)).cast(table.schema))


def test_same_input_gives_the_same_bytes(raw: GeneratedData, tmp_path: Path, mode: str) -> None:
    """DVC hashes outputs: compacting unchanged data must not change them."""
    for name in ("a", "b"):
        compact(raw.pems_files[0].parent, tmp_path / name, columns=PEMS_COLUMNS, partition_by=["lane_type"])
    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    for rel in listing(tmp_path / "a"):
        if rel.endswith(".parquet"):
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


# -- blocks of whole lines, parsed side by side ----------------------------------------------------


def big_csv(path: Path, rows: int = 3000, line_end: str = "\n") -> Path:
    """Enough rows for many 4 KiB blocks; text, quotes only in the second half, and empty fields."""
    lines = ["t,k,name,v,unused"]
    for i in range(rows):
        name = f'"say ""{i}"", ok"' if i > rows // 2 and i % 7 == 0 else f"n{i % 13}"
        value = "" if i % 11 == 0 else f"{i / 8}"
        lines.append(f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00,{i},{name},{value},{'x' * (i % 50)}")
    path.write_bytes((line_end.join(lines) + line_end).encode())
    return path


KEPT = ["t", "k", "name", "v"]


@pytest.mark.parametrize("block_size", [4096, 5000, 1 << 20])
def test_blocks_cut_mid_line_give_the_reference_table(tmp_path: Path, mode: str, block_size: int) -> None:
    """4096 and 5000 bytes cut the file into ~45 blocks at arbitrary places; 1 MiB is one block."""
    source = big_csv(tmp_path / "in.csv")
    result = compact(source, tmp_path / "out", columns=KEPT, block_size=block_size)
    table = pq.read_table(tmp_path / "out" / "in.parquet")
    assert table.equals(reference(source, KEPT).cast(table.schema))
    assert result.rows == 3000


def test_a_file_smaller_than_one_block(tmp_path: Path, mode: str) -> None:
    source = write_csv(tmp_path / "in.csv", ["a", "b"], [[1, "x"], [2, "y"]])
    compact(source, tmp_path / "out", block_size=1 << 20)
    assert pq.read_table(tmp_path / "out" / "in.parquet").to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


@pytest.mark.parametrize("content", [b"a,b\n", b"a,b", b"a,b\r\n", b"a,b\n\n\n"])
def test_header_only_inputs_give_empty_files(tmp_path: Path, mode: str, content: bytes) -> None:
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in" / "full.csv", ["a", "b"], [[1, "x"]])
    (tmp_path / "in" / "header.csv").write_bytes(content)
    result = compact(tmp_path / "in", tmp_path / "out", block_size=4096)
    empty = pq.read_table(tmp_path / "out" / "header.parquet")
    assert empty.num_rows == 0 and empty.schema == pq.read_table(tmp_path / "out" / "full.parquet").schema
    assert result.rows == 1


def test_an_empty_later_input_is_an_error_naming_it(tmp_path: Path, mode: str) -> None:
    source = make_inputs(tmp_path)
    (source / "b.csv").write_bytes(b"")
    with pytest.raises(DataError) as caught:
        compact(source, tmp_path / "out")
    assert "b.csv" in caught.value.message and "\n" not in caught.value.message
    assert_failed_cleanly(tmp_path, tmp_path / "out", None)


@pytest.mark.parametrize("line_end", ["\r\n", "\r"])
def test_crlf_and_bare_cr_line_ends(tmp_path: Path, mode: str, line_end: str) -> None:
    """CRLF is cut into blocks like LF; bare CR (no LF anywhere) goes through the streaming reader."""
    unix = big_csv(tmp_path / "unix.csv")
    other = big_csv(tmp_path / "other.csv", line_end=line_end)
    compact(unix, tmp_path / "a", columns=KEPT, block_size=4096)
    compact(other, tmp_path / "b", columns=KEPT, block_size=4096)
    expected = pq.read_table(tmp_path / "a" / "unix.parquet")
    assert pq.read_table(tmp_path / "b" / "other.parquet").equals(expected)
    assert expected.equals(reference(unix, KEPT).cast(expected.schema))


def test_gzip_in_small_blocks(tmp_path: Path, mode: str) -> None:
    plain = big_csv(tmp_path / "in.csv")
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "in.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    compact(plain, tmp_path / "a", columns=KEPT, block_size=4096)
    compact(tmp_path / "gz", tmp_path / "b", columns=KEPT, block_size=4096)
    assert pq.read_table(tmp_path / "b" / "in.parquet").equals(pq.read_table(tmp_path / "a" / "in.parquet"))


def test_a_line_longer_than_a_block(tmp_path: Path, mode: str) -> None:
    rows = [[1, "short"], [2, "y" * 20_000], [3, "short"]]
    source = write_csv(tmp_path / "in.csv", ["k", "s"], rows)
    compact(source, tmp_path / "out", block_size=4096)
    assert pq.read_table(tmp_path / "out" / "in.parquet").column("s").to_pylist() == [r[1] for r in rows]


def test_newlines_in_values_on_request(tmp_path: Path, mode: str) -> None:
    rows = [[1, "two\nlines"], [2, "one line"], [3, "a\r\nb"]]
    source = write_csv(tmp_path / "in.csv", ["k", "s"], rows)
    compact(source, tmp_path / "out", newlines_in_values=True)
    assert pq.read_table(tmp_path / "out" / "in.parquet").to_pylist() == [{"k": k, "s": s} for k, s in rows]


def test_a_bad_row_deep_in_a_file_reports_its_row_in_the_file(tmp_path: Path, mode: str) -> None:
    """The row number counts from the top of the file (header = row 1), not from the block."""
    source = big_csv(tmp_path / "in.csv")
    lines = source.read_bytes().split(b"\n")
    lines[2500] = b"2024-01-01T00:00:00,oops,n1,1.5,"
    source.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as caught:
        compact(source, tmp_path / "out", columns=KEPT, schema={"k": "int64"}, block_size=4096)
    assert "in.csv: column k: Row #2501: CSV conversion error to int64: invalid value 'oops'" in caught.value.message
    assert_failed_cleanly(tmp_path, tmp_path / "out", None)


def test_blocks_cut_ahead_of_the_writer_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One input in ~45 blocks with one slow writer: the cutter waits instead of reading it all."""
    monkeypatch.setattr(compact_module, "_WORKERS", 2)
    source = big_csv(tmp_path / "in.csv")
    cut, written, ahead = [0], [0], [0]
    blocks = compact_module.blocks  # what the cutter thread calls (nbenv.data.csv_read.blocks)

    def counting_blocks(*args: Any, **kwargs: Any) -> Any:
        for item in blocks(*args, **kwargs):
            cut[0] += 1
            ahead[0] = max(ahead[0], cut[0] - written[0])
            yield item

    def progress(read: int, total: int) -> None:
        written[0] += 1
        time.sleep(0.002)  # a slow disk: the cutter would run far ahead if nothing held it back

    monkeypatch.setattr(compact_module, "blocks", counting_blocks)
    monkeypatch.setattr(compact_module, "_QUEUE_BYTES", 4 * 4096)
    compact(source, tmp_path / "out", columns=KEPT, block_size=4096, on_progress=progress)
    assert cut[0] > 30
    assert ahead[0] <= 4 + 2  # the queue, one block being put and one being written


# -- errors and atomicity ------------------------------------------------------------------------


def make_inputs(root: Path, bad_row: str | None = None) -> Path:
    """Two small inputs; a bad row, if any, goes at the end of the second one."""
    source = root / "in"
    source.mkdir()
    write_csv(source / "a.csv", ["t", "k", "v"], [[f"2024-01-01T00:{m:02d}:00", m, m / 4] for m in range(60)])
    write_csv(source / "b.csv", ["t", "k", "v"], [[f"2024-01-02T00:{m:02d}:00", m, m / 8] for m in range(60)])
    if bad_row is not None:
        with open(source / "b.csv", "a") as handle:
            handle.write(bad_row + "\n")
    return source


def assert_failed_cleanly(root: Path, output: Path, before: list[str] | None) -> None:
    """No temp dir beside the output; the output is absent, or exactly as it was."""
    assert not [p.name for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")]
    if before is None:
        assert not output.exists()
    else:
        assert listing(output) == before and (output / "marker.txt").read_text() == "old"


@pytest.mark.fault
@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("2024-01-02T01:00:00,1", "b.csv: CSV parse error: Row #62: Expected 3 columns, got 2"),
        ("2024-01-02T01:00:00,x,1.5", "b.csv: column k: Row #62: CSV conversion error to int64: invalid value 'x'"),
        ("yesterday,1,1.5", "b.csv: column t: 'yesterday' is not a timestamp in ISO8601 or %m/%d/%Y %H:%M:%S"),
    ],
)
@pytest.mark.parametrize("existing", [False, True])
def test_a_bad_row_in_a_later_file_leaves_nothing_behind(
    tmp_path: Path, bad_row: str, expected: str, existing: bool, mode: str
) -> None:
    source = make_inputs(tmp_path, bad_row)
    output = tmp_path / "out"
    before = None
    if existing:
        output.mkdir()
        (output / "marker.txt").write_text("old")
        before = listing(output)
    with pytest.raises(DataError) as caught:
        compact(source, output)
    assert expected in caught.value.message
    assert "\n" not in caught.value.message and caught.value.hint
    assert_failed_cleanly(tmp_path, output, before)


@pytest.mark.fault
def test_ctrl_c_midway_leaves_the_old_output(tmp_path: Path, mode: str) -> None:
    source = make_inputs(tmp_path)
    output = tmp_path / "out"
    output.mkdir()
    (output / "marker.txt").write_text("old")

    def interrupt(read: int, total: int) -> None:
        assert (output / "marker.txt").exists()  # nothing is swapped in before the end
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compact(source, output, on_progress=interrupt)
    assert_failed_cleanly(tmp_path, output, ["marker.txt"])


def test_success_replaces_the_old_output(tmp_path: Path) -> None:
    source = make_inputs(tmp_path)
    output = tmp_path / "out"
    output.mkdir()
    (output / "marker.txt").write_text("old")
    compact(source, output)
    assert listing(output) == ["a.parquet", "b.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert output.stat().st_mode & 0o777 == 0o755


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"columns": ["t", "nope"]}, "no column 'nope'"),
        ({"columns": []}, "no columns to keep"),
        ({"columns": ["t", "t"]}, "named twice"),
        ({"columns": "t,k"}, "give a list of names"),
        ({"schema": {"k": "int128"}}, "unknown type 'int128'"),
        ({"schema": {"nope": "int32"}}, "no column 'nope' among the kept columns"),
        ({"columns": ["t", "v"], "schema": {"k": "int32"}}, "no column 'k' among the kept columns"),
        ({"partition_by": ["nope"]}, "--partition-by nope: not a kept column"),
        ({"columns": ["k"], "partition_by": ["k"]}, "every kept column is a partition column"),
        ({"schema": {"k": "int8"}}, "a.csv: column k: Row #2: CSV conversion error to int8: invalid value '300'"),
        ({"block_size": 10}, "block size 10"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, kwargs: dict[str, Any], expected: str) -> None:
    source = make_inputs(tmp_path)
    if kwargs.get("schema") == {"k": "int8"}:
        write_csv(source / "a.csv", ["t", "k", "v"], [["2024-01-01T00:00:00", 300, 1.0]])
    with pytest.raises(DataError) as caught:
        compact(source, tmp_path / "out", **kwargs)
    assert expected in caught.value.message
    assert "\n" not in caught.value.message and caught.value.hint
    assert_failed_cleanly(tmp_path, tmp_path / "out", None)


def test_unknown_column_hint_lists_the_columns(tmp_path: Path) -> None:
    source = make_inputs(tmp_path)
    with pytest.raises(DataError) as caught:
        compact(source, tmp_path / "out", columns=["station"])
    assert caught.value.hint == "columns: t, k, v"


def test_source_problems(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or directory"):
        compact(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no \.csv or \.csv\.gz files"):
        compact(tmp_path / "empty", tmp_path / "out")
    source = make_inputs(tmp_path)
    with pytest.raises(DataError, match="would replace the source"):
        compact(source, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        compact(source, tmp_path / "file")
    (source / "a.csv.gz").write_bytes(gzip.compress((source / "a.csv").read_bytes()))
    with pytest.raises(DataError, match=r"would both become a\.parquet"):
        compact(source, tmp_path / "out")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match="no header line"):
        compact(tmp_path / "blank.csv", tmp_path / "out")
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"broken\.csv\.gz"):
        compact(tmp_path / "broken.csv.gz", tmp_path / "out")


def test_a_later_file_without_a_kept_column(tmp_path: Path) -> None:
    source = make_inputs(tmp_path)
    write_csv(source / "b.csv", ["t", "v"], [["2024-01-02T00:00:00", 1.0]])
    with pytest.raises(DataError, match=r"b\.csv: .*'k'") as caught:
        compact(source, tmp_path / "out")
    assert caught.value.hint == "every input file needs the kept columns"
    assert_failed_cleanly(tmp_path, tmp_path / "out", None)


def test_parse_schema_overrides() -> None:
    assert parse_schema_overrides(["station=int32", " t = timestamp[s] "]) == {"station": "int32", "t": "timestamp[s]"}
    for bad in ("station", "=int32", "station="):
        with pytest.raises(DataError, match="expected COLUMN=TYPE"):
            parse_schema_overrides([bad])


# -- property: any small table round-trips --------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8)
cell = st.one_of(st.none(), st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False), text)


@settings(max_examples=25, deadline=None, database=None)
@given(
    rows=st.lists(st.lists(cell, min_size=3, max_size=3), min_size=1, max_size=40),
    partition=st.booleans(),
)
def test_any_small_table_round_trips(rows: list[list[Any]], partition: bool) -> None:
    """Whatever pyarrow makes of a CSV, compaction writes the same values (partitioned or not)."""
    rows = [[i, *row] for i, row in enumerate(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = write_csv(root / "in.csv", ["i", "a", "b", "c"], [["" if v is None else v for v in r] for r in rows])
        expected = reference(source)
        expected = expected.cast(
            pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in expected.schema])
        )
        compact(source, root / "out", partition_by=["i"] if partition else ())
        if partition:
            table = ds.dataset(
                root / "out", partitioning=ds.partitioning(pa.schema([("i", pa.int64())]), flavor="hive")
            )
            table = table.to_table().sort_by("i").select(expected.column_names)
        else:
            table = pq.read_table(root / "out" / "in.parquet")
        assert table.equals(expected.cast(table.schema))
