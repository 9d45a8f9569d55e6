"""Deterministic synthetic data shaped like the seed's: PeMS station 5-minute CSV and hourly climate.

Why synthetic: the seed's real data (35 GB of PeMS CSV) cannot ship with the repository, yet the
demo, the tests and the compaction benchmark need data with its shape and its statistics: the same
columns, the same row order (every station for one 5-minute step, then the next step), rush hours,
speed falling as occupancy rises, empty fields where detectors fail and for lanes a station lacks.
Same arguments, byte-identical files: all randomness comes from numpy's `default_rng(seed)` and the
calendar starts on a fixed date, never the wall clock.

    python -m demo.synthetic OUT_DIR [--size small|medium|BYTES] [--seed 0] [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
from numpy.typing import NDArray

from nbenv.errors import DataError

START = datetime(2023, 1, 2)  # a Monday; fixed so that no output depends on the wall clock
STEP_MINUTES = 5
STEPS_PER_DAY = 24 * 60 // STEP_MINUTES
MAX_LANES = 8
PEMS_TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"

_LANE_FIELDS = ("samples", "flow", "avg_occ", "avg_speed", "observed")
PEMS_HEADER: tuple[str, ...] = (
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
    *(f"lane_{lane}_{field}" for lane in range(1, MAX_LANES + 1) for field in _LANE_FIELDS),
)
# The columns the seed's analysis keeps (`compact-pems` in dvc.yaml, benchmarks/compact.py): 11 of 52.
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
CLIMATE_HEADER: tuple[str, ...] = (
    "timestamp",
    "station_id",
    "temperature_c",
    "precipitation_mm",
    "wind_speed_ms",
    "relative_humidity",
    "visibility_km",
    "weather",
)

# district: (share of stations, freeways, weather station, temperature offset in degrees C)
_DISTRICTS: dict[int, tuple[float, tuple[int, ...], str, float]] = {
    3: (0.08, (5, 50, 80, 99), "KSAC", 3.0),
    4: (0.26, (80, 101, 280, 580, 680, 880), "KSFO", -1.0),
    5: (0.04, (1, 101), "KSBP", 0.0),
    6: (0.05, (41, 99, 168), "KFAT", 5.0),
    7: (0.22, (5, 10, 110, 405, 605, 710), "KLAX", 2.0),
    8: (0.10, (10, 15, 60, 91, 215), "KONT", 5.0),
    10: (0.05, (5, 99, 205), "KSCK", 3.5),
    11: (0.08, (5, 8, 15, 805), "KSAN", 1.5),
    12: (0.12, (5, 55, 57, 91, 405), "KSNA", 2.0),
}
# lane type: (share, lane counts, their weights, peak flow per lane per 5 minutes, speed reported)
_LANE_TYPES: dict[str, tuple[float, tuple[int, ...], tuple[float, ...], float, float]] = {
    "ML": (0.72, (2, 3, 4, 5, 6, 7, 8), (0.06, 0.2, 0.33, 0.25, 0.1, 0.04, 0.02), 150.0, 0.8),
    "OR": (0.10, (1, 2, 3), (0.6, 0.3, 0.1), 60.0, 0.0),
    "FR": (0.10, (1, 2, 3), (0.6, 0.3, 0.1), 60.0, 0.0),
    "HV": (0.05, (1, 2), (0.8, 0.2), 120.0, 0.8),
    "CD": (0.02, (1, 2, 3), (0.4, 0.4, 0.2), 100.0, 0.5),
    "FF": (0.01, (1, 2), (0.7, 0.3), 130.0, 0.5),
}
_NAMED_SIZES = {"small": (30, 7), "medium": (300, 21)}  # (stations, days)
_ROW_BYTES_GUESS = 160  # a PeMS row is about this long; refined from each written chunk
_CHUNK_ROWS = 65_536  # rows generated at once: bounds memory whatever the size
_VEHICLE_LENGTH_MILES = 0.0038  # effective vehicle + detector length: occupancy = density x length

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class GeneratedData:
    pems_files: tuple[Path, ...]
    climate_files: tuple[Path, ...]
    rows: int  # PeMS rows plus climate rows
    bytes: int  # bytes on disk (compressed when gzip)


@dataclass(frozen=True)
class _Plan:
    stations: int
    days: int | None  # a fixed number of days, or
    target_bytes: int | None  # stop once this many raw CSV bytes are written


@dataclass(frozen=True)
class _Stations:
    """Per-station constants, drawn once: identity, geometry, demand and detector health."""

    ids: Ints
    district: Ints
    freeway: Ints
    direction: list[str]
    lane_type: list[str]
    length: list[str | None]
    lanes: Ints
    peak: Floats  # flow per lane per 5 minutes at capacity
    scale: Floats  # demand relative to capacity at the peak
    am: Floats  # weight of the morning peak (direction of the commute)
    pm: Floats
    free_speed: Floats
    has_speed: Bools  # single-loop ramps report no speed
    lane_weight: Floats  # (n, MAX_LANES), 0 beyond the station's lanes
    lane_offset: Floats  # (n, MAX_LANES) speed offset: the left lane is faster
    observed: Bools  # (n, MAX_LANES) lanes whose detector works; others are imputed
    weather: Ints  # index of the district's weather station

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def active(self) -> Bools:
        return np.arange(MAX_LANES)[None, :] < self.lanes[:, None]


@dataclass(frozen=True)
class _Weather:
    """One day's weather per weather station: speed factor by hour, (stations, 24)."""

    speed_factor: Floats


@dataclass
class _WeatherState:
    wet: Bools
    anomaly: Floats


def _plan(size: str | int) -> _Plan:
    if isinstance(size, str) and size in _NAMED_SIZES:
        stations, days = _NAMED_SIZES[size]
        return _Plan(stations, days, None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        per_station = 28 * STEPS_PER_DAY * _ROW_BYTES_GUESS  # aim at about four weeks of data
        return _Plan(min(2000, max(10, round(size / per_station))), None, size)
    raise DataError(f"size {size!r}: not small, medium or a positive number of bytes", "e.g. --size 2147483648")


def _draw_stations(rng: np.random.Generator, n: int) -> _Stations:
    districts = list(_DISTRICTS)
    district = rng.choice(districts, size=n, p=[_DISTRICTS[d][0] for d in districts])
    types = list(_LANE_TYPES)
    lane_type = rng.choice(types, size=n, p=[_LANE_TYPES[t][0] for t in types])
    ids = np.empty(n, dtype=np.int64)
    for d in districts:  # PeMS numbers stations by district: 400001.. in D4, 1200001.. in D12
        where = np.flatnonzero(district == d)
        ids[where] = d * 100_000 + np.sort(rng.choice(99_999, size=len(where), replace=False)) + 1
    order = np.lexsort((ids,))  # files list stations by id within each time step
    district, lane_type, ids = district[order], lane_type[order], ids[order]
    freeway = np.array([rng.choice(_DISTRICTS[int(d)][1]) for d in district], dtype=np.int64)
    bound = rng.random(n) < 0.5
    direction = [("N" if b else "S") if f % 2 else ("E" if b else "W") for f, b in zip(freeway, bound, strict=True)]
    lanes = np.array([rng.choice(_LANE_TYPES[t][1], p=_LANE_TYPES[t][2]) for t in lane_type], dtype=np.int64)
    active = np.arange(MAX_LANES)[None, :] < lanes[:, None]
    weight = np.where(active, np.exp(rng.normal(0, 0.15, (n, MAX_LANES))), 0.0)
    weight *= lanes[:, None] / weight.sum(axis=1, keepdims=True)
    health = rng.random(n)  # 82% fully observed, 13% some lanes imputed, 5% all imputed
    observed = active & ((health < 0.82)[:, None] | ((health < 0.95)[:, None] & (rng.random((n, MAX_LANES)) < 0.6)))
    am = rng.uniform(0.4, 1.6, n)
    weather_ids = sorted(set(district.tolist()))
    return _Stations(
        ids=ids,
        district=district.astype(np.int64),
        freeway=freeway,
        direction=direction,
        lane_type=[str(t) for t in lane_type],
        length=[_length_text(rng, str(t)) for t in lane_type],
        lanes=lanes,
        peak=np.array([_LANE_TYPES[t][3] for t in lane_type]) * rng.uniform(0.8, 1.15, n),
        scale=rng.uniform(0.75, 1.2, n),
        am=am,
        pm=2.0 - am,
        free_speed=rng.uniform(62.0, 71.0, n),
        has_speed=rng.random(n) < np.array([_LANE_TYPES[t][4] for t in lane_type]),
        lane_weight=weight,
        lane_offset=np.where(active, 3.0 - 1.6 * np.arange(MAX_LANES)[None, :], 0.0),
        observed=observed,
        weather=np.array([weather_ids.index(d) for d in district], dtype=np.int64),
    )


def _length_text(rng: np.random.Generator, lane_type: str) -> str | None:
    """Mainline stations have a length in miles, printed as PeMS does (".43"); ramps have none."""
    if lane_type in ("OR", "FR", "FF"):
        return None
    return f"{rng.uniform(0.1, 2.5):.3f}".rstrip("0").rstrip(".").removeprefix("0")


def _gauss(x: Floats, mean: float, sigma: float) -> Floats:
    return np.exp(-0.5 * ((x - mean) / sigma) ** 2)


def _demand(hours: Floats, weekend: bool, st: _Stations) -> Floats:
    """Demand relative to capacity, (steps, stations): night trough, daytime plateau, rush hours."""
    if weekend:
        shape = 0.07 + 0.62 * _gauss(hours, 13.5, 3.6)
        return shape[:, None] * st.scale[None, :]
    plateau = 0.45 / (1 + np.exp(-(hours - 6.0) / 0.6)) / (1 + np.exp((hours - 21.0) / 1.0))
    am, pm = 0.5 * _gauss(hours, 7.75, 1.1), 0.5 * _gauss(hours, 17.3, 1.4)
    shape = 0.07 + plateau[:, None] + am[:, None] * st.am[None, :] + pm[:, None] * st.pm[None, :]
    return np.asarray(shape * st.scale[None, :], dtype=np.float64)


def _decimal_text(scaled: Ints, digits: int, null: Bools) -> pa.Array:
    """Fixed decimals the way PeMS prints them, without a leading zero: 402 -> ".0402", 699 -> "69.9"."""
    unit = 10**digits
    whole = pa.array(scaled // unit, mask=null)
    frac = pc.utf8_lpad(pc.cast(pa.array(scaled % unit), pa.string()), width=digits, padding="0")
    whole_text = pc.if_else(pc.equal(whole, 0), "", pc.cast(whole, pa.string()))
    return pc.binary_join_element_wise(whole_text, frac, ".")


class _Generator:
    """Carries the random streams and the station table through the days of one generation."""

    def __init__(self, seed: int, stations: int) -> None:
        self.stations = _draw_stations(np.random.default_rng([seed, 0]), stations)
        self.rng = np.random.default_rng([seed, 1])
        self.climate_rng = np.random.default_rng([seed, 2])
        districts = sorted(set(self.stations.district.tolist()))  # one weather station each
        self.weather_ids = [_DISTRICTS[d][2] for d in districts]
        self.weather_offset = np.array([_DISTRICTS[d][3] for d in districts])
        count = len(self.weather_ids)
        self.state = _WeatherState(np.zeros(count, dtype=np.bool_), np.zeros(count))
        n = self.stations.count
        self.station_arrays = (pa.array(self.stations.ids), pa.array(self.stations.district))
        self.static = (
            pa.array(self.stations.freeway),
            pa.array(self.stations.direction),
            pa.array(self.stations.lane_type),
            pa.array(self.stations.length, type=pa.string()),
        )
        self.day_scale = np.ones(n)
        self.down_imputed = np.zeros(n, dtype=np.bool_)
        self.down_empty = np.zeros(n, dtype=np.bool_)

    def start_day(self) -> None:
        """Per-day draws: demand varies a little; about 1.5% of detectors are down all day."""
        n = self.stations.count
        self.day_scale = self.rng.normal(1.0, 0.04, n)
        down = self.rng.random(n) < 0.015
        imputed = self.rng.random(n) < 0.5
        self.down_imputed, self.down_empty = down & imputed, down & ~imputed

    def climate_day(self, day: int) -> tuple[bytes, _Weather]:
        return _climate_day(self.climate_rng, day, self.weather_ids, self.weather_offset, self.state)

    def pems_chunk(self, day: int, steps: Ints, weather: _Weather) -> bytes:
        table = _pems_table(self, day, steps, weather)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        data: bytes = sink.getvalue().to_pybytes()
        return data


def _pems_table(gen: _Generator, day: int, steps: Ints, weather: _Weather) -> pa.Table:
    """One chunk of rows, step-major like PeMS files: each 5-minute step lists every station."""
    st, rng = gen.stations, gen.rng
    k, n = len(steps), st.count
    hours = ((steps * STEP_MINUTES + STEP_MINUTES / 2) / 60.0).astype(np.float64)
    demand = _demand(hours, (START + timedelta(days=day)).weekday() >= 5, st) * gen.day_scale[None, :]
    jam = np.clip((demand - 0.8) / 0.4, 0.0, 1.0)  # 0 free flow .. 1 stop-and-go
    rain = weather.speed_factor[st.weather][:, steps // 12].T  # (steps, stations)
    speed = st.free_speed[None, :] * (1 - 0.6 * jam**1.5) * rain
    mean_flow = st.peak[None, :] * np.minimum(demand, 1.0) * (1 - 0.3 * jam)
    lane_flow = rng.poisson(mean_flow[:, :, None] * st.lane_weight[None, :, :])
    lane_speed = np.clip(speed[:, :, None] + st.lane_offset[None] + rng.normal(0, 1.2, lane_flow.shape), 3, 85)
    noise = np.exp(rng.normal(0, 0.08, lane_flow.shape))
    lane_occ = np.clip(lane_flow * 12 / lane_speed * _VEHICLE_LENGTH_MILES * noise, 0, 0.9999)
    dropout = rng.random(lane_flow.shape) < 0.02
    lane_samples = np.where(dropout, rng.integers(0, 10, lane_flow.shape), 10)
    active = np.broadcast_to(st.active[None], lane_flow.shape)
    missing = rng.random((k, n)) < 0.002  # a lost 5-minute record: empty values
    empty = missing | gen.down_empty[None, :]
    silent = empty | gen.down_imputed[None, :]  # no samples came in: imputed or empty
    lane_samples = np.where(active & ~silent[:, :, None], lane_samples, 0)
    lane_observed = (st.observed[None] & ~silent[:, :, None]).astype(np.int64)

    total_flow = lane_flow.sum(axis=2)
    occ_k = np.rint(lane_occ * 10_000).astype(np.int64)
    speed_k = np.rint(lane_speed * 10).astype(np.int64)
    avg_occ_k = np.rint(np.where(active, lane_occ, 0).sum(axis=2) / st.lanes[None, :] * 10_000).astype(np.int64)
    weighted = (lane_flow * lane_speed).sum(axis=2) / np.maximum(total_flow, 1)
    plain = np.where(active, lane_speed, 0).sum(axis=2) / st.lanes[None, :]
    avg_speed_k = np.rint(np.where(total_flow > 0, weighted, plain) * 10).astype(np.int64)
    pct = np.rint(100 * lane_observed.sum(axis=2) / st.lanes[None, :]).astype(np.int64)

    rows, station = np.repeat(np.arange(k), n), np.tile(np.arange(n), k)
    midnight = START + timedelta(days=day)
    stamps = [(midnight + timedelta(minutes=STEP_MINUTES * int(s))).strftime(PEMS_TIMESTAMP_FORMAT) for s in steps]
    no_speed = empty | ~st.has_speed[None, :]
    columns = [
        pa.array(stamps).take(rows),
        *(array.take(station) for array in gen.station_arrays),
        *(array.take(station) for array in gen.static),
        pa.array(lane_samples.sum(axis=2).ravel()),
        pa.array(pct.ravel()),
        pa.array(total_flow.ravel(), mask=empty.ravel()),
        _decimal_text(avg_occ_k.ravel(), 4, empty.ravel()),
        _decimal_text(avg_speed_k.ravel(), 1, no_speed.ravel()),
    ]
    for lane in range(MAX_LANES):
        off = ~active[:, :, lane].ravel()
        gone = off | empty.ravel()
        columns += [
            pa.array(lane_samples[:, :, lane].ravel(), mask=off),
            pa.array(lane_flow[:, :, lane].ravel(), mask=gone),
            _decimal_text(occ_k[:, :, lane].ravel(), 4, gone),
            _decimal_text(speed_k[:, :, lane].ravel(), 1, gone | no_speed.ravel()),
            pa.array(lane_observed[:, :, lane].ravel(), mask=off),
        ]
    return pa.Table.from_arrays(columns, names=list(PEMS_HEADER))


def _climate_day(
    rng: np.random.Generator, day: int, ids: list[str], offset: Floats, state: _WeatherState
) -> tuple[bytes, _Weather]:
    """24 hourly records per weather station: seasonal and daily temperature cycles, rain spells
    (a two-state Markov chain, wetter in winter), morning fog, and what that does to speeds."""
    date = START + timedelta(days=day)
    winter = 0.5 * (1 + math.cos(2 * math.pi * (date.timetuple().tm_yday - 15) / 365.25))
    count = len(ids)
    state.anomaly = 0.7 * state.anomaly + rng.normal(0, 1.5, count)
    hours = np.arange(24)
    wet = np.empty((24, count), dtype=np.bool_)
    for hour in hours:
        p = np.where(state.wet, 0.85, 0.002 + 0.02 * winter)
        state.wet = rng.random(count) < p
        wet[hour] = state.wet
    diurnal = 6.0 * np.sin(2 * np.pi * (hours - 9) / 24)[:, None]
    temp = 22 - 10 * winter + offset[None, :] + state.anomaly[None, :] + diurnal - 2 * wet
    temp = np.round(temp + rng.normal(0, 0.4, (24, count)), 1)
    precip = np.where(wet, np.maximum(np.round(rng.gamma(0.9, 1.4, (24, count)), 1), 0.1), 0.0)
    humidity = np.clip(np.rint(70 - 1.8 * (temp - 15) + 20 * wet + rng.normal(0, 6, (24, count))), 8, 100)
    fog = ~wet & (humidity >= 90) & ((hours >= 3) & (hours <= 10))[:, None] & (rng.random((24, count)) < 0.7)
    clear_vis = 16.1 - rng.gamma(1.0, 1.2, (24, count))
    visibility = np.round(np.where(wet, rng.uniform(2, 10, (24, count)), np.where(fog, 0.2, 0) + clear_vis), 1)
    visibility = np.where(fog, np.round(rng.uniform(0.2, 0.9, (24, count)), 1), np.maximum(visibility, 0.1))
    wind = np.round(rng.gamma(2.0, 1.5, (24, count)) + 1.5 * wet, 1)
    weather = np.select(
        [precip >= 0.5, precip > 0, fog, visibility < 8, humidity >= 80],
        ["rain", "drizzle", "fog", "haze", "cloudy"],
        "clear",
    )
    lines = [
        f"{date:%Y-%m-%d}T{hour:02d}:00:00,{ids[i]},{temp[hour, i]:.1f},{precip[hour, i]:.1f},{wind[hour, i]:.1f},"
        f"{int(humidity[hour, i])},{visibility[hour, i]:.1f},{weather[hour, i]}\n"
        for hour in range(24)
        for i in range(count)
    ]
    factor = 1 - 0.1 * (precip >= 0.5) - 0.05 * ((precip > 0) & (precip < 0.5)) - 0.12 * fog
    return "".join(lines).encode(), _Weather(speed_factor=factor.T.astype(np.float64))


class _CsvSink:
    """A CSV file with its header; gzip with a fixed header (no name, mtime 0) so bytes repeat."""

    def __init__(self, path: Path, header: Sequence[str], compress: bool) -> None:
        self.path = path
        self._raw: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._out: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0) if compress else self._raw  # type: ignore[assignment]
        )
        self.raw_bytes = 0
        self.write((",".join(header) + "\n").encode())

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self.raw_bytes += len(data)

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()


@contextmanager
def _sink(path: Path, header: Sequence[str], compress: bool) -> Iterator[_CsvSink]:
    sink = _CsvSink(path, header, compress)
    try:
        yield sink
    finally:
        sink.close()


def _chunk_steps(plan: _Plan, stations: int, written: int, row_bytes: float) -> int:
    """Steps per chunk: about _CHUNK_ROWS rows, fewer near the byte target so it is met closely."""
    steps = max(1, min(STEPS_PER_DAY, _CHUNK_ROWS // stations))
    if plan.target_bytes is not None:
        steps = min(steps, max(1, math.ceil((plan.target_bytes - written) / (row_bytes * stations))))
    return steps


def _finished(plan: _Plan, day: int, written: int) -> bool:
    if plan.days is not None:
        return day >= plan.days
    return plan.target_bytes is not None and written >= plan.target_bytes


def _write_all(
    root: Path, plan: _Plan, seed: int, compress: bool, on_progress: Callable[[int], None] | None
) -> tuple[list[Path], Path, int]:
    """Write every file into `root`, one PeMS part per day; return the parts, the climate file, the rows."""
    suffix = ".csv.gz" if compress else ".csv"
    (root / "pems").mkdir()
    (root / "climate").mkdir()
    gen = _Generator(seed, plan.stations)
    n = gen.stations.count
    parts: list[Path] = []
    rows, finished_parts, day, row_bytes = 0, 0, 0, float(_ROW_BYTES_GUESS)
    climate_path = root / "climate" / f"climate{suffix}"
    with _sink(climate_path, CLIMATE_HEADER, compress) as climate:
        while not _finished(plan, day, finished_parts + climate.raw_bytes):
            data, weather = gen.climate_day(day)
            climate.write(data)
            rows += 24 * len(gen.weather_ids)
            gen.start_day()
            parts.append(root / "pems" / f"part-{day:05d}{suffix}")
            with _sink(parts[-1], PEMS_HEADER, compress) as part:
                step = 0
                while step < STEPS_PER_DAY:
                    written = finished_parts + climate.raw_bytes + part.raw_bytes
                    if step and plan.target_bytes is not None and written >= plan.target_bytes:
                        break
                    count = min(_chunk_steps(plan, n, written, row_bytes), STEPS_PER_DAY - step)
                    chunk = gen.pems_chunk(day, np.arange(step, step + count, dtype=np.int64), weather)
                    part.write(chunk)
                    row_bytes, rows, step = len(chunk) / (count * n), rows + count * n, step + count
                    if on_progress is not None:
                        on_progress(written + len(chunk))
            finished_parts += part.raw_bytes
            day += 1
    return parts, climate_path, rows


def _publish(staging: Path, out_dir: Path) -> None:
    """Swap each finished directory into place; an old one is renamed away first, then removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("pems", "climate"):
        target = out_dir / name
        if target.exists() or target.is_symlink():
            os.rename(target, staging / f"{name}.old")
        os.rename(staging / name, target)


def generate(
    out_dir: Path,
    *,
    size: str | int = "small",
    seed: int = 0,
    compress: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> GeneratedData:
    """Write out_dir/pems/part-NNNNN.csv[.gz] (one per day) and out_dir/climate/climate.csv[.gz].

    `size`: "small" (30 stations x 7 days, the demo), "medium" (300 x 21) or a number of raw CSV
    bytes (approximate: met to within one chunk). Files are written in a temp dir beside out_dir
    and renamed into place, so an interrupted run leaves the old data as it was.
    `on_progress(raw_bytes_written)` is called after each chunk.
    """
    plan = _plan(size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed {seed!r}: not a non-negative integer", "e.g. --seed 0")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        parts, climate, rows = _write_all(staging, plan, seed, compress, on_progress)
        _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pems_files = tuple(out_dir / "pems" / p.name for p in parts)
    climate_files = (out_dir / "climate" / climate.name,)
    total = sum(p.stat().st_size for p in (*pems_files, *climate_files))
    return GeneratedData(pems_files, climate_files, rows, total)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?", re.IGNORECASE)


def parse_size(text: str) -> str | int:
    """ "small", "medium", or bytes with an optional binary suffix: 2147483648, 512M, 2GiB."""
    if text in _NAMED_SIZES:
        return text
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise DataError(f"--size {text!r}: not small, medium or a number of bytes", "e.g. --size 2GiB")
    scale = 1024 ** " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * scale)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="writes OUT_DIR/pems/ and OUT_DIR/climate/")
    parser.add_argument("--size", default="small", help="small, medium or raw CSV bytes (e.g. 2GiB); default small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true", help="write .csv.gz")
    args = parser.parse_args(argv)
    try:
        data = generate(args.out_dir, size=parse_size(args.size), seed=args.seed, compress=args.gzip)
    except DataError as exc:
        parser.exit(8, f"error: {exc.message}" + (f"\nhint: {exc.hint}\n" if exc.hint else "\n"))
    print(
        f"{data.rows:,} rows: {len(data.pems_files)} PeMS file(s) and {len(data.climate_files)} climate file(s),"
        f" {data.bytes / 2**20:.1f} MiB in {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
