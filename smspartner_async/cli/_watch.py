"""`watch`: follow pairs from a file until every one has settled, resumable from a state file.

The watch is the library's (`Watcher`, on a `SQLiteStore` with --state): this
module reads the pairs, writes each change as a row and shows the counts. A
change is written and flushed before the next one is asked for, which is when
the watch marks it reported: a process killed in between writes it again on
the next run (same `id`), never loses it. Ctrl-C and SIGTERM stop it cleanly
(nothing repeated), and the same command resumes from the state file.

With --sandbox, the emulator and the watch share one `FastClock`, so the
statuses settle and the 48-hour schedule runs on compressed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import aclosing
from pathlib import Path
from typing import IO, Literal

import attrs
import click

from ..callbacks import PushSchedule
from ..sandbox import Sandbox
from ..testing import FastClock
from ..watch import MemoryStore, Schedule, SQLiteStore, StoreCounts, Watcher, WatchRound, WatchStore
from ._input import InputSpec, checked_pairs
from ._io import CHANGE_FIELDS, change_row, format_of, open_output
from ._listen import Listener, Lookups, listen_address, listening
from ._options import file_format_option, input_options, with_settings
from ._read import InputFormat, PairReader
from ._report import BadRows
from ._session import BAD_INPUT, Settings, exit_codes, open_client, run
from ._watch_view import WatchView

__all__ = ["watch"]

DEFAULT_SPEED = 3600.0
HOUR = 3600.0


@attrs.frozen
class _Job:
    settings: Settings
    state: Path | None
    resuming: bool
    window: float
    speed: float | None
    live: bool
    output: str
    output_format: Literal["csv", "jsonl"]
    listen: tuple[str, int] | None


WATCH_EXIT_CODES = exit_codes(
    "every pair settled (a final status, the API's lasting\nanswer, or the end of its window)",
    "stopped (Ctrl-C, SIGTERM) before every pair settled: the\n"
    "same command resumes with --state; or the API refused the\n"
    "request (bad key, IP not allowed)",
    BAD_INPUT + ", bad\nrows (then nothing is asked, unless --skip-bad-rows)",
)


_SQLITE_HEADER = b"SQLite format 3\x00"


def _state_file(_ctx: click.Context, _param: click.Parameter, path: Path | None) -> Path | None:
    """`--state`: a file to create in an existing directory, or a SQLite file to resume from.

    Checked before the store opens it: SQLite would take a pairs file given by mistake (the
    arguments swapped) and fail on its first query, after writing its own files beside it.
    """
    if path is None:
        return None
    if not path.parent.is_dir():
        raise click.BadParameter(f"no directory {str(path.parent)!r} to keep it in")
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_HEADER))
        if header != _SQLITE_HEADER:
            raise click.BadParameter(
                f"{str(path)!r} is not a watch state file (a SQLite file); is it the input?"
            )
    return path


@click.command(epilog=WATCH_EXIT_CODES)
@input_options
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_state_file,
    help="A SQLite file keeping the watch's state: the same command again resumes from it. "
    "Without it, the state is in memory and lost when the command stops.",
)
@click.option(
    "--window",
    type=click.FloatRange(min=0, min_open=True),
    default=48.0,
    show_default=True,
    help="Hours each pair is watched, from when it was first added; then it settles as expired.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    help="With --sandbox: how many times faster than real time the watch and the "
    f"emulator's statuses run (default {DEFAULT_SPEED:g}: 48 hours in 48 s).",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Counts redrawn on stderr as the watch goes (default: when stderr is a terminal "
    "and the rows do not go to it).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Where the changes go, one row each (default: stdout). Appended to when resuming.",
)
@file_format_option
@click.option(
    "--listen",
    metavar="HOST:PORT",
    callback=listen_address,
    help="Also receive delivery-report callbacks (urlDlr) at http://HOST:PORT/dlr/<token> "
    "(token: $SMSPARTNER_CALLBACK_TOKEN, else a new one shown); each makes its pair due now. "
    "With --sandbox, the emulator pushes its reports there.",
)
@with_settings()
def watch(
    settings: Settings,
    input_file: IO[str],
    input_format: InputFormat,
    phone_column: str | None,
    id_column: str | None,
    delimiter: str | None,
    skip_bad_rows: bool,
    rejects: IO[str] | None,
    state: Path | None,
    window: float,
    speed: float | None,
    live: bool | None,
    output: str,
    output_format: Literal["csv", "jsonl"] | None,
    listen: tuple[str, int] | None,
) -> None:
    """Follow (phone, message id) pairs until each has settled; changes as rows.

    Each pair is asked about on a growing schedule (seconds apart at first,
    hourly later) until its status is final, the API keeps saying it does not
    know it, or its window runs out. Every change is a row: the first status
    known for a pair, then each new one; a pair's last row has settled=true
    and a reason (final, api_error, expired). Rows carry an id: a run killed
    (not stopped with Ctrl-C) may write its last row again on the next run,
    with the same id.

    With --state, Ctrl-C stops cleanly and the same command resumes where it
    stopped: pairs already settled are not asked about again, and rows are
    appended to the output.
    """
    if speed is not None and not settings.sandbox:
        raise click.UsageError("--speed needs --sandbox (it compresses the emulator's clock)")
    resuming = state is not None and state.exists()
    rows_to_terminal = output == "-" and sys.stdout.isatty()
    job = _Job(
        settings,
        state,
        resuming,
        window * HOUR,
        (speed or DEFAULT_SPEED) if settings.sandbox else None,
        live if live is not None else sys.stderr.isatty() and not rows_to_terminal,
        output,
        # Never the table `check` draws on a terminal: it is drawn at the end, and a change is
        # marked reported once its row is written.
        output_format or format_of(output),
        listen,
    )
    spec = InputSpec(settings.region, input_format, phone_column, id_column, delimiter)
    bad_rows = BadRows(rejects)
    view = WatchView(speed=job.speed, output=output, state=None if state is None else str(state))
    lookups = Lookups()
    listener: list[Listener] = []
    stopped = False
    try:
        with checked_pairs(input_file, spec, bad_rows, skip_bad_rows=skip_bad_rows) as (pairs, _):
            run(_watch(job, pairs, view, lookups, listener))
    except (KeyboardInterrupt, asyncio.CancelledError):
        stopped = True
    for line in view.summary():
        click.echo(line, err=True)
    click.echo(lookups.line(), err=True)
    if listener:
        click.echo(listener[0].summary(), err=True)
    if skip_bad_rows and bad_rows.count:
        click.echo(f"{bad_rows.count:,} bad rows left out", err=True)
    if stopped:
        where = f"resumes from {state}" if state is not None else "starts over (no --state)"
        click.echo(f"stopped; the same command {where}", err=True)
        click.get_current_context().exit(1)


async def _watch(
    job: _Job, pairs: PairReader, view: WatchView, lookups: Lookups, listener: list[Listener]
) -> None:
    """Runs the watch to its end; stopped by Ctrl-C (asyncio.run cancels us) or SIGTERM."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    if me is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, me.cancel)
    store: WatchStore = SQLiteStore(job.state) if job.state is not None else MemoryStore()
    fast = await _fast_clock(job, store)
    clock: Callable[[], float] = time.time if fast is None else fast
    sandbox = None if fast is None else Sandbox(api_key=None, clock=fast)
    # With callbacks, the schedule thins out while they arrive (and is the plain one if not).
    schedule = (
        Schedule(window=job.window)
        if job.listen is None
        else PushSchedule(window=job.window, clock=clock)
    )

    def on_round(report: WatchRound) -> None:
        view.round(report)
        lookups.round(report)

    async with open_client(job.settings, sandbox) as client:
        watcher = Watcher(
            client,
            store=store,
            schedule=schedule,
            clock=clock,
            sleep=None if fast is None else fast.sleep,
            on_round=on_round,
            retention=None,  # a pair in the file and settled is never watched again
        )
        started = clock()  # no change of this run was found before
        async with watcher, contextlib.AsyncExitStack() as stack:
            source: Iterable[tuple[str, int]] = pairs
            if job.listen is not None and isinstance(schedule, PushSchedule):
                heard = await stack.enter_async_context(
                    listening(
                        job.listen,
                        watcher,
                        schedule,
                        region=job.settings.region,
                        sandbox=sandbox,
                        sleep=asyncio.sleep if fast is None else fast.sleep,
                        speed=1.0 if fast is None else fast.speed,
                    )
                )
                listener.append(heard)
                click.echo(f"listening for delivery reports on {heard.shown_url}", err=True)
                source = heard.track(pairs)
            added = await watcher.add(source)
            # The new pairs were sent (added) at `started` or just after: nothing of theirs
            # is asked before this.
            first_check = schedule.first_check(started)
            counts = await _counts(store, added)
            # Per pair still to settle: a resumed run adds no pair, yet asks the pending ones.
            lookups.added = counts.total_pending
            view.start(counts, clock, started, new=added, first_check=first_check)
            # The next check, for the live view only: it costs a store query twice a second.
            follow = asyncio.create_task(view.follow(store)) if job.live else None
            try:
                with (
                    open_output(
                        job.output, job.output_format, CHANGE_FIELDS, append=job.resuming
                    ) as out,
                    view.live(job.live),
                ):
                    async with aclosing(watcher.changes(until_idle=True)) as changes:
                        async for change in changes:
                            out.write(change_row(change))
                            out.flush()  # before the next is asked for: then it is reported
                            view.change(change)
            finally:
                if follow is not None:
                    follow.cancel()
                    # Whatever it met, it must not hide what ended the watch.
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await follow


async def _fast_clock(job: _Job, store: WatchStore) -> FastClock | None:
    """With --sandbox, the clock the emulator and the watch share; else None (the wall's).

    A fast clock resumed from a state file starts where the last run had got to
    (its earliest pending check), not at the wall's time, which the compressed
    schedule is far ahead of.
    """
    if job.speed is None:
        return None
    start: float | None = None
    if job.resuming:
        await store.open()
        try:
            due = await store.next_due()
        finally:
            await store.close()
        if due is not None:
            start = max(due, time.time())
    return FastClock(job.speed, start=start)


async def _counts(store: WatchStore, added: int) -> StoreCounts:
    if isinstance(store, SQLiteStore):
        return await store.counts()
    return StoreCounts({None: added}, {})
