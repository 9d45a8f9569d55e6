"""Reading TOML with errors that name the file and line; converting pydantic errors to that form."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nbenv.errors import SpecError
from nbenv.safepath import MiB, read_regular
from nbenv.spec.locate import Loc, format_loc, key_lines, line_of


class TomlDocument:
    """A parsed TOML file with its text, for locating keys in error messages."""

    def __init__(self, display: str, text: str, data: dict[str, Any]) -> None:
        self.display = display
        self.text = text
        self.data = data
        self._lines: dict[Loc, int] | None = None

    def line(self, loc: Loc) -> int | None:
        if self._lines is None:
            self._lines = key_lines(self.text)
        return line_of(self._lines, loc)

    def error(self, loc: Loc, what: str, hint: str | None = None) -> SpecError:
        return SpecError.at(self.display, self.line(loc), format_loc(loc) or None, what, hint)


SPEC_LIMIT = MiB  # a spec, nbenv.toml or pyproject.toml larger than this is not one


def read_toml(path: Path, display: str, *, error: type[SpecError] = SpecError, limit: int = SPEC_LIMIT) -> TomlDocument:
    """Parse `path`; malformed TOML becomes `FILE:LINE: message` with the parser's own words.

    Read with a size cap, never from a FIFO or a device (no hang); too deep a nesting is one line too."""
    raw = read_regular(path, display=display, limit=limit, error=error)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{display}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)$", message)
        line = match.group(1) if match else None
        message = re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)$", "", message)
        where = f"{display}:{line}" if line else display
        raise error(f"{where}: invalid TOML: {message[:1].lower()}{message[1:]}", "fix the TOML syntax") from None
    except (RecursionError, MemoryError):
        raise error(f"{display}: invalid TOML: nested too deeply", "flatten the nested arrays or tables") from None
    return TomlDocument(display, text, data)


def _model_fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names valid at `loc` (the parent of an unknown key), for did-you-mean."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if current is not None else None
        current = _first_model(field.annotation) if field is not None else None
        if current is None:
            return []
    return list(current.model_fields) if current is not None else []


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (found := _first_model(arg)) is not None:
            return found
    return None


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe(err: Any, model: type[BaseModel]) -> str:
    kind, loc = err["type"], tuple(err["loc"])
    if kind == "extra_forbidden":
        allowed = _model_fields_at(model, loc[:-1])
        suggestion = did_you_mean(str(loc[-1]), allowed)
        listing = f" (allowed: {', '.join(allowed)})" if allowed and not suggestion else ""
        return f"unknown key{suggestion}{listing}"
    if kind == "missing":
        return "required key is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than", "literal_error"}:
        message += f", got {err.get('input')!r}"
    return message[:1].lower() + message[1:]


def validation_errors(
    doc: TomlDocument, exc: ValidationError, model: type[BaseModel], *, prefix: Loc = ()
) -> list[SpecError]:
    """One SpecError per pydantic error, ordered by line; `prefix` is where the model sits in the file."""
    errors = [doc.error((*prefix, *err["loc"]), _describe(err, model)) for err in exc.errors()]
    return sorted(errors, key=lambda e: _line_key(e.message))


def _line_key(message: str) -> int:
    match = re.match(r"^[^:]*:(\d+):", message)
    return int(match.group(1)) if match else 0
