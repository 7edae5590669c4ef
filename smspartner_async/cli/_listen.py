"""`watch --listen HOST:PORT`: the callback receiver served beside the watch, on aiohttp.

aiohttp is already the command line's transport, so serving needs nothing more.
The callback URL is `http://HOST:PORT/dlr/<token>`, the token from
`SMSPARTNER_CALLBACK_TOKEN` or, without it, a new one shown once on stderr (the
URL to give as `urlDlr`). With --sandbox, the emulator pushes its reports to
that URL over the socket, as the platform would.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager

import attrs
import click
from aiohttp import web

from ..callbacks import CallbackReceiver, PushSchedule, ReceiverStats, new_token
from ..sandbox import CallbackPusher, Sandbox
from ..watch import Watcher, WatchRound

__all__ = ["ENV_TOKEN", "Listener", "Lookups", "listen_address", "listening"]

ENV_TOKEN = "SMSPARTNER_CALLBACK_TOKEN"  # noqa: S105 - the variable's name, not a secret
_PATH = "/dlr"
_FLUSH_DELAY = 0.5  # the receiver's default, in the watch's seconds


def listen_address(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    """HOST:PORT (or [IPv6]:PORT) -> (host, port); a click callback."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter("expected HOST:PORT, e.g. 127.0.0.1:8011 (port 0: any free one)")
    return host, int(port)


@attrs.define
class Lookups:
    """Pairs asked, over the pairs pending when the run started: what push saves (`on_round`)."""

    asked: int = 0
    added: int = 0

    def round(self, report: WatchRound) -> None:
        self.asked += report.asked

    def line(self) -> str:
        per = f" ({self.asked / self.added:.2f} per pair)" if self.added else ""
        return f"look-ups: {self.asked:,} for {self.added:,} pairs{per}"


@attrs.define
class Listener:
    """What `listening` started: the receiver, its URL, and the sandbox's pusher if any."""

    receiver: CallbackReceiver
    url: str
    pusher: CallbackPusher | None
    shown_url: str

    def track(self, pairs: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        """Pairs passed through; with a sandbox, pushed as if just sent with urlDlr."""
        if self.pusher is None:
            yield from pairs
            return
        batch: list[tuple[str, int]] = []
        for pair in pairs:
            batch.append(pair)
            if len(batch) == 1_000:
                self.pusher.track(batch)
                batch = []
            yield pair
        self.pusher.track(batch)

    def summary(self) -> str:
        stats: ReceiverStats = self.receiver.stats
        line = (
            f"callbacks: {stats.requests:,} received, {stats.delivered:,} hints taken by the watch"
        )
        if stats.refused or stats.malformed or stats.throttled:
            line += (
                f" ({stats.refused:,} bad token, {stats.malformed:,} malformed, "
                f"{stats.throttled:,} over the limits)"
            )
        return line


@asynccontextmanager
async def listening(
    address: tuple[str, int],
    watcher: Watcher,
    schedule: PushSchedule,
    *,
    region: str,
    sandbox: Sandbox | None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    speed: float = 1.0,
) -> AsyncIterator[Listener]:
    """Serve the receiver on `address`, feeding `watcher`, for the duration of the block.

    `speed`: how much faster than the wall the watch's clock runs; the receiver's batching
    delay (real seconds) is shortened to match, so that a hint is as fresh in watch time.
    """
    host, port = address
    given = os.environ.get(ENV_TOKEN, "").strip()
    token = given or new_token()
    receiver = CallbackReceiver(token, region=region, flush_delay=_FLUSH_DELAY / speed)
    app = web.Application()
    app.router.add_route("*", _PATH + "/{token}", receiver.aiohttp_handler)
    runner = web.AppRunner(app, access_log=None)  # access lines would show the token
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown_host = f"[{host}]" if ":" in host else host
        url = f"http://{shown_host}:{bound}{_PATH}/{token}"
        shown = url if not given else url.replace(token, f"${ENV_TOKEN}")
        pusher = None
        if sandbox is not None:
            pusher = CallbackPusher(sandbox, url, sleep=sleep)
        async with receiver.feeding(watcher.hint, on_hint=schedule.heard):
            if pusher is None:
                yield Listener(receiver, url, None, shown)
            else:
                async with pusher:
                    yield Listener(receiver, url, pusher, shown)
    finally:
        await runner.cleanup()
