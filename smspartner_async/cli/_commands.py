"""The click commands. Each one is a thin `asyncio.run` around one client method.

Exit codes: 0 when every pair got an answer ("not found" is an answer), 1 when
a call failed for good or the API refused the request, 2 for usage errors (bad
options, unreadable input, a pair that is not a phone number and a message id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import IO, Any

import attrs
import click

from .._client import DEFAULT_BASE_URL, ENV_API_KEY
from .._errors import InvalidInputError
from .._validate import DEFAULT_REGION, REGIONS
from .._version import __version__
from ..sandbox import Faults, Sandbox
from ._io import (
    MESSAGE_FIELDS,
    RECIPIENT_FIELDS,
    RESULT_FIELDS,
    RESULT_TABLE_FIELDS,
    InputFormat,
    OutputFormat,
    PairReader,
    message_row,
    open_writer,
    recipient_row,
    result_row,
)
from ._report import Summary, format_stats, mismatch, progress_bar, stderr_is_terminal
from ._session import Settings, UsageProblem, open_client, run, setup_logging

__all__ = ["cli"]

DEMO_FAULTS = ("429", "500", "502", "503", "html", "truncate")
MAX_MISMATCHES_SHOWN = 20


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--output-format",
        type=click.Choice(["csv", "jsonl", "table"]),
        help="Default: a table on a terminal, CSV otherwise.",
    )(command)
    return click.option(
        "-o",
        "--output",
        type=click.File("w", encoding="utf-8", lazy=False),
        default="-",
        help="Where the rows go (default: stdout).",
    )(command)


def _format(output: IO[str], chosen: OutputFormat | None) -> OutputFormat:
    if chosen is not None:
        return chosen
    return "table" if output.isatty() else "csv"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sandbox", is_flag=True, help="Use the built-in emulator (no key, no network).")
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"A file holding the API key (else ${ENV_API_KEY}).",
)
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True)
@click.option(
    "--format",
    "response_format",
    type=click.Choice(["json", "xml"]),
    default="json",
    show_default=True,
    help="The API's response format.",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds per network operation.",
)
@click.option(
    "--region",
    type=click.Choice(sorted(REGIONS)),
    default=DEFAULT_REGION,
    show_default=True,
    help="How to read national numbers.",
)
@click.option("-v", "--verbose", count=True, help="-v: INFO logs on stderr, -vv: DEBUG.")
@click.version_option(__version__, prog_name="smspartner-status")
@click.pass_context
def cli(ctx: click.Context, /, verbose: int, **settings: Any) -> None:
    """Delivery statuses from the SMS Partner API."""
    setup_logging(ctx, verbose)
    ctx.obj = Settings(**settings)


@cli.command()
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
@output_options
@click.pass_obj
def check(
    settings: Settings,
    input_file: IO[str],
    input_format: InputFormat,
    phone_column: str | None,
    id_column: str | None,
    output: IO[str],
    output_format: OutputFormat | None,
) -> None:
    """Statuses of (phone, message id) pairs read from a CSV or JSONL file, or stdin (-).

    Rows are written as answers come (the index column gives the input order);
    counts per status go to stderr at the end. Exit code 0 when every pair got
    an answer ("not found" included), 1 when some calls failed for good, 2 for
    bad input.
    """
    if input_file.isatty():
        click.echo("reading pairs from the terminal; end with Ctrl-D", err=True)
    reader = PairReader(
        input_file,
        input_format=input_format,
        phone_column=phone_column,
        id_column=id_column,
    )
    writer = open_writer(output, _format(output, output_format), RESULT_FIELDS, RESULT_TABLE_FIELDS)
    summary = Summary()

    async def main() -> None:
        with progress_bar(stderr_is_terminal()) as progress:
            async with open_client(settings) as client:
                stream = client.iter_multi_status(reader, progress=progress)
                try:
                    async with aclosing(stream) as results:
                        async for result in results:
                            summary.add(result)
                            writer.write(result_row(result))
                except InvalidInputError as exc:
                    # The library validates each pair as soon as it pulls it from the reader.
                    where = f"line {reader.line}: " if exc.index == reader.count - 1 else ""
                    raise UsageProblem(f"{where}{exc}") from None

    started = time.perf_counter()
    run(main())
    writer.close()
    for line in summary.lines():
        click.echo(line, err=True)
    click.echo(f"in {time.perf_counter() - started:.2f} s", err=True)
    if summary.failed_for_good:
        click.get_current_context().exit(1)


@cli.command()
@click.argument("message_id")
@output_options
@click.pass_obj
def message(
    settings: Settings, message_id: str, output: IO[str], output_format: OutputFormat | None
) -> None:
    """Every recipient of one send (bulk status)."""

    async def main() -> None:
        async with open_client(settings) as client:
            bulk = await client.bulk_status(message_id)
        writer = open_writer(output, _format(output, output_format), RECIPIENT_FIELDS)
        for recipient in bulk.recipients:
            writer.write(recipient_row(recipient))
        writer.close()

    run(main())


@cli.command()
@click.argument("tag")
@output_options
@click.pass_obj
def tag(settings: Settings, tag: str, output: IO[str], output_format: OutputFormat | None) -> None:
    """Every recipient under a tag, over all pages."""
    writer = open_writer(output, _format(output, output_format), RECIPIENT_FIELDS)

    async def main() -> None:
        async with (
            open_client(settings) as client,
            aclosing(client.iter_status_by_tag(tag)) as recipients,
        ):
            async for recipient in recipients:
                writer.write(recipient_row(recipient))

    run(main())
    writer.close()


@cli.command()
@click.argument("phone")
@click.argument("message_id")
@output_options
@click.pass_obj
def one(
    settings: Settings,
    phone: str,
    message_id: str,
    output: IO[str],
    output_format: OutputFormat | None,
) -> None:
    """The status of one message to one number."""

    async def main() -> None:
        async with open_client(settings) as client:
            status = await client.message_status(phone, message_id)
        writer = open_writer(output, _format(output, output_format), MESSAGE_FIELDS)
        writer.write(message_row(status))
        writer.close()

    run(main())


@cli.command()
@click.option(
    "--pairs", "count", type=click.IntRange(0, 1_000_000), default=10_000, show_default=True
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of requests answered with 429, 5xx, HTML or a truncated body.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_obj
def demo(settings: Settings, count: int, fault_rate: float, seed: int) -> None:
    """Check generated pairs against the emulator, then verify every answer.

    Always runs on the sandbox, with its clock frozen so that no Waiting
    message settles mid-run and every answer can be checked exactly. Numbers
    are French, so national ones are read as FR whatever --region says.
    """
    faults = Faults(rate=fault_rate, kinds=DEMO_FAULTS, retry_after=0, seed=seed)
    if fault_rate:
        faults.script(DEMO_FAULTS)  # each kind once up front, whatever the draws: visible retries
    sandbox = Sandbox(seed=seed, api_key=None, faults=faults, clock=lambda: 0.0)
    settings = attrs.evolve(settings, sandbox=True, region="FR")
    pairs = list(sandbox.data.sample_pairs(count, national_share=0.1))
    summary = Summary()
    problems: list[str] = []

    async def main() -> str:
        with progress_bar(stderr_is_terminal()) as progress:
            async with open_client(settings, sandbox) as client:
                stream = client.iter_multi_status(pairs, progress=progress)
                async with aclosing(stream) as results:
                    async for result in results:
                        summary.add(result)
                        problem = mismatch(result, pairs[result.index], sandbox.data, "FR")
                        if problem is not None:
                            problems.append(problem)
                return format_stats(client.stats, sandbox.stats)

    started = time.perf_counter()
    stats = run(main())
    elapsed = time.perf_counter() - started
    for line in summary.lines():
        click.echo(line)
    rate = f" ({count / elapsed:,.0f} pairs/s)" if elapsed > 0 else ""
    click.echo(f"elapsed {elapsed:.2f} s{rate}")
    click.echo(f"client: {stats}")
    if problems:
        click.echo(f"{len(problems)} results differ from the sandbox's data:")
        for problem in problems[:MAX_MISMATCHES_SHOWN]:
            click.echo(f"  {problem}")
    else:
        checked = summary.total - summary.failed_for_good
        click.echo(f"all {checked} results match the sandbox's data")
    if problems or summary.failed_for_good:
        click.get_current_context().exit(1)
