"""CSV bytes cut into blocks of whole lines, each parsed by pyarrow on its own (in parallel if wanted).

pyarrow's streaming reader parses one block at a time, after the previous one. Blocks cut at a
line end can instead be parsed side by side by independent `pyarrow.csv.read_csv` calls, which
release the GIL. This is exactly pyarrow's own rule: with `newlines_in_values=False` (its default,
and nbenv's) its reader also cuts blocks at the last newline. Nothing here looks inside a line;
pyarrow does all the parsing.

A block without any double quote is parsed with quoting off: the same result (there is nothing
to unquote), and pyarrow's tokenizer takes a faster path.

Files whose lines end in a bare CR (no LF at all in the first block) are left to the caller's
streaming reader, since cutting at LF would make one block of the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]

_PROBE = 1 << 20  # bytes read to find the header line and the line ending


@dataclass(frozen=True)
class Block:
    data: Any  # pa.Buffer of whole lines (the last may lack its newline at the end of the file)
    position: int  # raw (compressed, for gzip) bytes of the file read so far
    quoted: bool  # holds a double quote somewhere


class NotSplittable(Exception):
    """The file cannot be cut at LF (a bare-CR file): read it with the streaming reader."""


def open_raw(path: Path) -> tuple[Any, Any]:
    """(raw file, stream): the raw file's position is the progress, also for gzip."""
    raw = pa.OSFile(str(path))
    return raw, pa.CompressedInputStream(raw, "gzip") if path.name.endswith(".gz") else raw


class BlockReader:
    """The lines of one CSV file after its header, in blocks of about `block_size` bytes.

    With `reuse`, every block is a view of one buffer that the next block overwrites: for a
    caller that has finished with a block (its parse is done) before it asks for the next one.
    Without, every block has its own memory, for parsing several blocks at a time. Either way a
    line longer than `block_size` makes its block longer, never an error.
    """

    def __init__(self, path: Path, block_size: int, *, reuse: bool) -> None:
        self.path = path
        self.block_size = block_size
        self.reuse = reuse
        self.raw, self.stream = open_raw(path)
        self.header_line = b""
        self.eof = False

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self, buf: bytearray, start: int, end: int) -> int:
        """Read into buf[start:end]; returns the new fill level (less than `end` only at EOF)."""
        with memoryview(buf) as view:  # straight into the buffer: no bytes object, no second copy
            while start < end:
                count = self.stream.readinto(view[start:end])
                if not count:
                    self.eof = True
                    break
                start += count
        return start

    def blocks(self) -> Iterator[Block]:
        self.eof = False
        buf = bytearray(max(self.block_size, _PROBE))
        filled = self._fill(buf, 0, _PROBE)
        newline = buf.find(b"\n", 0, filled)
        if newline < 0:
            if self.eof and b"\r" not in buf[:filled]:
                self.header_line = bytes(buf[:filled])  # a header without a newline, and no rows
                return
            raise NotSplittable(self.path)
        self.header_line = bytes(buf[: newline + 1])
        start = newline + 1
        while True:
            if filled - start < self.block_size and not self.eof:  # top up behind the carried tail
                if self.reuse and len(buf) >= self.block_size:  # same length: allowed while viewed
                    buf[: filled - start] = buf[start:filled]
                else:
                    buf = bytearray(buf[start:filled]) + bytearray(self.block_size - (filled - start))
                filled, start = filled - start, 0
                filled = self._fill(buf, filled, self.block_size)
            if filled == start:
                return
            limit = min(filled, start + self.block_size)
            end = buf.rfind(b"\n", start, limit) + 1 or buf.find(b"\n", limit, filled) + 1
            if not end:
                if not self.eof:  # one line longer than what is buffered: read on until it ends
                    buf = bytearray(buf[start:filled]) + bytearray(filled - start + self.block_size)
                    filled, start = filled - start, 0
                    filled = self._fill(buf, filled, len(buf))
                    continue
                end = filled  # the last line, without a newline
            quoted = buf.find(b'"', start, end) >= 0
            yield Block(pa.py_buffer(memoryview(buf)[start:end]), self.raw.tell(), quoted)
            start = end


@dataclass(frozen=True)
class BlockParser:
    """pyarrow's `read_csv` for one block of lines, with the file's header names given."""

    column_names: tuple[str, ...]
    convert_options: Any

    def parse(self, block: Block) -> Any:
        """A table of the kept columns; quoting is switched off for a block without quotes."""
        return pacsv.read_csv(
            block.data,
            read_options=pacsv.ReadOptions(
                column_names=list(self.column_names), use_threads=False, block_size=max(1 << 20, block.data.size + 1)
            ),
            parse_options=_QUOTED if block.quoted else _UNQUOTED,
            convert_options=self.convert_options,
        )


_QUOTED = pacsv.ParseOptions()
_UNQUOTED = pacsv.ParseOptions(quote_char=False)
