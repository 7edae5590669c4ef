"""Event-loop lag while a large bulk-status answer is decoded, and inline decode time by size.

Lag: a ticker task sleeps 1 ms at a time and records the longest gap between two wake-ups,
less the 1 ms it asked for, while `client.bulk_status(N)` fetches and decodes an N-recipient
answer from the canned server (JSON and XML, both transports). "as is" is the library as it
ships: answers over `_wire.body.OFFLOAD_BYTES` are decoded in a worker thread
(`asyncio.to_thread`); "inline" raises that threshold past the body's size, so the same call
decodes on the event loop.

Decode time: how long decoding (`read_record`) and structuring (`BulkStatus`), the work the
worker thread takes off the loop, would hold the loop inline, for bodies of 64 KiB to 8 MiB;
with the cost of the hop to a worker thread, this is what the threshold weighs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from . import library
from ._common import make_pairs
from ._profile import Profile
from ._report import Section
from .server import NAME, ServerProcess, render_bulk_status, render_multi_status

TICK = 0.001
FORMATS = ("json", "xml")
TRANSPORTS = ("httpx", "aiohttp")
SIZES_KIB = (64, 256, 1024, 4096, 8192)


class Ticker:
    """A task waking every `TICK` seconds; `worst` is the longest lateness seen (seconds).

    Leaving the block closes the gap still open: a call that blocks the loop and then returns
    at once would otherwise end before the ticker wakes to see it.
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last - TICK)
        self._last = now

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._tick()

    async def __aenter__(self) -> Ticker:
        self._last = time.perf_counter()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._tick()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.contextmanager
def _inline() -> Iterator[None]:
    """Decode every answer on the event loop, whatever its size."""
    from smspartner_async._wire import body

    saved = body.OFFLOAD_BYTES
    body.OFFLOAD_BYTES = sys.maxsize
    try:
        yield
    finally:
        body.OFFLOAD_BYTES = saved


async def _lag_of_call(
    url: str, fmt: str, transport: str, n: int, turns: int, *, freeze: bool = False
) -> dict[str, Any]:
    """Worst lag and wall time over `turns` calls of `bulk_status(n)`, after a warm-up call.

    The warm-up's answer stays alive, as an application's data does. With `freeze`, the heap
    is frozen after it (`gc.freeze()`, what an application holding long-lived data may do):
    the collector's full passes then walk only what was made since.
    """
    lags, walls = [], []
    async with library.client(url, 8, fmt, transport) as client:
        result = await client.bulk_status(n)  # warm-up: connection, server cache, parser caches
        if len(result.recipients) != n:
            raise RuntimeError(f"{len(result.recipients)} recipients for {n}")
        if freeze:
            gc.freeze()
        try:
            for _ in range(turns):
                async with Ticker() as ticker:
                    t0 = time.perf_counter()
                    await client.bulk_status(n)
                    walls.append(time.perf_counter() - t0)
                lags.append(ticker.worst)
        finally:
            if freeze:
                gc.unfreeze()
    return {"worst_lag": max(lags), "median_lag": statistics.median(lags), "wall": min(walls)}


async def _idle_lag(seconds: float) -> float:
    async with Ticker() as ticker:
        await asyncio.sleep(seconds)
    return ticker.worst


def lag(profile: Profile) -> Section:
    n = 100_000
    section = Section(
        "loop_lag",
        f"Event-loop lag during bulk_status of {n:,} recipients (ticker sleeping 1 ms; "
        f"{profile.lag_turns} calls each)",
        [
            "transport",
            "format",
            "decoding",
            "answer MiB",
            "worst lag ms",
            "median lag ms",
            "call s",
        ],
    )
    skip = library.unavailable()
    if skip:
        section.notes.append(f"library skipped: {skip}")
        return section
    from smspartner_async._wire import body

    modes: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
        f"as is (thread over {body.OFFLOAD_BYTES // 1024} KiB)": contextlib.nullcontext,
        "inline (forced)": _inline,
    }
    data: dict[str, Any] = {"idle_worst_lag": asyncio.run(_idle_lag(1.0))}
    with ServerProcess() as srv:
        for transport in TRANSPORTS:
            for fmt in FORMATS:
                size = len(render_bulk_status(n, fmt == "xml")) / 2**20
                for mode, context in modes.items():
                    with context():
                        d = asyncio.run(_lag_of_call(srv.url, fmt, transport, n, profile.lag_turns))
                    data[f"{transport}/{fmt}/{mode}"] = d
                    section.rows.append(
                        [
                            transport,
                            fmt.upper(),
                            mode,
                            size,
                            d["worst_lag"] * 1e3,
                            d["median_lag"] * 1e3,
                            d["wall"],
                        ]
                    )
    section.notes += [
        f"idle loop (the ticker alone, 1 s): worst lag {data['idle_worst_lag'] * 1e3:.2f} ms",
        "lag = longest gap between two ticker wake-ups less the 1 ms asked for; worst and "
        "median are over the calls; call s = fastest call",
        "a decoding thread still holds the GIL for a C call's whole length (orjson.loads, "
        "lxml's tree walks) and for up to sys.getswitchinterval() "
        f"({sys.getswitchinterval() * 1e3:g} ms) of Python code at a time",
        f"server: {NAME}",
    ]
    section.data = data
    return section


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


async def _thread_hop(calls: int = 200) -> float:
    """Median round trip of `asyncio.to_thread` on a function that does nothing."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await asyncio.to_thread(int)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def decode_times(profile: Profile) -> Section:
    columns = ["body KiB", "recipients"]
    for fmt in FORMATS:
        columns += [f"{fmt.upper()} decode ms", f"{fmt.upper()} decode+structure ms"]
    section = Section(
        "decode_inline",
        "Bulk-status decoding inline: how long one answer would hold the event loop",
        columns,
    )
    try:
        from smspartner_async._models import BulkStatus
        from smspartner_async._redact import SecretStr
        from smspartner_async._structure import make_converter
        from smspartner_async._wire.body import OFFLOAD_BYTES, Answer
        from smspartner_async._wire.endpoints import BULK_STATUS, read_record
    except Exception as exc:
        why = traceback.format_exception_only(type(exc), exc)[-1].strip()
        section.notes.append(f"skipped: {why}")
        return section
    key, limit = SecretStr("bench"), 1 << 30
    structure = make_converter().structure
    headers = {"content-type": "application/json"}
    per_recipient = {fmt: len(render_bulk_status(1000, fmt == "xml")) / 1000 for fmt in FORMATS}
    data: dict[str, Any] = {}
    for kib in SIZES_KIB:
        row: list[Any] = [kib, ""]
        for fmt in FORMATS:
            n = int(kib * 1024 / per_recipient[fmt])
            answer = Answer(200, headers, render_bulk_status(n, fmt == "xml"))

            def decode(answer: Answer = answer, fmt: str = fmt) -> dict[str, Any]:
                return read_record(answer, BULK_STATUS, fmt, limit, key)  # type: ignore[arg-type]

            def both(decode: Callable[[], dict[str, Any]] = decode, n: int = n) -> None:
                record = decode()
                record.setdefault("message_id", n)
                structure(record, BulkStatus)

            repeats = 5 if kib <= 1024 else 3
            t_decode, t_both = _best_of(decode, repeats), _best_of(both, repeats)
            row[1] = f"{row[1]}/{n:,}" if row[1] else f"{n:,}"
            row += [t_decode * 1e3, t_both * 1e3]
            data[f"{fmt}/{kib}"] = {"recipients": n, "decode": t_decode, "both": t_both}
        section.rows.append(row)
    hop = asyncio.run(_thread_hop())
    data["thread_hop"] = hop
    multi = _multi_status_answers()
    data["multi_status"] = multi
    section.notes += [
        "recipients: JSON/XML counts for that body size; best of 5 (3 from 4 MiB)",
        f"asyncio.to_thread round trip (no work): {hop * 1e6:.0f} us median",
        "for scale, a 500-pair multi-status answer (decoded and matched inline): "
        + "; ".join(
            f"{fmt.upper()} {d['kib']:.0f} KiB, {d['ms']:.2f} ms" for fmt, d in multi.items()
        ),
        f"OFFLOAD_BYTES today: {OFFLOAD_BYTES // 1024} KiB (answers over it are decoded in a "
        "worker thread)",
    ]
    section.data = data
    return section


def _multi_status_answers() -> dict[str, dict[str, float]]:
    """Size and inline decode + match time of a 500-pair multi-status answer, JSON and XML."""
    from smspartner_async._chunking import chunks_of
    from smspartner_async._matching import match
    from smspartner_async._redact import SecretStr
    from smspartner_async._validate import validate_all
    from smspartner_async._wire.body import Answer
    from smspartner_async._wire.endpoints import MULTI_STATUS, read_record

    pairs = make_pairs(500)
    chunk = chunks_of(validate_all(pairs, "FR"), 500)[0][0]
    items = [{"phoneNumber": p, "messageId": m} for p, m in pairs]
    key = SecretStr("bench")
    out = {}
    for fmt in FORMATS:
        answer = Answer(200, {}, render_multi_status(items, fmt == "xml"))

        def decode_and_match(answer: Answer = answer, fmt: str = fmt) -> None:
            record = read_record(answer, MULTI_STATUS, fmt, 1 << 30, key)  # type: ignore[arg-type]
            match(chunk, record, "FR")

        seconds = _best_of(decode_and_match, 20)
        out[fmt] = {"kib": len(answer.body) / 1024, "ms": seconds * 1e3}
    return out


def run(profile: Profile) -> list[Section]:
    return [lag(profile), decode_times(profile)]
