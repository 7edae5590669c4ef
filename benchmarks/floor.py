"""Where each microsecond of `multi_status` goes: a ladder from raw aiohttp to the library.

One process, the canned server in another, the rungs taking turns (A B C ..., then
... C B A), each run timed in client CPU per item (this process's CPU time over one
`asyncio.run`, divided by the pairs), with the garbage collector on and, in a second pass
of the same turn, off (`gc.disable()` around the run). Each rung does what the one above
it does, plus one thing:

- `raw`: aiohttp + orjson (lxml for XML), as `baselines.raw_aiohttp`: the reference;
- `httpx`: the same chunks and concurrency through httpx over the library's default
  transport (`PooledTransport` under `httpx.AsyncClient`), the bodies read, not decoded;
- `+decode`: each body decoded as the library decodes it (msgspec into private structs
  for JSON, `decode_xml` for XML) and turned into rows;
- `+results`: one `MultiStatusResult` per row, built as the library builds them, with
  fixed values (the cost of the objects alone);
- `+match`: the library's `match` instead (keys looked up, values read and cached);
- `library`: `SMSPartnerClient.multi_status` on the default transport (validation,
  request bodies, flow control, the exchange task and its shield, everything).

    python -m benchmarks.floor [--pairs 100000] [--turns 3] [--format json,xml]

The gaps between rungs say what each layer costs; `library - +match` is the per-request
path of the client (`_call`, `_batch`, the transport) and the input's validation.

CPU time on a shared machine varies by tens of percent from run to run; a change to one
layer shows better in instruction counts, which do not vary. `--one RUNG` runs one rung
once (after a short warm-up), for valgrind; the instructions per pair are the difference
between two sizes divided by the extra pairs (the server is a child process, which
valgrind leaves alone):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python -m benchmarks.floor --one library --format json --pairs 10000 --no-gc
    (the same with --pairs 30000; then (Ir[30000] - Ir[10000]) / 20000)

They undercount memory-bound work (cache misses cost time, not instructions), so confirm a
change with CPU time too (`benchmarks.core --ref REF`, contenders taking turns).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import httpx

from . import baselines, library
from ._common import JSON_HEADERS, PATH, chunked, make_pairs, request_body, run_pool
from ._report import Progress
from .server import ServerProcess

Rung = Callable[[str, Sequence[tuple[str, int]], int, str], Coroutine[Any, Any, int]]


async def _through_httpx(
    base: str,
    pairs: Sequence[tuple[str, int]],
    concurrency: int,
    fmt: str,
    handle: Callable[[bytes, list[tuple[str, int]]], int],
) -> int:
    """The chunks posted through httpx over the default transport, each body `handle`d."""
    from smspartner_async._transports.pooled import PooledTransport

    url = base + PATH + ("?_format=xml" if fmt == "xml" else "")
    count = 0
    transport = PooledTransport(max_connections=concurrency)
    async with httpx.AsyncClient(transport=transport, timeout=120) as client:

        async def one(chunk: list[tuple[str, int]]) -> None:
            nonlocal count
            r = await client.post(url, content=request_body(chunk), headers=JSON_HEADERS)
            r.raise_for_status()
            count += handle(r.content, chunk)

        await run_pool(chunked(pairs), one, concurrency)
    return count


def _decoder(fmt: str) -> Callable[[bytes], Any]:
    """bytes -> the rows of the answer's items, as `read_record` gives them to `match`."""
    from smspartner_async._wire.endpoints import LIST_KEY, MULTI_STATUS
    from smspartner_async._wire.rows import decode_multi_status, rows_of
    from smspartner_async._wire.xml import decode_xml

    if fmt == "xml":
        return lambda body: rows_of(decode_xml(body, MULTI_STATUS.xml)[LIST_KEY], LIST_KEY)

    def json_rows(body: bytes) -> Any:
        record = decode_multi_status(body, LIST_KEY)
        assert record is not None
        return rows_of(record[LIST_KEY], LIST_KEY)

    return json_rows


async def raw(base: str, pairs: Sequence[tuple[str, int]], concurrency: int, fmt: str) -> int:
    return len(await baselines.raw_aiohttp(base, pairs, concurrency, xml=fmt == "xml"))


async def httpx_bytes(
    base: str, pairs: Sequence[tuple[str, int]], concurrency: int, fmt: str
) -> int:
    return await _through_httpx(base, pairs, concurrency, fmt, lambda body, chunk: len(chunk))


async def decoded(base: str, pairs: Sequence[tuple[str, int]], concurrency: int, fmt: str) -> int:
    rows_of_body = _decoder(fmt)
    return await _through_httpx(
        base, pairs, concurrency, fmt, lambda body, chunk: sum(1 for _ in rows_of_body(body))
    )


async def results(base: str, pairs: Sequence[tuple[str, int]], concurrency: int, fmt: str) -> int:
    from smspartner_async._matching import new_result
    from smspartner_async._models import DeliveryStatus

    rows_of_body = _decoder(fmt)
    delivered = DeliveryStatus.DELIVERED
    kept: list[Any] = []  # every result kept, as the library keeps them

    def build(body: bytes, chunk: list[tuple[str, int]]) -> int:
        before = len(kept)
        for i, row in enumerate(rows_of_body(body)):
            kept.append(new_result(row[2], 1, True, 200, delivered, "", None, False, False, i))
        return len(kept) - before

    return await _through_httpx(base, pairs, concurrency, fmt, build)


async def matched(base: str, pairs: Sequence[tuple[str, int]], concurrency: int, fmt: str) -> int:
    from smspartner_async._chunking import Chunk
    from smspartner_async._matching import match
    from smspartner_async._wire.endpoints import LIST_KEY

    rows_of_body = _decoder(fmt)
    kept: list[Any] = []

    def build(body: bytes, chunk: list[tuple[str, int]]) -> int:
        keys = list(chunk)
        out = match(Chunk(keys, range(len(keys)), len(keys)), {LIST_KEY: rows_of_body(body)}, "FR")
        kept.extend(out)
        return len(out)

    return await _through_httpx(base, pairs, concurrency, fmt, build)


async def client(base: str, pairs: Sequence[tuple[str, int]], concurrency: int, fmt: str) -> int:
    return len(await library.multi_status(base, pairs, concurrency, fmt, "httpx"))


RUNGS: dict[str, Rung] = {
    "raw": raw,
    "httpx": httpx_bytes,
    "+decode": decoded,
    "+results": results,
    "+match": matched,
    "library": client,
}


def _cpu_per_item(
    rung: Rung, url: str, pairs: list[tuple[str, int]], fmt: str, gc_on: bool
) -> float:
    gc.collect()
    if not gc_on:
        gc.disable()
    try:
        c0 = time.process_time()
        count = asyncio.run(rung(url, pairs, 8, fmt))
        cpu = time.process_time() - c0
    finally:
        gc.enable()
    if count != len(pairs):
        raise RuntimeError(f"{count} items for {len(pairs)} pairs")
    return cpu / len(pairs) * 1e6


def measure(n: int, turns: int, formats: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    pairs = make_pairs(n)
    figures: dict[str, dict[str, list[float]]] = {}
    # Per format: a warm-up pass, then `turns` passes, each rung run twice (GC on, off).
    expect = f"about {len(formats) * (1 + 2 * turns) * n / 100_000 * 3:.0f} s on a quiet machine"
    progress = Progress("benchmarks.floor", len(formats) * (1 + turns), expect=expect)
    with ServerProcess() as srv:
        for fmt in formats:
            for gc_on in (True, False):
                figures[f"{fmt}, gc {'on' if gc_on else 'off'}"] = {name: [] for name in RUNGS}
            for rung in RUNGS.values():
                _cpu_per_item(rung, srv.url, pairs, fmt, True)  # warm-up: caches, connections
            progress.step(f"{fmt}, warm-up")
            for turn in range(turns):
                names = list(RUNGS) if turn % 2 == 0 else list(RUNGS)[::-1]
                for name in names:
                    for gc_on in (True, False):
                        cell = figures[f"{fmt}, gc {'on' if gc_on else 'off'}"]
                        cell[name].append(_cpu_per_item(RUNGS[name], srv.url, pairs, fmt, gc_on))
                progress.step(f"{fmt}, turn {turn + 1} of {turns}")
    progress.finish()
    return figures


def report(figures: dict[str, dict[str, list[float]]], n: int, turns: int) -> str:
    lines = [
        f"# client CPU us/item, multi_status, {n:,} pairs, c=8, no latency, "
        f"median of {turns} turns (min-max); steps between medians",
    ]
    for cell, by in figures.items():
        lines += ["", f"## {cell}", "", "| rung | us/item | step | / raw |", "|---|---|---|---|"]
        raw_us = statistics.median(by["raw"])
        before: float | None = None
        for name, values in by.items():
            us = statistics.median(values)
            step = "" if before is None or name == "httpx" else f"{us - before:+.2f}"
            lines.append(
                f"| {name} | {us:.2f} ({min(values):.2f}-{max(values):.2f}) | {step} | "
                f"{us / raw_us:.2f}x |"
            )
            before = us
    return "\n".join(lines)


def one(name: str, n: int, fmt: str, gc_on: bool) -> None:
    """One run of one rung, after a warm-up of a few chunks (imports, caches, connections)."""
    pairs = make_pairs(n)
    with ServerProcess() as srv:
        asyncio.run(RUNGS[name](srv.url, pairs[:4000], 8, fmt))
        _cpu_per_item(RUNGS[name], srv.url, pairs, fmt, gc_on)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.floor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--format", default="json,xml")
    parser.add_argument("--one", choices=list(RUNGS), help="run this rung once (for valgrind)")
    parser.add_argument("--no-gc", action="store_true", help="with --one: collector disabled")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if args.one:
        one(args.one, args.pairs, formats[0], not args.no_gc)
        return
    print(report(measure(args.pairs, args.turns, formats), args.pairs, args.turns))


if __name__ == "__main__":
    main()
