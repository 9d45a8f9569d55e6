"""The three projects of tests/e2e/test_adopt.py: what a user's repository holds besides the committed
pyproject.toml and poetry.lock under tests/fixtures/projects/NAME/ (real Poetry 2.5.1 locks, format 2.1).

Each project has its own small package, a notebook under notebooks/ that imports it, reads the
DVC-tracked CSV and prints a deterministic result (`expected`), a README and a .gitignore as such a
project would have them (nothing nbenv-specific in it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"

# A project's usual .gitignore: nothing in it is there for nbenv.
GITIGNORE = "__pycache__/\n*.egg-info/\n.venv/\n.ipynb_checkpoints/\ndist/\n"


@dataclass(frozen=True)
class Project:
    fixture: str  # tests/fixtures/projects/<fixture>/
    env: str  # the environment the user creates with `nbenv new`
    groups: str  # `nbenv new --groups`, as the user writes it
    description: str
    files: dict[str, str]  # repo-relative path -> text (package, README, .gitignore)
    data: dict[str, str]  # DVC-tracked files under data/raw/
    cells: tuple[str, ...]  # the notebook's code cells
    expected: str  # what the notebook prints, all cells' stdout together
    notebook: str = "notebooks/report.ipynb"
    hand_steps: tuple[str, ...] = field(default_factory=tuple)


def notebook_json(cells: tuple[str, ...]) -> str:
    """An nbformat 4.5 notebook as JupyterLab saves it (generic python3 kernelspec, no outputs)."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1) + "\n"


WEATHER_PACKAGE = '''\
"""Daily temperature summaries of a few weather stations."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import attrs


@attrs.frozen
class Reading:
    station: str
    day: str
    temp_c: float

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Reading:
        return cls(row["station"], row["day"], float(row["temp_c"]))


def load(path: str | Path) -> list[Reading]:
    with open(path, newline="") as f:
        return [Reading.from_row(row) for row in csv.DictReader(f)]


def summarize(readings: Iterable[Reading]) -> list[tuple[str, int, float, float]]:
    """(station, days, mean, max) per station, by station name."""
    by_station: dict[str, list[float]] = {}
    for reading in readings:
        by_station.setdefault(reading.station, []).append(reading.temp_c)
    return [(s, len(t), round(sum(t) / len(t), 2), max(t)) for s, t in sorted(by_station.items())]
'''

LEDGER_PACKAGE = '''\
"""Monthly totals of a small household ledger (dates as people write them)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from dateutil import parser


def load(path: str | Path) -> list[tuple[str, Decimal]]:
    """(YYYY-MM, amount) per entry; dates in any format dateutil reads."""
    with open(path, newline="") as f:
        return [(parser.parse(row["date"]).strftime("%Y-%m"), Decimal(row["amount"])) for row in csv.DictReader(f)]


def month_totals(entries: Iterable[tuple[str, Decimal]]) -> list[tuple[str, int, str]]:
    totals: dict[str, list[Decimal]] = {}
    for month, amount in entries:
        totals.setdefault(month, []).append(amount)
    return [(m, len(a), f"{sum(a):.2f}") for m, a in sorted(totals.items())]
'''

PLANT_PACKAGE = '''\
"""Growth rates of seedlings measured by hand."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import attrs


@attrs.frozen
class Measurement:
    plant: str
    day: int
    height_mm: float


def load(path: str | Path) -> list[Measurement]:
    with open(path, newline="") as f:
        return [Measurement(r["plant"], int(r["day"]), float(r["height_mm"])) for r in csv.DictReader(f)]


def growth_rates(measurements: Iterable[Measurement]) -> list[tuple[str, float, float]]:
    """(plant, final height, mm per day between the first and last measurement), by plant."""
    by_plant: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_plant.setdefault(m.plant, []).append(m)
    rows = []
    for plant, ms in sorted(by_plant.items()):
        first, last = min(ms, key=lambda m: m.day), max(ms, key=lambda m: m.day)
        rows.append((plant, last.height_mm, round((last.height_mm - first.height_mm) / (last.day - first.day), 2)))
    return rows
'''

WEATHER_CSV = """\
station,day,temp_c
bergen,2024-03-01,4.5
bergen,2024-03-02,6.0
bergen,2024-03-03,3.5
oslo,2024-03-01,-2.0
oslo,2024-03-02,1.5
oslo,2024-03-03,0.5
tromso,2024-03-01,-6.5
tromso,2024-03-02,-4.0
"""

LEDGER_CSV = """\
date,amount
2024-01-05,12.40
Jan 19 2024,7.10
2024-02-03,100.00
"February 21, 2024",-20.50
03/15/2024,3.33
2024-03-30T18:00,1.67
"""

PLANT_CSV = """\
plant,day,height_mm
basil,0,12
basil,7,30
basil,14,51
cress,0,8
cress,7,41
cress,10,55
"""


# Hand steps every project shares (the test does them as a user would).
COMMON_HAND_STEPS = (
    "commit the spec and the generated docker/NAME/ files (deliberate: they are the user's to review)",
    "name the registry for `nbenv image push` (--registry, or [tool.nbenv] registry: the user's choice)",
)

PROJECTS = (
    Project(
        fixture="poetry-groups",
        env="weather",
        groups="main,notebook,analysis",
        description="Station temperature summaries",
        files={
            "src/weather_stats/__init__.py": WEATHER_PACKAGE,
            "README.md": "# weather-stats\n\nDaily temperature summaries. `nbenv up weather` opens JupyterLab.\n",
            ".gitignore": GITIGNORE,
        },
        data={"readings.csv": WEATHER_CSV},
        cells=(
            "from tabulate import tabulate\n\nfrom weather_stats import load, summarize",
            'readings = load("../data/raw/readings.csv")\nprint(f"{len(readings)} readings")',
            'print(tabulate(summarize(readings), headers=["station", "days", "mean_c", "max_c"]))',
        ),
        expected=(
            "8 readings\n"
            "station      days    mean_c    max_c\n"
            "---------  ------  --------  -------\n"
            "bergen          3      4.67      6\n"
            "oslo            3      0         1.5\n"
            "tromso          2     -5.25     -4\n"
        ),
    ),
    Project(
        fixture="pep735",
        env="ledger",
        groups="main,report",
        description="Monthly ledger totals",
        files={
            "ledger_tools/__init__.py": LEDGER_PACKAGE,
            "README.md": "# ledger-tools\n\nMonthly totals of the ledger. `nbenv up ledger` opens JupyterLab.\n",
            ".gitignore": GITIGNORE,
        },
        data={"ledger.csv": LEDGER_CSV},
        cells=(
            "import sys\n\nfrom tabulate import tabulate\n\nfrom ledger_tools import load, month_totals",
            'print("python >= 3.12:", sys.version_info >= (3, 12))',
            'print(tabulate(month_totals(load("../data/raw/ledger.csv")), headers=["month", "entries", "total"]))',
        ),
        expected=(
            "python >= 3.12: True\n"
            "month      entries    total\n"
            "-------  ---------  -------\n"
            "2024-01          2     19.5\n"
            "2024-02          2     79.5\n"
            "2024-03          2      5\n"
        ),
    ),
    Project(
        fixture="ipykernel-only",
        env="plants",
        groups="main,dev",
        description="Seedling growth rates",
        files={
            "src/plant_growth/__init__.py": PLANT_PACKAGE,
            "README.md": "# plant-growth\n\nSeedling growth rates. `nbenv up plants` opens JupyterLab.\n",
            ".gitignore": GITIGNORE,
        },
        data={"heights.csv": PLANT_CSV},
        cells=(
            "from tabulate import tabulate\n\nfrom plant_growth import growth_rates, load",
            'rows = growth_rates(load("../data/raw/heights.csv"))\n'
            'print(tabulate(rows, headers=["plant", "height_mm", "mm_per_day"]))',
        ),
        expected=(
            "plant      height_mm    mm_per_day\n"
            "-------  -----------  ------------\n"
            "basil             51          2.79\n"
            "cress             55          4.7\n"
        ),
    ),
)
