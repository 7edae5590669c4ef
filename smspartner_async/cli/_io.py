"""Reading pairs from CSV or JSONL, and writing rows as CSV, JSONL or a table.

Readers are generators so that `iter_multi_status` pulls the input only as fast
as it sends it: a ten-million-line file costs no more memory than ten lines.
Writers write each row as it arrives, except the table, which must know every
row before drawing and therefore keeps only the first `TABLE_LIMIT` by index.
"""

from __future__ import annotations

import csv
import heapq
import itertools
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any, Literal, Protocol

import orjson
from rich.console import Console
from rich.table import Table

from .._models import MessageStatus, MultiStatusResult, RecipientStatus

__all__ = [
    "TABLE_LIMIT",
    "InputProblem",
    "PairReader",
    "Writer",
    "message_row",
    "open_writer",
    "recipient_row",
    "result_row",
]

Row = dict[str, Any]
OutputFormat = Literal["csv", "jsonl", "table"]
InputFormat = Literal["auto", "csv", "jsonl"]
TABLE_LIMIT = 1000
PHONE_ALIASES = ("phone_number", "phoneNumber")
ID_ALIASES = ("message_id", "messageId")

RESULT_FIELDS = (
    "index",
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


class InputProblem(Exception):
    """The input cannot be read as pairs; the CLI turns it into exit code 2."""


# -- reading -------------------------------------------------------------------


class PairReader:
    """Yields (phone, message id) from CSV or JSONL text; remembers where it is.

    `line` is the line of the pair yielded last. The library validates a pair
    right after pulling it, so when it rejects pair N this still points at it.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        input_format: InputFormat = "auto",
        phone_column: str | None = None,
        id_column: str | None = None,
    ) -> None:
        self._stream = stream
        self._format = input_format
        self._phone = (phone_column,) if phone_column else PHONE_ALIASES
        self._id = (id_column,) if id_column else ID_ALIASES
        self.line = 0
        self.count = 0

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        first = self._stream.readline()
        if not first:
            return
        lines = itertools.chain([first], self._stream)
        fmt = self._format
        if fmt == "auto":
            fmt = "jsonl" if first.lstrip().startswith(("{", "[")) else "csv"
        rows = self._jsonl(lines) if fmt == "jsonl" else self._csv(lines)
        for pair in rows:
            self.count += 1
            yield pair

    def _csv(self, lines: Iterator[str]) -> Iterator[tuple[Any, Any]]:
        reader = csv.reader(lines)
        header = next(reader)
        phone_at = _column(header, self._phone)
        id_at = _column(header, self._id)
        for row in reader:
            self.line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(phone_at, id_at):
                raise InputProblem(f"line {self.line}: too few columns: {row!r}")
            yield row[phone_at], row[id_at]

    def _jsonl(self, lines: Iterator[str]) -> Iterator[tuple[Any, Any]]:
        for number, text in enumerate(lines, 1):
            self.line = number
            if not text.strip():
                continue
            try:
                item = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise InputProblem(f"line {self.line}: not JSON ({exc})") from None
            if isinstance(item, list) and len(item) == 2:
                yield item[0], item[1]
            elif isinstance(item, dict):
                yield _field(item, self._phone, self.line), _field(item, self._id, self.line)
            else:
                raise InputProblem(
                    f"line {self.line}: expected an object or a [phone, id] pair: {text.strip()}"
                )


def _column(header: list[str], names: tuple[str, ...]) -> int:
    stripped = [name.strip() for name in header]
    for name in names:
        if name in stripped:
            return stripped.index(name)
    raise InputProblem(f"no column {' or '.join(map(repr, names))} in the CSV header {header!r}")


def _field(item: dict[str, Any], names: tuple[str, ...], line: int) -> Any:
    for name in names:
        if name in item:
            return item[name]
    raise InputProblem(f"line {line}: no key {' or '.join(map(repr, names))} in {item!r}")


# -- rows ----------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def result_row(result: MultiStatusResult) -> Row:
    return {
        "index": result.index,
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
    def close(self) -> None: ...


class _CsvWriter:
    def __init__(self, stream: IO[str], fields: tuple[str, ...]) -> None:
        self._writer = csv.DictWriter(stream, fields, lineterminator="\n")
        self._writer.writeheader()

    def write(self, row: Row) -> None:
        self._writer.writerow({k: _csv_cell(v) for k, v in row.items()})

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
        Console(file=self._stream, width=None if self._stream.isatty() else 200).print(table)
        if self.seen > self._limit:
            Console(stderr=True).print(
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
) -> _CsvWriter | _JsonlWriter | _TableWriter:
    if output_format == "csv":
        return _CsvWriter(stream, fields)
    if output_format == "jsonl":
        return _JsonlWriter(stream)
    return _TableWriter(stream, table_fields or fields, TABLE_LIMIT)
