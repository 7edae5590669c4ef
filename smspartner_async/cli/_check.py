"""`check`: many pairs from a file, every row checked, results streamed to a file.

How the input is read (and its bad rows refused or skipped) is `_input`'s.
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
from ._input import InputSpec, checked_pairs
from ._io import RESULT_FIELDS, RESULT_TABLE_FIELDS, InOrder, OutputFormat, open_output, result_row
from ._options import input_options, output_options, with_settings
from ._read import InputFormat, PairReader
from ._report import BadRows, Summary, progress_bar, stderr_is_terminal
from ._session import BAD_INPUT, Settings, exit_codes, open_client, run

__all__ = ["check"]


CHECK_EXIT_CODES = exit_codes(
    'every pair got an answer ("not found" is an answer)',
    "some calls failed after all retries, or the API refused the\n"
    "request (bad key, IP not allowed)",
    BAD_INPUT + ", bad\nrows (then nothing is sent, unless --skip-bad-rows)",
)


@click.command(epilog=CHECK_EXIT_CODES)
@input_options
@click.option("--ordered", is_flag=True, help="Write rows in input order, not as answers come.")
@output_options
@with_settings()
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

    Rows are written as answers come, or in input order with --ordered; counts
    per status go to stderr at the end. Column index is the pair's position
    among the pairs checked, line its line in the input (as the rejects file
    numbers bad rows: join on it).

    A bad row (not a phone number and a message id) is reported with its line
    number. By default every bad row is reported, nothing is sent, no output
    is written, and the exit code is 2; with --skip-bad-rows the others are
    checked and the bad ones counted in the summary.
    """
    bad_rows = BadRows(rejects)
    summary = Summary(skipped=0 if skip_bad_rows else None)
    spec = InputSpec(settings.region, input_format, phone_column, id_column, delimiter)
    started = time.perf_counter()
    with checked_pairs(
        input_file, spec, bad_rows, skip_bad_rows=skip_bad_rows, track_lines=True
    ) as (pairs, total):
        writing = functools.partial(_writing, output, output_format, ordered, pairs.line_of)
        _send(settings, pairs, summary, writing, total)
    if skip_bad_rows:
        summary.skipped = bad_rows.count
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
def _writing(
    output: str,
    output_format: OutputFormat | None,
    ordered: bool,
    line_of: dict[int, int] | None = None,
) -> Iterator[Write]:
    """`write(result)` to the output, as results come or in input order."""
    with open_output(output, output_format, RESULT_FIELDS, RESULT_TABLE_FIELDS) as out:

        def write(result: MultiStatusResult) -> None:
            line = None if line_of is None else line_of.pop(result.index, None)
            out.write(result_row(result, line))

        if not ordered:
            yield write
            return
        in_order = InOrder(write)
        yield lambda result: in_order.add(result.index, result)
