"""Reading (phone, message id) pairs from CSV or JSONL, each row checked as it is read.

The reader is a generator so that `iter_multi_status` pulls the input only as
fast as it sends it: a ten-million-line file costs no more memory than ten
lines. Rows are validated here rather than by the library so that a bad one is
reported with its line number and the reading goes on: one run lists every bad
row, whether the command then stops or skips them.
"""

from __future__ import annotations

import csv
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Literal

import orjson

from .. import InvalidInputError
from ._internals import normalize_message_id, normalize_phone

__all__ = ["DELIMITERS", "InputFormat", "InputProblem", "OnBadRow", "PairReader", "rereadable"]

InputFormat = Literal["auto", "csv", "jsonl"]
#: What a spreadsheet may put between cells: French Excel writes `;`, exports to text `\t`.
DELIMITERS = ",;\t|"
PHONE_ALIASES = ("phone_number", "phoneNumber")
ID_ALIASES = ("message_id", "messageId")

#: Called with (line number, reason) for each row that is not a pair.
OnBadRow = Callable[[int, str], None]
Pair = tuple[str, int]

#: The longest line read, in characters: a pairs file's lines are short, and a longer one
#: (a corrupt export, a file without newlines) is a bad row, read in pieces and dropped.
MAX_LINE = 64 * 1024


class InputProblem(Exception):
    """The input as a whole cannot be read (no such column, not UTF-8): exit code 2."""


class PairReader:
    """Yields valid (E.164 phone, message id) pairs; hands each bad row to `on_bad_row`.

    Blank lines are neither pairs nor bad rows. Iterating again reads on from
    where the stream is: a second reading needs the stream sought back first.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        on_bad_row: OnBadRow,
        region: str,
        input_format: InputFormat = "auto",
        phone_column: str | None = None,
        id_column: str | None = None,
        delimiter: str | None = None,
        track_lines: bool = False,
    ) -> None:
        self._stream = stream
        self._on_bad_row = on_bad_row
        self._region = region
        self._format = input_format
        self._phone = (phone_column,) if phone_column else PHONE_ALIASES
        self._id = (id_column,) if id_column else ID_ALIASES
        self._delimiter = delimiter
        #: With `track_lines`: the input line of each pair yielded, by its position among
        #: the pairs yielded (the `index` the library gives its result). Whoever writes a
        #: result pops its entry, so this holds only the pairs in flight.
        self.line_of: dict[int, int] | None = {} if track_lines else None
        self._yielded = 0

    def __iter__(self) -> Iterator[Pair]:
        try:
            yield from self._pairs()
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc) from None

    def _pairs(self) -> Iterator[Pair]:
        lines = _Lines(self._stream, self._on_bad_row)
        first = next(lines, None)
        if first is None:
            return
        if lines.line != 1:
            raise InputProblem(f"the first line is over {MAX_LINE:,} characters: not pairs")
        fmt = self._format
        if fmt == "auto":
            fmt = "jsonl" if first.lstrip().startswith(("{", "[")) else "csv"
        rest = itertools.chain([first], lines)
        rows = self._jsonl(rest, lines) if fmt == "jsonl" else self._csv(rest, lines, first)
        for line, phone, message_id in rows:
            try:
                pair = normalize_phone(phone, self._region), normalize_message_id(message_id)
            except InvalidInputError as exc:
                self._on_bad_row(line, str(exc))
                continue
            if self.line_of is not None:
                self.line_of[self._yielded] = line
            self._yielded += 1
            yield pair

    def _csv(
        self, lines: Iterator[str], counted: _Lines, header_line: str
    ) -> Iterator[tuple[int, Any, Any]]:
        delimiter = self._delimiter or sniff_delimiter(header_line)
        reader = csv.reader(lines, delimiter=delimiter)
        header = next(reader)
        phone_at = _column(header, self._phone, "--phone-column", delimiter)
        id_at = _column(header, self._id, "--id-column", delimiter)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a NUL byte, a cell over 128 KiB
                self._on_bad_row(counted.line, f"not CSV ({exc})")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line: not a row at all
            if not any(cell.strip() for cell in row):
                self._on_bad_row(counted.line, f"empty cells only: {row!r}")
                continue
            if len(row) <= max(phone_at, id_at):
                self._on_bad_row(counted.line, f"too few columns: {row!r}")
                continue
            yield counted.line, row[phone_at], row[id_at]

    def _jsonl(self, lines: Iterator[str], counted: _Lines) -> Iterator[tuple[int, Any, Any]]:
        for text in lines:
            line = counted.line
            if not text.strip():
                continue
            try:
                item = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                if line == 1 and text.lstrip().startswith("["):
                    raise _json_array() from None
                self._on_bad_row(line, f"not JSON ({exc})")
                continue
            if line == 1 and isinstance(item, list) and _holds_pairs(item):
                raise _json_array()
            if isinstance(item, list) and len(item) == 2:
                yield line, item[0], item[1]
            elif not isinstance(item, dict):
                self._on_bad_row(line, f"expected an object or a [phone, id] pair: {text.strip()}")
            elif (missing := _missing(item, self._phone, self._id)) is not None:
                self._on_bad_row(line, f"no key {missing} in {item!r}")
            else:
                yield line, _field(item, self._phone), _field(item, self._id)


class _Lines:
    """The stream's lines, none longer than `MAX_LINE`; `line` is the number of the last
    line read (the lines dropped counted), for bad rows to name.

    A longer line is read in pieces of `MAX_LINE`, reported as a bad row and dropped: one
    runaway line costs no more memory than a piece.
    """

    def __init__(self, stream: IO[str], on_bad_row: OnBadRow) -> None:
        self._stream = stream
        self._on_bad_row = on_bad_row
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while True:
            text = self._stream.readline(MAX_LINE + 1)
            if not text:
                raise StopIteration
            self.line += 1
            if len(text) <= MAX_LINE or text.endswith("\n"):
                return text
            while text and not text.endswith("\n"):  # the rest of the line, piece by piece
                text = self._stream.readline(MAX_LINE)
            self._on_bad_row(self.line, f"line over {MAX_LINE:,} characters")


def _holds_pairs(item: list[Any]) -> bool:
    """A whole JSON array of pairs on one line, rather than one `[phone, id]` pair."""
    return any(isinstance(element, dict | list) for element in item)


def _json_array() -> InputProblem:
    return InputProblem(
        "the input is a JSON array; JSONL is expected (one JSON object or [phone, id] pair "
        "per line): convert it with jq -c '.[]' pairs.json > pairs.jsonl"
    )


def sniff_delimiter(header_line: str) -> str:
    """The header's delimiter among `DELIMITERS`; a comma when it has none (one column)."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _column(header: list[str], names: tuple[str, ...], option: str, delimiter: str) -> int:
    stripped = [name.strip() for name in header]
    for name in names:
        if name in stripped:
            return stripped.index(name)
    wanted = " or ".join(map(repr, names))
    if len(header) == 1:
        hint = f"the header was split on {delimiter!r}: set the delimiter with --delimiter"
    else:
        hint = f"name the column with {option}"
    raise InputProblem(f"no column {wanted} in the CSV header {header!r}; {hint}")


def _missing(item: dict[str, Any], *alternatives: tuple[str, ...]) -> str | None:
    for names in alternatives:
        if not any(name in item for name in names):
            return " or ".join(map(repr, names))
    return None


def _field(item: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next(item[name] for name in names if name in item)


@contextmanager
def rereadable(stream: IO[str]) -> Iterator[IO[str]]:
    """`stream` if it can go back to its start, else a temporary copy of it (stdin from a pipe).

    Checking every row before anything is sent means reading the input twice;
    a copy on disk keeps memory flat whatever the input's size.
    """
    if stream.seekable():
        yield stream
        return
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as copy:
        try:
            shutil.copyfileobj(stream, copy)
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc) from None
        copy.seek(0)
        yield copy


def _not_utf8(exc: UnicodeDecodeError) -> InputProblem:
    return InputProblem(
        f"the input is not UTF-8 text ({exc.reason}); "
        'save it as "CSV UTF-8", or convert it: iconv -f cp1252 -t utf-8'
    )
