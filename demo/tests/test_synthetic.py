"""The synthetic generator: deterministic bytes, the PeMS and climate layouts, realistic invariants."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from demo.synthetic import (
    CLIMATE_HEADER,
    MAX_LANES,
    PEMS_HEADER,
    GeneratedData,
    generate,
    main,
    parse_size,
)
from nbenv.errors import DataError

SMALL_BYTES = 400_000  # about one day of the ten stations a byte target starts with


def file_bytes(paths: tuple[Path, ...]) -> list[bytes]:
    return [p.read_bytes() for p in paths]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    """The demo size, generated once for the layout and invariant tests."""
    return generate(tmp_path_factory.mktemp("demo") / "raw", size="small")


@pytest.fixture(scope="module")
def pems(demo: GeneratedData) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in demo.pems_files], ignore_index=True)


def test_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", size=SMALL_BYTES, seed=7)
    second = generate(tmp_path / "b", size=SMALL_BYTES, seed=7)
    other = generate(tmp_path / "c", size=SMALL_BYTES, seed=8)
    assert file_bytes(first.pems_files + first.climate_files) == file_bytes(second.pems_files + second.climate_files)
    assert file_bytes(first.pems_files) != file_bytes(other.pems_files)
    assert (first.rows, first.bytes) == (second.rows, second.bytes)


def test_gzip_holds_the_same_csv_with_a_fixed_header(tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", size=SMALL_BYTES)
    packed = generate(tmp_path / "packed", size=SMALL_BYTES, compress=True)
    assert all(p.name.endswith(".csv.gz") for p in packed.pems_files + packed.climate_files)
    for csv, gz in zip(plain.pems_files + plain.climate_files, packed.pems_files + packed.climate_files, strict=True):
        data = gz.read_bytes()
        assert data[4:8] == b"\0\0\0\0"  # mtime 0, so the bytes repeat
        assert gzip.decompress(data) == csv.read_bytes()
    assert packed.rows == plain.rows
    assert packed.bytes < plain.bytes


def test_size_scales_the_output_and_is_met_closely(tmp_path: Path) -> None:
    small = generate(tmp_path / "s", size=250_000)
    large = generate(tmp_path / "l", size=1_500_000)
    assert 5 < large.bytes / small.bytes < 7
    for target, data in ((250_000, small), (1_500_000, large)):
        assert target <= data.bytes < target * 1.1
    assert len(large.pems_files) > len(small.pems_files)


def test_headers(demo: GeneratedData) -> None:
    header = demo.pems_files[0].read_text().splitlines()[0].split(",")
    assert header[:12] == [
        "timestamp",
        "station",
        "district",
        "freeway",
        "direction",
        "lane_type",
        "station_length",
        "samples",
        "pct_observed",
        "total_flow",
        "avg_occupancy",
        "avg_speed",
    ]
    assert header[12:17] == ["lane_1_samples", "lane_1_flow", "lane_1_avg_occ", "lane_1_avg_speed", "lane_1_observed"]
    assert tuple(header) == PEMS_HEADER and len(header) == 12 + 5 * MAX_LANES
    assert demo.climate_files[0].read_text().splitlines()[0] == ",".join(CLIMATE_HEADER)


def test_demo_layout(demo: GeneratedData, pems: pd.DataFrame) -> None:
    assert [p.name for p in demo.pems_files] == [f"part-{day:05d}.csv" for day in range(7)]
    assert [p.parent.name for p in demo.climate_files] == ["climate"]
    stations = pems["station"].nunique()
    assert stations == 30 and len(pems) == 30 * 288 * 7
    climate = pd.read_csv(demo.climate_files[0])
    assert demo.rows == len(pems) + len(climate)
    assert demo.bytes == sum(p.stat().st_size for p in demo.pems_files + demo.climate_files)
    assert demo.bytes < 16 * 2**20


def test_rows_are_step_major_like_pems(pems: pd.DataFrame) -> None:
    stamps = pd.to_datetime(pems["timestamp"], format="%m/%d/%Y %H:%M:%S")
    assert stamps.is_monotonic_increasing
    assert set(stamps.diff().dropna().unique()) == {pd.Timedelta(0), pd.Timedelta(minutes=5)}
    first_step = pems[stamps == stamps.iloc[0]]
    assert first_step["station"].is_monotonic_increasing
    assert (first_step["station"] // 100_000 == first_step["district"]).all()


def test_value_ranges(pems: pd.DataFrame) -> None:
    assert pems["pct_observed"].between(0, 100).all()
    assert pems["district"].between(3, 12).all()
    assert set(pems["direction"]) <= {"N", "S", "E", "W"}
    assert set(pems["lane_type"]) <= {"ML", "OR", "FR", "HV", "CD", "FF"}
    assert pems["avg_occupancy"].dropna().between(0, 1).all()
    assert pems["avg_speed"].dropna().between(3, 90).all()
    assert pems["total_flow"].isna().any() and pems["avg_speed"].isna().any()  # missing values exist


def test_lanes_beyond_a_stations_count_are_empty(pems: pd.DataFrame) -> None:
    present = pd.DataFrame({lane: pems[f"lane_{lane}_samples"].notna() for lane in range(1, MAX_LANES + 1)})
    lanes = present.sum(axis=1)
    assert (lanes >= 1).all()
    for lane in range(1, MAX_LANES + 1):
        beyond = lanes < lane
        for field in ("samples", "flow", "avg_occ", "avg_speed", "observed"):
            assert pems.loc[beyond, f"lane_{lane}_{field}"].isna().all()
    assert (lanes.groupby(pems["station"]).nunique() == 1).all()  # a station's lane count is fixed


def test_totals_are_the_lanes_sums(pems: pd.DataFrame) -> None:
    flows = pems[[f"lane_{lane}_flow" for lane in range(1, MAX_LANES + 1)]].sum(axis=1, min_count=1)
    reported = pems["total_flow"].notna()
    assert (flows[reported] == pems.loc[reported, "total_flow"]).all()
    samples = pems[[f"lane_{lane}_samples" for lane in range(1, MAX_LANES + 1)]].sum(axis=1)
    assert (samples == pems["samples"]).all()


def test_rush_hours_and_speed_falling_with_occupancy(pems: pd.DataFrame) -> None:
    hour = pd.to_datetime(pems["timestamp"], format="%m/%d/%Y %H:%M:%S").dt.hour
    mainline = pems[pems["lane_type"] == "ML"]
    by_hour = mainline.groupby(hour[mainline.index])["total_flow"].mean()
    assert by_hour[[7, 8, 17]].min() > 3 * by_hour[[2, 3]].max()
    with_speed = mainline.dropna(subset=["avg_speed", "avg_occupancy"])
    assert with_speed["avg_speed"].corr(with_speed["avg_occupancy"]) < -0.3


def test_climate_records(demo: GeneratedData) -> None:
    climate = pd.read_csv(demo.climate_files[0])
    assert len(climate) % 24 == 0
    assert pd.to_datetime(climate["timestamp"], format="%Y-%m-%dT%H:%M:%S").is_monotonic_increasing
    assert climate["relative_humidity"].between(0, 100).all()
    assert (climate["precipitation_mm"] >= 0).all() and (climate["visibility_km"] > 0).all()
    assert set(climate["weather"]) <= {"clear", "cloudy", "haze", "fog", "drizzle", "rain"}
    assert climate["temperature_c"].between(-20, 50).all()


def test_existing_data_is_replaced_and_no_temp_dir_stays(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    (out / "pems").mkdir(parents=True)
    (out / "pems" / "stale.csv").write_text("old\n")
    (out / "notes.txt").write_text("kept\n")
    data = generate(out, size=SMALL_BYTES)
    assert sorted(p.name for p in (out / "pems").iterdir()) == [p.name for p in data.pems_files]
    assert (out / "notes.txt").read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_an_interrupted_run_leaves_the_old_data(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    before = generate(out, size=SMALL_BYTES)

    def interrupt(written: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(out, size=SMALL_BYTES * 2, seed=1, on_progress=interrupt)
    assert file_bytes(before.pems_files) == file_bytes(tuple(sorted((out / "pems").iterdir())))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


@pytest.mark.parametrize(("size", "seed"), [("huge", 0), (0, 0), (-5, 0), (True, 0), ("small", -1)])
def test_bad_arguments_are_one_line_errors(tmp_path: Path, size: str | int, seed: int) -> None:
    with pytest.raises(DataError) as caught:
        generate(tmp_path / "out", size=size, seed=seed)
    assert "\n" not in caught.value.message and caught.value.hint
    assert not (tmp_path / "out").exists()


def test_parse_size() -> None:
    assert parse_size("small") == "small"
    assert parse_size("2147483648") == 2**31
    assert parse_size("512M") == 512 * 2**20
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("1.5k") == 1536
    with pytest.raises(DataError):
        parse_size("lots")


def test_main_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out"), "--size", str(SMALL_BYTES), "--gzip"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and "rows" in out
    assert (tmp_path / "out" / "pems" / "part-00000.csv.gz").exists()
