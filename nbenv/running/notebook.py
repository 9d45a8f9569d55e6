"""A notebook as `nbenv run` handles it on the host, pure: `-p` values parsed like papermill's, injected as a
cell after the one tagged `parameters`, the notebook read with a size cap, and the failing cell found in the
executed copy (for the one-line error)."""

from __future__ import annotations

import ast
import json
import keyword
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv.errors import NbenvError, UsageError
from nbenv.safepath import MiB, read_regular

Notebook = dict[str, Any]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
MAX_NOTEBOOK = 64 * MiB  # notebooks with embedded plots reach a few MiB; /dev/zero never ends


# --- pure: parameters -------------------------------------------------------------------------


def parse_value(text: str) -> object:
    """Like papermill's `-p`: a Python literal (int, float, bool, None, quoted string) when it parses
    as one, else the text itself as a string."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return text


def parse_parameters(items: Sequence[str]) -> dict[str, object]:
    """`NAME=VALUE` items -> {name: value}; a later item wins. UsageError on bad syntax."""
    values: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(
                f"-p {item!r}: expected NAME=VALUE with NAME a Python identifier", "e.g. -p top_n=5 -p district=None"
            )
        value = parse_value(raw)
        if isinstance(value, float) and not math.isfinite(value):
            # repr() would inject `inf`/`nan`, names a notebook does not define: refuse rather than guess.
            raise UsageError(
                f"-p {item!r}: {raw.strip()} is out of the range of a float",
                "pass it as a string: -p " + json.dumps(f"{name}={raw.strip()!r}"),
            )
        values[name] = value
    return values


def _tags(cell: Mapping[str, Any]) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)]


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def parameters_cell(values: Mapping[str, object], *, nbformat_minor: int) -> dict[str, Any]:
    """The `injected-parameters` code cell, in papermill's format (`# Parameters` then `name = repr`)."""
    lines = ["# Parameters\n", *(f"{name} = {value!r}\n" for name, value in values.items())]
    lines[-1] = lines[-1].rstrip("\n")
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [INJECTED_TAG]},
        "outputs": [],
        "source": lines,
    }
    if nbformat_minor >= 5:
        cell["id"] = INJECTED_TAG
    return cell


def inject_parameters(notebook: Mapping[str, Any], values: Mapping[str, object], *, where: str) -> Notebook:
    """A copy of `notebook` with an `injected-parameters` cell right after the first cell tagged
    `parameters` (cells injected by an earlier run are dropped first). Keeps nbformat and
    nbformat_minor. In nbformat >= 4.5 a cell without an id gets `nbenv-INDEX`, so that nbformat
    does not invent a random one in the container (two runs stay comparable).

    UsageError when there are values but no `parameters` cell.
    """
    nb: Notebook = json.loads(json.dumps(notebook))  # a deep copy, JSON types only
    minor = int(nb.get("nbformat_minor", 0))
    cells = [c for c in nb.get("cells", []) if not (values and INJECTED_TAG in _tags(c))]
    if values:
        at = next((i for i, cell in enumerate(cells) if PARAMETERS_TAG in _tags(cell)), None)
        if at is None:
            raise UsageError(
                f"{where}: -p given, but no cell is tagged {PARAMETERS_TAG!r}",
                "tag the cell that holds the defaults `parameters` (JupyterLab: property inspector > Cell Tags)",
            )
        taken = {c.get("id") for c in cells}
        injected = parameters_cell(values, nbformat_minor=minor)
        while "id" in injected and injected["id"] in taken:
            injected["id"] += "-1"
        cells.insert(at + 1, injected)
    if minor >= 5:
        for index, cell in enumerate(cells):
            cell.setdefault("id", f"nbenv-{index}")
    nb["cells"] = cells
    return nb


def read_notebook(path: Path, *, where: str) -> Notebook:
    """The notebook's JSON; one-line errors for a missing file, a FIFO or a device (never read
    blocking), more than MAX_NOTEBOOK bytes, bad JSON or an nbformat other than 4."""
    if not path.exists() and not path.is_symlink():
        raise UsageError(
            f"{where}: no such notebook", "check the path (it is relative to the current directory)"
        ) from None
    data = read_regular(path, display=where, limit=MAX_NOTEBOOK, error=UsageError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: cannot read it: not UTF-8 (byte {exc.start})") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NbenvError(f"{where}:{exc.lineno}: not a notebook: invalid JSON: {exc.msg}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NbenvError(f"{where}: not a notebook: no list of cells")
    if nb.get("nbformat") != 4:
        raise NbenvError(
            f"{where}: nbformat {nb.get('nbformat')} is not supported (nbenv runs nbformat 4)",
            "open and save it in JupyterLab, which upgrades it",
        )
    return nb


# --- pure: results ----------------------------------------------------------------------------


def first_line(text: str, limit: int) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class CellFailure:
    index: int  # 0-based, in the executed notebook (the injected cell counts)
    first_line: str
    ename: str
    evalue: str

    def describe(self) -> str:
        """`cell 5 (`x = 1 / 0`)`: the position counted from 1, as a reader counts cells."""
        return f"cell {self.index + 1} (`{self.first_line}`)"


def failing_cell(notebook: Mapping[str, Any], *, index: int | None = None) -> CellFailure | None:
    """The cell whose error stopped the run: the cell at `index` (the driver reports it) when it
    holds an error output, else the first code cell with an error output that is not tagged
    `raises-exception` (nbclient runs on after those)."""
    cells = notebook.get("cells") or []
    order = ([index] if index is not None and 0 <= index < len(cells) else []) + list(range(len(cells)))
    for i in order:
        cell = cells[i]
        if cell.get("cell_type") != "code" or "raises-exception" in _tags(cell):
            continue
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                return CellFailure(
                    i,
                    first_line(_source(cell), 80),
                    str(output.get("ename", "")),
                    first_line(str(output.get("evalue", "")), 200),
                )
    return None


def cell_at(notebook: Mapping[str, Any], index: int) -> CellFailure:
    """A cell named by index (for a timeout or a dead kernel, which leave no error output)."""
    cells = notebook.get("cells") or []
    source = _source(cells[index]) if 0 <= index < len(cells) else ""
    return CellFailure(index, first_line(source, 80), "", "")


OUTPUT_PATTERN = "*.out.ipynb"  # what `default_output` names: excluded in git's info/exclude


def default_output(notebook: Path) -> Path:
    """`NAME.out.ipynb` beside the input: visible, never the input itself."""
    stem = notebook.name[: -len(".ipynb")] if notebook.name.endswith(".ipynb") else notebook.name
    return notebook.with_name(f"{stem}.out.ipynb")
