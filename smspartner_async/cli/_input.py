"""Where a command's pairs come from: the input file read as pairs, every row checked first.

By default the input is read twice: once to check every row, so that one run
reports all the bad ones and nothing is sent or written when there are any;
then to send. With --skip-bad-rows it is read once, bad rows reported as they
come. Either way the input is streamed, never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import attrs
import click

from ._read import InputFormat, InputProblem, OnBadRow, PairReader, rereadable
from ._report import BadRows
from ._session import UsageProblem, usage_errors

__all__ = ["InputSpec", "checked_pairs"]


@attrs.frozen
class InputSpec:
    """How to read the input: the input options and the region of national numbers."""

    region: str
    input_format: InputFormat = "auto"
    phone_column: str | None = None
    id_column: str | None = None
    delimiter: str | None = None

    def reader(
        self, stream: IO[str], on_bad_row: OnBadRow, *, track_lines: bool = False
    ) -> PairReader:
        return PairReader(
            stream,
            on_bad_row=on_bad_row,
            track_lines=track_lines,
            region=self.region,
            input_format=self.input_format,
            phone_column=self.phone_column,
            id_column=self.id_column,
            delimiter=self.delimiter,
        )


@contextmanager
def checked_pairs(
    input_file: IO[str],
    spec: InputSpec,
    bad_rows: BadRows,
    *,
    skip_bad_rows: bool,
    track_lines: bool = False,
) -> Iterator[tuple[PairReader, int | None]]:
    """The pairs to send and, when every row was checked first, how many there are.

    Strict (the default): every row is read and checked; any bad one and the
    command stops with all of them reported (exit code 2), before anything is
    sent or written. With `skip_bad_rows`, bad rows go to `bad_rows` as they come.
    With `track_lines`, the reader keeps each pair's input line until it is popped.
    """
    if input_file.isatty():
        click.echo("reading pairs from the terminal; end with Ctrl-D", err=True)
    if skip_bad_rows:
        yield spec.reader(input_file, bad_rows, track_lines=track_lines), None
        return
    with usage_errors(), rereadable(input_file) as source:
        total = sum(1 for _ in spec.reader(source, bad_rows))
        if bad_rows.count:
            raise UsageProblem(_refusal(bad_rows))
        source.seek(0)
        yield spec.reader(source, _changed, track_lines=track_lines), total


def _refusal(bad_rows: BadRows) -> str:
    count = f"{bad_rows.count} bad row{'s' if bad_rows.count > 1 else ''}"
    where = f" (listed in {bad_rows.file.name})" if bad_rows.file is not None else ""
    return (
        f"{count}{where}; nothing was sent. "
        "Fix them, or pass --skip-bad-rows to check the other rows."
    )


def _changed(line: int, reason: str) -> None:
    raise InputProblem(f"line {line}: {reason} (the input changed while it was being read)")
