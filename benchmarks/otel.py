"""What OpenTelemetry costs the client: `python -m benchmarks.otel [--pairs N] [--repeats N]`.

Client CPU per item of `multi_status` (100,000 pairs by default, 500 per call,
concurrency 8) against the canned server (`benchmarks.server`, its own process),
in five set-ups, each in a fresh process (a provider cannot be unset) and taking
turns, best of `--repeats`:

- `absent`: `opentelemetry` cannot be imported (blocked in `sys.modules`);
- `api, nothing set`: the API imported, as FastAPI does, no provider: the
  library's one check per call, and nothing else;
- `instrumented, nothing set`: httpx's and aiohttp-client's generic
  instrumentations enabled, no provider of ours: every HTTP attempt runs under
  `suppress_http_instrumentation()`;
- `SDK set`: an SDK tracer provider (batch processor, spans discarded) and meter
  provider (in-memory reader): our spans and metrics;
- `SDK set + instrumented`: both.

Then the same paths without HTTP (`--micro`): the telemetry of one 500-pair call
(check, call span, one attempt, answered pairs counted) in a loop, in us per call:
the figure the end-to-end runs cannot resolve through the VM's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from ._common import machine_facts, make_pairs
from ._report import Progress

SETUPS = (
    "absent",
    "api, nothing set",
    "instrumented, nothing set",
    "SDK set",
    "SDK set + instrumented",
)
TRANSPORTS = ("aiohttp", "httpx")
CONCURRENCY = 8
WARMUP_PAIRS = 5_000


# -- one set-up, in its own process ------------------------------------------------------------


def _set_up(setup: str) -> None:
    """Put this fresh process in `setup`, before the library is imported."""
    if setup == "absent":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # imports now fail
        return
    import opentelemetry.metrics
    import opentelemetry.trace

    if "instrumented" in setup:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        AioHttpClientInstrumentor().instrument()
    if "SDK" in setup:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Discard(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
        opentelemetry.trace.set_tracer_provider(tracer_provider)
        opentelemetry.metrics.set_meter_provider(
            MeterProvider(metric_readers=[InMemoryMetricReader()])
        )


def _telemetry_kind() -> str:
    from smspartner_async import _telemetry

    return type(_telemetry.current()).__name__


async def _run(url: str, n: int, transport: str) -> dict[str, Any]:
    from smspartner_async import SMSPartnerClient

    pairs = make_pairs(n)
    async with SMSPartnerClient(
        "bench", base_url=url + "/v1", transport=transport, max_concurrency=CONCURRENCY
    ) as client:
        await client.multi_status(pairs[:WARMUP_PAIRS])  # pool, caches, first imports
        cpu, wall = time.process_time(), time.perf_counter()
        results = await client.multi_status(pairs)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if len(results) != n:
        raise RuntimeError(f"{len(results)} results for {n} pairs")
    return {"cpu": cpu, "wall": wall, "telemetry": _telemetry_kind()}


def _micro(calls: int) -> dict[str, Any]:
    """The telemetry path of one 500-pair call, without the call: us per call."""
    import httpx

    from smspartner_async import _telemetry
    from smspartner_async._models import DeliveryStatus, MultiStatusResult

    results = [
        MultiStatusResult(f"+3361234{i:04d}", i, True, 200, DeliveryStatus.DELIVERED)
        for i in range(500)
    ]
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/multi-status")
    response = httpx.Response(200, request=request)

    def one() -> None:
        with _telemetry.current().call("multi-status", 500, "json") as trace:
            with trace.request(request, 0) as exchange:
                exchange.response(response)
            trace.answered(results)

    for _ in range(200):
        one()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            one()
        best = min(best, (time.perf_counter() - started) / calls)
    return {"per_call_us": best * 1e6, "telemetry": _telemetry_kind()}


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--setup", required=True)
    parser.add_argument("--url")
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--transport")
    parser.add_argument("--micro", type=int)
    args = parser.parse_args(argv)
    _set_up(args.setup)
    if args.micro:
        out = _micro(args.micro)
    else:
        out = asyncio.run(_run(args.url, args.pairs, args.transport))
    print(json.dumps(out))


# -- the parent --------------------------------------------------------------------------------


def _spawn(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.otel", "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _available(setup: str) -> str | None:
    """None when this set-up can run here, else why not."""
    modules = [] if setup == "absent" else ["opentelemetry.trace"]
    if "instrumented" in setup:
        modules += [
            "opentelemetry.instrumentation.httpx",
            "opentelemetry.instrumentation.aiohttp_client",
        ]
    if "SDK" in setup:
        modules.append("opentelemetry.sdk")
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} not installed"
    return None


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel", description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--micro-calls", type=int, default=2_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    from .server import ServerProcess

    transports = [t for t in args.transports.split(",") if t]
    skipped = {s: why for s in SETUPS if (why := _available(s))}
    setups = [s for s in SETUPS if s not in skipped]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    count = args.repeats * len(transports) * len(setups)
    progress = Progress(
        "benchmarks.otel",
        count + len(setups),
        expect=f"{count} runs of {args.pairs:,} pairs, each in a fresh process, then "
        f"{len(setups)} short ones: some minutes (the first run's time gives the estimate)",
    )
    with ServerProcess() as server:
        for _ in range(args.repeats):  # set-ups take turns: the VM's drift hits them alike
            for transport in transports:
                for setup in setups:
                    got = _spawn(
                        "--setup",
                        setup,
                        "--url",
                        server.url,
                        "--pairs",
                        str(args.pairs),
                        "--transport",
                        transport,
                    )
                    runs.setdefault((setup, transport), []).append(got)
                    progress.step(f"{transport}, {setup}")
    micro = {}
    for setup in setups:
        micro[setup] = _spawn("--setup", setup, "--micro", str(args.micro_calls))
        progress.step(f"telemetry path alone, {setup}")
    progress.finish()

    print(f"# OpenTelemetry's cost: {args.pairs:,} pairs, concurrency {CONCURRENCY}\n")
    rows: list[list[str]] = []
    figures: dict[str, Any] = {"end_to_end": {}, "micro": micro, "skipped": skipped}
    for transport in transports:
        base = _best(runs.get(("absent", transport), []))
        for setup in setups:
            best = _best(runs[(setup, transport)])
            if best is None:
                errors = [r["error"] for r in runs[(setup, transport)] if "error" in r]
                rows.append([transport, setup, "failed", errors[0] if errors else "", "", ""])
                continue
            per_item = best["cpu"] / args.pairs * 1e6
            delta = "" if base is None else f"{per_item - base['cpu'] / args.pairs * 1e6:+.2f}"
            spread = _spread(runs[(setup, transport)], args.pairs)
            rows.append(
                [
                    transport,
                    setup,
                    f"{per_item:.2f}",
                    delta,
                    spread,
                    best["telemetry"],
                ]
            )
            figures["end_to_end"][f"{transport}/{setup}"] = runs[(setup, transport)]
    print(
        _table(
            [
                "transport",
                "set-up",
                "us CPU/item (best)",
                "vs absent",
                "all runs",
                "telemetry",
            ],
            rows,
        )
    )
    print("\nThe telemetry path alone, one 500-pair call (check, spans, counting):\n")
    micro_rows = []
    for setup, got in micro.items():
        if "error" in got:
            micro_rows.append([setup, "failed", got["error"], ""])
            continue
        us = got["per_call_us"]
        micro_rows.append([setup, f"{us:.2f}", f"{us / 500 * 1000:.1f}", got["telemetry"]])
    print(_table(["set-up", "us per call", "ns per item", "telemetry"], micro_rows))
    for setup, why in skipped.items():
        print(f"\nskipped {setup}: {why}")
    facts = machine_facts()
    print(f"\npython {facts['python']}, {facts['cores']} cores, {facts['platform']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**figures, "facts": facts}, f, indent=2)


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in runs if "cpu" in r]
    return min(ok, key=_cpu) if ok else None


def _cpu(run: dict[str, Any]) -> float:
    return float(run["cpu"])


def _spread(runs: list[dict[str, Any]], pairs: int) -> str:
    return " / ".join(f"{r['cpu'] / pairs * 1e6:.2f}" for r in runs if "cpu" in r)


if __name__ == "__main__":
    main()
