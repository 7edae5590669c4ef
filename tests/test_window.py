"""`run_windowed`: a bounded window of tasks over a stream, results in input or completion order."""

from __future__ import annotations

import asyncio

from smspartner_async._window import run_windowed


async def test_finished_tasks_come_out_oldest_first() -> None:
    """Several tasks finishing in one loop step come out in the order they were started.

    Picking any member of asyncio.wait's `done` set (set order, by hash) could pass over the
    same finished task round after round while newer ones went out: one call's results then
    came out at the end of a run, and a consumer restoring input order (`check --ordered`)
    held nearly everything until then.
    """
    gates = [asyncio.Event() for _ in range(40)]

    async def worker(i: int) -> int:
        await gates[i].wait()
        return i

    out: list[int] = []
    stream = run_windowed(range(40), worker, 20, ordered=False)
    for _ in range(40):
        step = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # the window is full: 20 tasks started, waiting for their gates
        for gate in gates:
            gate.set()  # every started task (and any started later) finishes at once
        out.append(await step)
    await stream.aclose()
    assert out == list(range(40))


async def test_completion_order_when_tasks_finish_apart() -> None:
    gates = [asyncio.Event() for _ in range(3)]

    async def worker(i: int) -> int:
        await gates[i].wait()
        return i

    stream = run_windowed(range(3), worker, 3, ordered=False)
    step = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    gates[2].set()
    assert await step == 2  # finished first, out first: not held behind 0 and 1
    gates[0].set()
    gates[1].set()
    assert [await anext(stream), await anext(stream)] == [0, 1]
    await stream.aclose()
