"""`check`: many pairs from a file, every row checked, results streamed to a file.

By default the input is read twice: once to check every row, so that one run
reports all the bad ones and nothing is sent or written when there are any;
then to send. With --skip-bad-rows it is read once, bad rows reported as they
come. Either way the input is streamed, never held in memory.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, aclosing, contextmanager
from typing import IO

import click

from .. import (
    APIConnectionError,
    MultiStatusResult,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from ._io import RESULT_FIELDS, RESULT_TABLE_FIELDS, InOrder, OutputFormat, open_output, result_row
from ._options import output_options, with_settings
from ._read import InputFormat, InputProblem, OnBadRow, PairReader, rereadable
from ._report import BadRows, Summary, progress_bar, stderr_is_terminal
from ._session import EXIT_CODES, Settings, UsageProblem, open_client, run, usage_errors

__all__ = ["check"]


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
    if len(value) != 1 or value in '"\r\n':
        raise click.BadParameter("must be one character (not a quote or a newline), or 'tab'")
    return value


@click.command(epilog=EXIT_CODES)
@click.argument(
    "input_file",
    metavar="[INPUT]",
    type=click.File("r", encoding="utf-8-sig"),
    default="-",
    required=False,
)
@click.option("--input-format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto")
@click.option("--phone-column", help="Default: phone_number or phoneNumber.")
@click.option("--id-column", help="Default: message_id or messageId.")
@click.option(
    "--delimiter",
    callback=_delimiter,
    help="Between CSV cells: one character, or 'tab'. Default: , ; tab or | from the header.",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Check the good rows; report, count and leave out the bad ones.",
)
@click.option(
    "--rejects",
    type=click.File("w", encoding="utf-8", lazy=False),
    help="Report bad rows to this CSV file (line, reason) rather than stderr.",
)
@click.option("--ordered", is_flag=True, help="Write rows in input order, not as answers come.")
@output_options
@with_settings
def check(
    settings: Settings,
    input_file: IO[str],
    input_format: InputFormat,
    phone_column: str | None,
    id_column: str | None,
    delimiter: str | None,
    skip_bad_rows: bool,
    rejects: IO[str] | None,
    ordered: bool,
    output: str,
    output_format: OutputFormat | None,
) -> None:
    """Statuses of (phone, message id) pairs read from a CSV or JSONL file, or stdin (-).

    Rows are written as answers come, or in input order with --ordered (the
    index column is the pair's position among those checked); counts per
    status go to stderr at the end.

    A bad row (not a phone number and a message id) is reported with its line
    number. By default every bad row is reported, nothing is sent, no output
    is written, and the exit code is 2; with --skip-bad-rows the others are
    checked and the bad ones counted in the summary.
    """
    if input_file.isatty():
        click.echo("reading pairs from the terminal; end with Ctrl-D", err=True)
    bad_rows = BadRows(rejects)
    summary = Summary(skipped=0 if skip_bad_rows else None)

    def reader(stream: IO[str], on_bad_row: OnBadRow) -> PairReader:
        return PairReader(
            stream,
            on_bad_row=on_bad_row,
            region=settings.region,
            input_format=input_format,
            phone_column=phone_column,
            id_column=id_column,
            delimiter=delimiter,
        )

    writing = functools.partial(_writing, output, output_format, ordered)
    started = time.perf_counter()
    if skip_bad_rows:
        _send(settings, reader(input_file, bad_rows), summary, writing)
        summary.skipped = bad_rows.count
    else:
        with usage_errors(), rereadable(input_file) as source:
            total = sum(1 for _ in reader(source, bad_rows))
            if bad_rows.count:
                raise UsageProblem(_refusal(bad_rows))
            source.seek(0)
            _send(settings, reader(source, _changed), summary, writing, total)
    for line in summary.lines():
        click.echo(line, err=True)
    click.echo(f"in {time.perf_counter() - started:.2f} s", err=True)
    if summary.failed_for_good:
        click.get_current_context().exit(1)


Write = Callable[[MultiStatusResult], None]
_OUTAGE = (APIConnectionError, RateLimitError, ResponseFormatError, ServerError)


def _send(
    settings: Settings,
    pairs: PairReader,
    summary: Summary,
    writing: Callable[[], AbstractContextManager[Write]],
    total: int | None = None,
) -> None:
    async def main() -> None:
        with progress_bar(stderr_is_terminal(), total) as progress:
            async with (
                open_client(settings) as client,
                aclosing(client.iter_multi_status(pairs, progress=progress)) as results,
            ):
                with writing() as write, contextlib.suppress(*_OUTAGE):
                    # An outage is raised once every pair has its failed row: the summary
                    # counts them, and the exit code says so.
                    async for result in results:
                        summary.add(result)
                        write(result)

    run(main())


@contextmanager
def _writing(output: str, output_format: OutputFormat | None, ordered: bool) -> Iterator[Write]:
    """`write(result)` to the output, as results come or in input order."""
    with open_output(output, output_format, RESULT_FIELDS, RESULT_TABLE_FIELDS) as out:

        def write(result: MultiStatusResult) -> None:
            out.write(result_row(result))

        if not ordered:
            yield write
            return
        in_order = InOrder(write)
        yield lambda result: in_order.add(result.index, result)


def _refusal(bad_rows: BadRows) -> str:
    count = f"{bad_rows.count} bad row{'s' if bad_rows.count > 1 else ''}"
    where = f" (listed in {bad_rows.file.name})" if bad_rows.file is not None else ""
    return (
        f"{count}{where}; nothing was sent. "
        "Fix them, or pass --skip-bad-rows to check the other rows."
    )


def _changed(line: int, reason: str) -> None:
    raise InputProblem(f"line {line}: {reason} (the input changed while it was being read)")
