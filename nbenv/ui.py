"""Terminal output: results on stdout; errors as one line (plus a hint line) on stderr."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from nbenv.errors import NbenvError

Say = Callable[[str], None]  # where a long operation reports progress, one line at a time


def quiet(message: str) -> None:
    """A Say that drops every line (library callers that want no progress output)."""


def _color(stream: object) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


MAX_LINE = 500


def clip(text: str, limit: int = MAX_LINE) -> str:
    """One readable line even when it echoes a 10 kB value."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text) - limit + 40} more characters)"


def one_line(text: str) -> str:
    """`text` with every character that is not printable (a newline, U+0085, U+2028, a terminal escape,
    an undecodable byte from argv) shown escaped: an error stays one line whatever value it echoes."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def print_error(exc: NbenvError, *, verbose: bool = False) -> None:
    """Each error: `message` on one line, `  hint: ...` on the next. Never wrapped."""
    errors = getattr(exc, "errors", None) or [exc]
    red, dim, reset = ("\033[31m", "\033[2m", "\033[0m") if _color(sys.stderr) else ("", "", "")
    for error in errors:
        sys.stderr.write(f"{red}{clip(one_line(error.message))}{reset}\n")
        if error.hint:
            sys.stderr.write(f"{dim}  hint: {clip(one_line(error.hint))}{reset}\n")
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)


def print_internal_error(exc: BaseException, *, verbose: bool) -> None:
    sys.stderr.write(f"internal error: {type(exc).__name__}: {exc}\n")
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    else:
        sys.stderr.write("  hint: run again with --verbose for the traceback, and report it\n")


def warn(message: str) -> None:
    yellow, reset = ("\033[33m", "\033[0m") if _color(sys.stderr) else ("", "")
    sys.stderr.write(f"{yellow}warning: {message}{reset}\n")
