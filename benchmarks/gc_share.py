"""The garbage collector's share: of the client CPU of one `multi_status`, and of the worst
event-loop stall while `bulk_status` decodes a 100,000-recipient answer, as is and with the
heap frozen after the warm-up (`gc.freeze()`, an application's choice: see docs/speed.md).

`gc.callbacks` time every collection, by generation, during the call. Collections are
driven by tracked objects that survive (here the results, frozen attrs instances); the
stall is compared with the longest collection seen in the same call.

    python -m benchmarks.gc_share [--pairs 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from . import library
from ._common import make_pairs
from .loop_lag import _lag_of_call
from .server import ServerProcess


class Collections:
    """Every collection's generation and duration while installed."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.spans.append((info["generation"], time.perf_counter() - self._start))

    def by_generation(self) -> dict[int, tuple[int, float]]:
        return {
            g: (sum(1 for s in self.spans if s[0] == g), sum(d for s, d in self.spans if s == g))
            for g in (0, 1, 2)
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gc_share", description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    args = parser.parse_args(argv)
    pairs = make_pairs(args.pairs)
    collections = Collections()
    with ServerProcess() as srv:
        asyncio.run(library.multi_status(srv.url, pairs, 8, "json", "httpx"))  # warm-up
        gc.callbacks.append(collections)
        try:
            for fmt in ("json", "xml"):
                collections.spans.clear()
                c0 = time.process_time()
                asyncio.run(library.multi_status(srv.url, pairs, 8, fmt, "httpx"))
                cpu = time.process_time() - c0
                total = sum(d for _, d in collections.spans)
                print(
                    f"multi_status {fmt}: {cpu / len(pairs) * 1e6:.2f} us/item of client CPU, "
                    f"collector {total * 1e3:.0f} ms ({total / cpu:.0%}); by generation "
                    "(passes, ms): "
                    + ", ".join(
                        f"{g}: ({n}, {d * 1e3:.0f})"
                        for g, (n, d) in collections.by_generation().items()
                    )
                )
            for fmt in ("json", "xml"):
                for freeze in (False, True):
                    collections.spans.clear()
                    lag = asyncio.run(
                        _lag_of_call(srv.url, fmt, "httpx", 100_000, 3, freeze=freeze)
                    )
                    longest = max((d for _, d in collections.spans), default=0.0)
                    print(
                        f"bulk_status 100,000 {fmt}"
                        f"{', heap frozen after the warm-up' if freeze else ''}: worst stall "
                        f"{lag['worst_lag'] * 1e3:.1f} ms, longest collection "
                        f"{longest * 1e3:.1f} ms"
                    )
        finally:
            gc.callbacks.remove(collections)


if __name__ == "__main__":
    main()
