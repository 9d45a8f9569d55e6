"""Map a key path such as ("data", 1, "path") to the line of a TOML document that defines it.

The stdlib parser keeps no positions, so this scans the text once: table headers (`[a]`,
`[[a]]` with their array index) and `key = value` lines. Good enough to point a user at the
right line; the deepest known prefix of a path is used when the exact key is not on a line
of its own (inline tables, array items).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

Loc = tuple[str | int, ...]

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")


def _split_key(dotted: str) -> list[str]:
    parts = re.findall(_BARE_OR_QUOTED, dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def key_lines(text: str) -> dict[Loc, int]:
    """Return the first line (1-based) of every table and key path in `text`."""
    lines: dict[Loc, int] = {}
    array_counts: dict[tuple[str, ...], int] = {}
    table: Loc = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _ARRAY_HEADER.match(raw):
            keys = tuple(_split_key(match.group(1)))
            index = array_counts.get(keys, -1) + 1
            array_counts[keys] = index
            table = (*keys, index)
            lines.setdefault(keys, number)
        elif match := _TABLE_HEADER.match(raw):
            table = tuple(_split_key(match.group(1)))
        elif match := _KEY_LINE.match(raw):
            path = (*table, *_split_key(match.group(1)))
            for end in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:end], number)
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def line_of(lines: dict[Loc, int], loc: Sequence[str | int]) -> int | None:
    """The line of the deepest prefix of `loc` that the document defines, if any."""
    for end in range(len(loc), 0, -1):
        if (found := lines.get(tuple(loc[:end]))) is not None:
            return found
    return None


def format_loc(loc: Sequence[str | int]) -> str:
    """("data", 1, "path") -> "data[1].path". A key that is not a plain word (a newline, a quote, a dot, ...)
    is shown quoted and escaped, so an error stays one line however a key is spelled."""
    out = ""
    for part in loc:
        if not isinstance(part, int) and not _PLAIN_KEY.fullmatch(str(part)):
            part = json.dumps(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
