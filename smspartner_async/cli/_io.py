"""Writing rows as CSV, JSONL or a table, to stdout or a file, in completion or input order.

Writers write each row as it arrives, except the table, which must know every
row before drawing and therefore keeps only the first `TABLE_LIMIT` by index.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import IO, Any, Generic, Literal, Protocol, TypeVar

import click
import orjson
from rich.table import Table

from .. import MessageStatus, MultiStatusResult, RecipientStatus
from ..watch import StatusChange
from ._report import console

__all__ = [
    "CHANGE_FIELDS",
    "TABLE_LIMIT",
    "InOrder",
    "OutputFormat",
    "Writer",
    "change_row",
    "format_of",
    "message_row",
    "open_output",
    "recipient_row",
    "result_row",
]

T = TypeVar("T")
Row = dict[str, Any]
OutputFormat = Literal["csv", "jsonl", "table"]
TABLE_LIMIT = 1000
#: File names that say what they hold; any other name gets CSV (a table only on a terminal).
SUFFIX_FORMATS: dict[str, OutputFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

RESULT_FIELDS = (
    "index",
    "line",
    "phone_number",
    "message_id",
    "ok",
    "code",
    "status",
    "date",
    "stop_sms",
    "is_spam",
    "message",
)
#: A terminal is narrow: the table leaves out what the status and message already say.
RESULT_TABLE_FIELDS = ("index", "phone_number", "message_id", "status", "date", "message")
_WRAPPING = frozenset({"date", "message"})
RECIPIENT_FIELDS = ("phone_number", "status", "date", "stop_sms")
MESSAGE_FIELDS = (
    "phone_number",
    "message_id",
    "status",
    "date",
    "stop_sms",
    "cost",
    "country_code",
    "currency",
)

#: `id` first: it is what a consumer of a watch's output drops repeats by.
CHANGE_FIELDS = (
    "id",
    "index",
    "phone_number",
    "message_id",
    "status",
    "previous",
    "settled",
    "reason",
    "checked_at",
    "date",
    "code",
    "message",
)


# -- rows ----------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        # One rule for every command and column: ISO 8601 in UTC (`+00:00`), whatever a
        # state file written by an older release holds.
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def result_row(result: MultiStatusResult, line: int | None = None) -> Row:
    """`index` is the pair's position among the pairs checked (bad rows skipped are not
    counted); `line` its line in the input, as the rejects file numbers them."""
    return {
        "index": result.index,
        "line": line,
        "phone_number": result.phone_number,
        "message_id": result.message_id,
        "ok": result.ok,
        "code": result.code,
        "status": result.status.value if result.ok else None,
        "date": _plain(result.date),
        "stop_sms": result.stop_sms,
        "is_spam": result.is_spam,
        "message": result.message,
    }


def change_row(change: StatusChange) -> Row:
    return {
        "id": change.id,
        "index": change.index,
        "phone_number": change.phone_number,
        "message_id": change.message_id,
        "status": change.status.value,
        "previous": None if change.previous is None else change.previous.value,
        "settled": change.settled,
        "reason": None if change.reason is None else change.reason.value,
        "checked_at": datetime.fromtimestamp(change.checked_at, UTC).isoformat(),
        "date": _plain(change.date),
        "code": change.code,
        "message": change.message,
    }


def recipient_row(recipient: RecipientStatus) -> Row:
    return {
        "phone_number": recipient.phone_number,
        "status": recipient.status.value,
        "date": _plain(recipient.date),
        "stop_sms": recipient.stop_sms,
    }


def message_row(status: MessageStatus) -> Row:
    return {name: _plain(getattr(status, name)) for name in MESSAGE_FIELDS} | {
        "status": status.status.value
    }


# -- writing -------------------------------------------------------------------


class Writer(Protocol):
    def write(self, row: Row) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class _CsvWriter:
    def __init__(self, stream: IO[str], fields: tuple[str, ...], header: bool = True) -> None:
        self._stream = stream
        self._writer = csv.DictWriter(stream, fields, lineterminator="\n")
        if header:
            self._writer.writeheader()

    def write(self, row: Row) -> None:
        self._writer.writerow({k: _csv_cell(v) for k, v in row.items()})

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        pass


def _csv_cell(value: object) -> object:
    # JSON's spelling, so that a CSV and a JSONL export read the same.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


class _JsonlWriter:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, row: Row) -> None:
        self._stream.write(orjson.dumps(row).decode() + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        pass


class _TableWriter:
    """Keeps the `limit` rows of lowest index (a heap), then draws them in input order."""

    def __init__(self, stream: IO[str], fields: tuple[str, ...], limit: int) -> None:
        self._stream = stream
        self._fields = fields
        self._limit = limit
        self._heap: list[tuple[int, int, Row]] = []
        self.seen = 0

    def write(self, row: Row) -> None:
        order = row.get("index", self.seen)
        self.seen += 1
        entry = (-order, self.seen, row)  # max-heap on index: the largest is dropped first
        if len(self._heap) < self._limit:
            heapq.heappush(self._heap, entry)
        elif -self._heap[0][0] > order:
            heapq.heapreplace(self._heap, entry)

    def flush(self) -> None:
        pass  # drawn whole at the end

    def close(self) -> None:
        rows = [row for _, _, row in sorted(self._heap, key=lambda e: (-e[0], e[1]))]
        if len(rows) == 1:  # one record reads better as "field  value" lines
            table = Table("field", "value", show_header=False)
            for name in self._fields:
                table.add_row(name, _cell(rows[0][name]))
        else:
            table = Table()
            for name in self._fields:
                table.add_column(name, no_wrap=name not in _WRAPPING, overflow="fold")
            for row in rows:
                table.add_row(*(_cell(row[name]) for name in self._fields))
        console(file=self._stream, width=None if self._stream.isatty() else 200).print(table)
        if self.seen > self._limit:
            console(stderr=True).print(
                f"(the first {self._limit} of {self.seen} rows; "
                "use --output-format csv or jsonl for all)"
            )


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def open_writer(
    stream: IO[str],
    output_format: OutputFormat,
    fields: tuple[str, ...],
    table_fields: tuple[str, ...] | None = None,
    *,
    header: bool = True,
) -> _CsvWriter | _JsonlWriter | _TableWriter:
    if output_format == "csv":
        return _CsvWriter(stream, fields, header)
    if output_format == "jsonl":
        return _JsonlWriter(stream)
    return _TableWriter(stream, table_fields or fields, TABLE_LIMIT)


@contextmanager
def open_output(
    path: str,
    chosen: OutputFormat | None,
    fields: tuple[str, ...],
    table_fields: tuple[str, ...] | None = None,
    *,
    append: bool = False,
) -> Iterator[Writer]:
    """A writer to `path` ("-": stdout), its format chosen by `output_format`.

    Commands enter this once the client is open, and `check` once its input is
    known good, so that a run refused for bad input or a missing key leaves no
    file behind, not even a header. With `append` (a resumed watch), rows go
    after the file's, and a CSV header only into an empty file.
    """
    try:
        stream = click.open_file(path, "a" if append else "w", encoding="utf-8", lazy=False)
    except OSError as exc:
        message = f"cannot write {path!r}: {exc.strerror}"
        raise click.BadParameter(message, param_hint="'-o' / '--output'") from None
    with stream:
        header = not (append and stream.seekable() and stream.tell() > 0)
        writer = open_writer(
            stream, output_format(path, stream, chosen), fields, table_fields, header=header
        )
        yield writer
        writer.close()


def format_of(path: str) -> Literal["csv", "jsonl"]:
    """The format a file's name says, CSV unless JSONL: for rows written as they come, never
    a table (drawn at the end)."""
    return "jsonl" if SUFFIX_FORMATS.get(PurePath(path).suffix.lower()) == "jsonl" else "csv"


def output_format(path: str, stream: IO[str], chosen: OutputFormat | None) -> OutputFormat:
    """The format asked for, else the file name's (out.jsonl), else a table on a terminal, CSV."""
    if chosen is not None:
        return chosen
    by_name = SUFFIX_FORMATS.get(PurePath(path).suffix.lower())
    if by_name is not None:
        return by_name
    return "table" if stream.isatty() else "csv"


class InOrder(Generic[T]):
    """Passes items on in index order (0, 1, 2...), whatever order they are added in.

    The client yields results as their calls complete. An item that comes early
    waits here until every one before it has been passed on, so this holds only
    what finishes while an earlier call is still out: with a call slowed by
    retries, at most its deadline's worth of results, not the whole input.
    """

    def __init__(self, write: Callable[[T], None]) -> None:
        self._write = write
        self._next = 0
        self._early: dict[int, T] = {}

    @property
    def held(self) -> int:
        """Items waiting for an earlier one."""
        return len(self._early)

    def add(self, index: int, item: T) -> None:
        if index != self._next:
            self._early[index] = item
            return
        self._write(item)
        self._next += 1
        while self._next in self._early:
            self._write(self._early.pop(self._next))
            self._next += 1
