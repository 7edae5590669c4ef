"""HTTP scenarios against the canned server: its ceiling, the transports table, latency-bound,
CPU-bound, and the speed-ups over what users write today."""

from __future__ import annotations

import asyncio
import math
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from typing import Any

from . import baselines, library
from ._common import Timing, best, chunked, make_pairs, request_body
from ._profile import Profile
from ._report import Goal, Section
from .server import NAME, ServerProcess, render_multi_status


def _run(make: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, Timing]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = asyncio.run(make())
    return out, Timing(time.perf_counter() - t0, time.process_time() - c0)


def _repeat(make: Callable[[], Coroutine[Any, Any, Any]], repeats: int) -> Timing:
    """One warm-up run (fills the server's answer cache), then the best of `repeats`."""
    _run(make)
    return best([_run(make)[1] for _ in range(repeats)])


def _interleaved(
    makers: Mapping[str, Callable[[], Coroutine[Any, Any, Any]]], repeats: int
) -> dict[str, Timing]:
    """Best of `repeats` per client, the clients taking turns (a, b, a, b...).

    The VM's speed drifts by tens of percent over a minute; taking turns lets
    a drift slow every client of a ratio alike instead of one of them.
    """
    for make in makers.values():
        _run(make)  # warm-up: fills the server's answer cache, imports, pools
    runs: dict[str, list[Timing]] = {name: [] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            runs[name].append(_run(make)[1])
    return {name: best(timings) for name, timings in runs.items()}


def _shard_size() -> str:
    try:
        from smspartner_async._transports.pooled import SHARD_SIZE
    except Exception:  # a tree without it
        return "?"
    return str(SHARD_SIZE)


def _skip_reason(name: str) -> str | None:
    try:
        if name == "httpx2":
            import httpx2  # noqa: F401
        elif name == "httpx-aiohttp":
            import httpx_aiohttp  # noqa: F401
        elif name.startswith("project-pooled-"):
            from smspartner_async._transports.pooled import PooledTransport  # noqa: F401
        elif name.startswith("project-"):
            from smspartner_async._transports.aiohttp import AiohttpTransport  # noqa: F401
    except Exception as exc:
        return traceback.format_exception_only(type(exc), exc)[-1].strip()
    return None


def server_ceiling(profile: Profile) -> Section:
    section = Section(
        "server",
        "Benchmark server ceiling (raw aiohttp client, concurrency 32, no latency)",
        ["requests", "req/s", "server CPU share", "client CPU share", "est. server capacity"],
    )
    bodies = [request_body(c) for c in chunked(make_pairs(profile.transport_requests * 500))]
    with ServerProcess() as srv:
        asyncio.run(baselines.throughput("raw-aiohttp", srv.url, bodies, 32))  # fill the cache
        rates, shares = [], []
        for _ in range(profile.repeats):
            s0, c0, t0 = srv.cpu_seconds(), time.process_time(), time.perf_counter()
            rates.append(asyncio.run(baselines.throughput("raw-aiohttp", srv.url, bodies, 32)))
            wall = time.perf_counter() - t0
            s1 = srv.cpu_seconds()
            server_share = (s1 - s0) / wall if s0 is not None and s1 is not None else math.nan
            shares.append((server_share, (time.process_time() - c0) / wall))
    rate = max(rates)
    server_share, client_share = shares[rates.index(rate)]
    capacity = rate / server_share if server_share > 0 else math.nan
    section.rows.append([len(bodies), rate, server_share, client_share, capacity])
    items = [{"phoneNumber": p, "messageId": m} for p, m in make_pairs(500)]
    t0 = time.perf_counter()
    for _ in range(50):
        render_multi_status(items)
    render_us = (time.perf_counter() - t0) / 50 / 500 * 1e6
    section.notes += [
        f"server: {NAME}",
        "the server answers repeated request bodies from a cache; a first render costs "
        f"{render_us:.2f} us per item (JSON)",
        "est. server capacity = req/s / server CPU share (one core at 100% would serve that)",
    ]
    section.data = {
        "rate": rate,
        "server_cpu_share": server_share,
        "client_cpu_share": client_share,
        "capacity": capacity,
        "render_us_per_item": render_us,
    }
    return section


def transports(profile: Profile) -> Section:
    concs = profile.concurrencies
    section = Section(
        "transports",
        f"Transports: requests/s, {profile.transport_requests} requests of 500 pairs "
        "(70 KB JSON answers, read not decoded), best of "
        f"{profile.repeats}",
        ["transport", *(f"c={c}" for c in concs)],
    )
    bodies = [request_body(c) for c in chunked(make_pairs(profile.transport_requests * 500))]
    with ServerProcess() as srv:
        asyncio.run(baselines.throughput("raw-aiohttp", srv.url, bodies, 32))  # fill the cache
        names = []
        for name in baselines.TRANSPORTS:
            reason = _skip_reason(name)
            if reason is None:
                names.append(name)
            else:
                section.notes.append(f"{name} skipped: {reason}")
        results: dict[str, dict[int, float]] = {name: dict.fromkeys(concs, 0.0) for name in names}
        for c in concs:
            for _ in range(profile.repeats):
                for name in names:  # transports take turns: drift hits them alike
                    rate = asyncio.run(baselines.throughput(name, srv.url, bodies, c))
                    results[name][c] = max(results[name][c], rate)
        for name in baselines.TRANSPORTS:
            row = [results[name][c] for c in concs] if name in results else ["skipped"] * len(concs)
            section.rows.append([name, *row])
    raw = results.get("raw-aiohttp")
    if raw:
        for name, by_c in results.items():
            if name != "raw-aiohttp":
                share = ", ".join(f"c={c}: {by_c[c] / raw[c]:.2f}" for c in concs)
                section.notes.append(f"{name} / raw-aiohttp: {share}")
    section.notes += [
        "httpx-httpcore: httpx.AsyncClient's own transport (one httpcore pool); "
        "project-pooled-N: smspartner_async._transports.pooled.PooledTransport, httpcore pools "
        f'of at most N connections (the client\'s transport="httpx" uses N = {_shard_size()}); '
        "httpx-aiohttp: httpx_aiohttp.AiohttpTransport; project-aiohttp: "
        "smspartner_async._transports.aiohttp.AiohttpTransport under httpx.AsyncClient (the "
        'client\'s transport="aiohttp"; -noenv: with trust_env=False); httpx2: '
        "httpx2.AsyncClient; raw-aiohttp: aiohttp.ClientSession",
        "the previous release's direct aiohttp path (no httpx pipeline) is compared in the "
        "'previous' scenario",
        "pools sized to the concurrency; a warm-up of c requests opens them before timing",
        f"server: {NAME}",
    ]
    section.data = {"requests": len(bodies), "rates": results}
    return section


LIBRARY_TRANSPORTS = ("httpx", "aiohttp")
#: The default client's wall time / raw aiohttp + orjson's, at most (issue #20).
LATENCY_GOALS = {8: 1.10, 32: 1.15, 128: 1.5}


def latency_bound(profile: Profile) -> Section:
    n, lat = profile.latency_pairs, profile.latency
    requests = math.ceil(n / 500)
    section = Section(
        "latency",
        f"Latency-bound: {n:,} pairs, {lat * 1000:.0f} ms server latency, seconds (best of "
        f"{profile.repeats})",
        [
            "concurrency",
            "ideal",
            "raw aiohttp",
            "library httpx",
            "library aiohttp",
            "httpx+sem",
            "httpx lib/raw",
            "aiohttp lib/raw",
            "raw/ideal",
            "httpx+sem/ideal",
        ],
    )
    pairs = make_pairs(n)
    skip = library.unavailable()
    data: dict[str, Any] = {}
    with ServerProcess(latency=lat) as srv:
        for c in profile.latency_concurrencies:
            ideal = math.ceil(requests / c) * lat
            makers: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
                "raw": partial(baselines.raw_aiohttp, srv.url, pairs, c)
            }
            if not skip:
                for transport in LIBRARY_TRANSPORTS:
                    makers[transport] = partial(
                        library.multi_status, srv.url, pairs, c, "json", transport
                    )
            timings = _interleaved(makers, profile.repeats)
            raw = timings["raw"]
            walls = {t: timings[t].wall if t in timings else math.nan for t in LIBRARY_TRANSPORTS}
            hx = _run(partial(baselines.httpx_semaphore, "httpx-httpcore", srv.url, pairs, c))
            section.rows.append(
                [
                    c,
                    ideal,
                    raw.wall,
                    walls["httpx"],
                    walls["aiohttp"],
                    hx[1].wall,
                    walls["httpx"] / raw.wall,
                    walls["aiohttp"] / raw.wall,
                    raw.wall / ideal,
                    hx[1].wall / ideal,
                ]
            )
            data[str(c)] = {
                "ideal": ideal,
                "raw": raw.wall,
                **{f"library_{t}": w for t, w in walls.items()},
                "httpx_semaphore": hx[1].wall,
            }
            if not skip and c in LATENCY_GOALS:
                section.goals.append(
                    Goal(
                        f"latency-bound c={c}, default client (transport=httpx) / raw "
                        "aiohttp+orjson",
                        walls["httpx"] / raw.wall,
                        LATENCY_GOALS[c],
                    )
                )
            if c == 32 and not skip:
                for transport, wall in walls.items():
                    section.goals.append(
                        Goal(
                            f"latency-bound c=32, library (transport={transport}) / ideal bound",
                            wall / ideal,
                            1.2,
                        )
                    )
    if skip:
        section.notes.append(f"library skipped: {skip}")
    section.notes += [
        "ideal = ceil(requests / concurrency) x latency; library httpx / aiohttp: "
        "SMSPartnerClient(transport=...); httpx+sem: httpx.AsyncClient (httpcore) with a pool "
        "of c workers, one run; raw and the library take turns, best of each",
        f"server: {NAME}",
    ]
    section.data = data
    return section


def cpu_bound(profile: Profile, concurrency: int = 8) -> Section:
    n = profile.cpu_pairs
    section = Section(
        "cpu",
        f"CPU-bound: {n:,} pairs, no latency, concurrency {concurrency} (best of "
        f"{profile.repeats})",
        ["client", "wall s", "client CPU s", "us CPU/item", "wall / raw JSON"],
    )
    pairs = make_pairs(n)
    skip = library.unavailable()
    with ServerProcess() as srv:
        makers: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "raw aiohttp + orjson (JSON)": partial(
                baselines.raw_aiohttp, srv.url, pairs, concurrency
            ),
            "raw aiohttp + lxml (XML)": partial(
                baselines.raw_aiohttp, srv.url, pairs, concurrency, xml=True
            ),
        }
        if not skip:
            for transport in LIBRARY_TRANSPORTS:
                for fmt in ("json", "xml"):
                    makers[f"library {transport} ({fmt.upper()})"] = partial(
                        library.multi_status, srv.url, pairs, concurrency, fmt, transport
                    )
        rows = _interleaved(makers, profile.repeats)
    raw = rows["raw aiohttp + orjson (JSON)"]
    for name, t in rows.items():
        section.rows.append([name, t.wall, t.cpu, t.cpu / n * 1e6, t.wall / raw.wall])
    if not skip:
        for transport in LIBRARY_TRANSPORTS:
            lib_json = rows[f"library {transport} (JSON)"]
            lib_xml = rows[f"library {transport} (XML)"]
            section.goals += [
                Goal(
                    f"CPU-bound, library (transport={transport}) / raw aiohttp+orjson (wall)",
                    lib_json.wall / raw.wall,
                    1.5,
                ),
                Goal(
                    f"client CPU per item, JSON (transport={transport})",
                    lib_json.cpu / n * 1e6,
                    2.5,
                    " us",
                ),
                Goal(
                    f"client CPU per item, XML (transport={transport})",
                    lib_xml.cpu / n * 1e6,
                    6.0,
                    " us",
                ),
            ]
    else:
        section.notes.append(f"library skipped: {skip}")
    section.notes += [
        "client CPU: time.process_time() of the client process over asyncio.run (event loop, "
        "HTTP, decoding, models, merge); the clients take turns, best of each; library httpx / "
        "aiohttp: SMSPartnerClient(transport=...)",
        f"server: {NAME}",
    ]
    section.data = {k: {"wall": v.wall, "cpu": v.cpu} for k, v in rows.items()}
    return section


def users(profile: Profile) -> Section:
    n, lat = profile.users_pairs, profile.latency
    section = Section(
        "users",
        f"Against what users write today: {n:,} pairs, {lat * 1000:.0f} ms server latency",
        ["approach", "seconds", "library speed-up"],
    )
    pairs = make_pairs(n)
    skip = library.unavailable()
    with ServerProcess(latency=lat) as srv:
        sync = _run(lambda: asyncio.to_thread(baselines.sync_sequential, srv.url, pairs))[1]
        naive = _repeat(lambda: baselines.naive_httpx_gather(srv.url, pairs), 1)
        libs = {}
        if not skip:
            for c in (8, 32):
                libs[c] = _repeat(partial(library.multi_status, srv.url, pairs, c), 1)
    ref = libs[8].wall if libs else math.nan
    section.rows += [
        ["documents: one sync call per 500 pairs (httpx.Client)", sync.wall, sync.wall / ref],
        ["naive httpx.AsyncClient + asyncio.gather", naive.wall, naive.wall / ref],
    ]
    for c, t in libs.items():
        section.rows.append([f"library, max_concurrency={c}", t.wall, ref / t.wall])
    if skip:
        section.notes.append(f"library skipped: {skip}")
    section.notes.append("speed-up = approach's time / library's time at its default concurrency 8")
    section.data = {
        "sync": sync.wall,
        "naive": naive.wall,
        "library": {str(c): t.wall for c, t in libs.items()},
    }
    return section
