"""The click commands. Each one is a thin `asyncio.run` around one client method.

`check`, which has more to do with its input, has a module of its own. Output
files are opened once the client is, so that a missing key leaves none behind.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any

import attrs
import click

from .. import BulkStatus, MessageStatus, __version__
from ..sandbox import Faults, Sandbox
from ._check import check
from ._io import (
    MESSAGE_FIELDS,
    RECIPIENT_FIELDS,
    OutputFormat,
    format_of,
    message_row,
    open_output,
    recipient_row,
)
from ._options import ONE_CALL, file_format_option, output_options, shared_options, with_settings
from ._report import Summary, format_stats, mismatch, no_color, progress_bar, stderr_is_terminal
from ._session import EXIT_CODES, ONE_CALL_EXIT_CODES, Settings, exit_codes, open_client, run
from ._watch import watch

__all__ = ["cli"]

DEMO_FAULTS = ("429", "500", "502", "503", "html", "truncate")
MAX_MISMATCHES_SHOWN = 20


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@shared_options
@click.version_option(__version__, prog_name="smspartner-status")
@click.pass_context
def cli(ctx: click.Context, /, **shared: Any) -> None:
    """Delivery statuses from the SMS Partner API.

    The options below also work after the command's name, where they win:
    `smspartner-status check --sandbox pairs.csv`. Each command's --help lists
    those it uses; one it does not use is refused. Set NO_COLOR for output
    without colours or styles.

    \b
    New here? No key needed:
      smspartner-status demo
      smspartner-status sample -o pairs.csv
      smspartner-status check --sandbox pairs.csv
    """
    # The shared options' values stay in ctx.params, where each command reads them.
    if no_color():
        ctx.color = False


cli.add_command(check)
cli.add_command(watch)


@cli.command(epilog=ONE_CALL_EXIT_CODES)
@click.argument("message_id")
@output_options
@with_settings(ONE_CALL)
def message(
    settings: Settings, message_id: str, output: str, output_format: OutputFormat | None
) -> None:
    """Every recipient of one send (bulk status)."""

    async def main() -> BulkStatus:
        async with open_client(settings) as client:
            return await client.bulk_status(message_id)

    bulk = run(main())
    with open_output(output, output_format, RECIPIENT_FIELDS) as out:
        for recipient in bulk.recipients:
            out.write(recipient_row(recipient))


@cli.command(epilog=ONE_CALL_EXIT_CODES)
@click.argument("tag")
@output_options
@with_settings(ONE_CALL)
def tag(settings: Settings, tag: str, output: str, output_format: OutputFormat | None) -> None:
    """Every recipient under a tag, over all pages."""

    async def main() -> None:
        async with (
            open_client(settings) as client,
            aclosing(client.iter_status_by_tag(tag)) as recipients,
        ):
            with open_output(output, output_format, RECIPIENT_FIELDS) as out:
                async for recipient in recipients:
                    out.write(recipient_row(recipient))

    run(main())


@cli.command(epilog=ONE_CALL_EXIT_CODES)
@click.argument("phone")
@click.argument("message_id")
@output_options
@with_settings(ONE_CALL)
def one(
    settings: Settings,
    phone: str,
    message_id: str,
    output: str,
    output_format: OutputFormat | None,
) -> None:
    """The status of one message to one number."""

    async def main() -> MessageStatus:
        async with open_client(settings) as client:
            return await client.message_status(phone, message_id)

    status = run(main())
    with open_output(output, output_format, MESSAGE_FIELDS) as out:
        out.write(message_row(status))


DEMO_EXIT_CODES = exit_codes(
    "every answer matches the sandbox's data",
    "some answers differ, or calls failed after all retries",
    "a bad option",
)


@cli.command(epilog=DEMO_EXIT_CODES)
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
@with_settings(("response_format", "concurrency", "timeout", "verbose"), implied=("sandbox",))
def demo(settings: Settings, count: int, fault_rate: float, seed: int) -> None:
    """Check generated pairs against the emulator, then verify every answer.

    Always runs on the sandbox, with its clock frozen so that no Waiting
    message settles mid-run and every answer can be checked exactly. Numbers
    are French (national ones read as FR).
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


SAMPLE_FIELDS = ("phone_number", "message_id")


@cli.command(epilog=exit_codes("the file was written", None, "a bad option, an unwritable file"))
@click.option("--pairs", "count", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option(
    "--national-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.1,
    show_default=True,
    help="Share of numbers written in national form (0612345678), read with --region FR.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Where the pairs go (default: stdout).",
)
@file_format_option
@with_settings((), implied=("sandbox",))
def sample(
    _: Settings, count: int, national_share: float, output: str, output_format: str | None
) -> None:
    """Write (phone, message id) pairs the sandbox knows, to try check and watch.

    About 3% of them are unknown to the sandbox, as in real life (the API
    answers "not found"). Then, with no key:

    \b
      smspartner-status sample -o pairs.csv
      smspartner-status check --sandbox pairs.csv
      smspartner-status watch --sandbox pairs.csv
    """
    data = Sandbox(api_key=None).data
    fmt: OutputFormat = "jsonl" if (output_format or format_of(output)) == "jsonl" else "csv"
    with open_output(output, fmt, SAMPLE_FIELDS) as out:
        for phone, message_id in data.sample_pairs(count, national_share=national_share):
            out.write({"phone_number": phone, "message_id": message_id})
