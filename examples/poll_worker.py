"""A worker that polls `Waiting` messages until they settle, backing off between rounds.

    python examples/poll_worker.py --sandbox            # simulated time: instant
    python examples/poll_worker.py --sandbox --real-time
    SMSPARTNER_API_KEY=... python examples/poll_worker.py < pairs.csv   # phone,message_id lines

Each round asks only about the pairs still pending, in one `multi_status`
(batched and bounded by the client), so the load shrinks as messages settle.
A pair stops being polled when its status is final (`DeliveryStatus.is_final`)
or when the API answers for the item itself (e.g. code 4, not found: asking
again will not help). A pair whose call failed for good is asked again next
round. The wait doubles each round up to a cap, because operators report most
statuses within seconds and the stragglers within minutes; `max_rounds` ends
the polling for numbers whose status never comes.

`sleep` is a parameter so that a test (or this script's simulated mode) can
advance a fake clock instead of waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import attrs

from smspartner_async import (
    APIConnectionError,
    MultiStatusResult,
    RateLimitError,
    ServerError,
    SMSPartnerClient,
)

Pair = tuple[str, int | str]
Sleep = Callable[[float], Awaitable[None]]


@attrs.frozen
class Backoff:
    """Waits between rounds: `first`, then times `factor`, never more than `cap` seconds."""

    first: float = 2.0
    factor: float = 2.0
    cap: float = 60.0
    max_rounds: int = 8

    def delay(self, after_round: int) -> float:
        return min(self.first * self.factor ** (after_round - 1), self.cap)


@attrs.define
class Outcome:
    """Where every input pair ended up, by input index."""

    settled: dict[int, MultiStatusResult] = attrs.field(factory=dict)
    pending: dict[int, MultiStatusResult] = attrs.field(factory=dict)
    rounds: int = 0


def is_settled(result: MultiStatusResult) -> bool:
    if result.error is not None:
        return False  # the call failed, not the message: ask again
    if not result.ok:
        return True  # the API's own answer for this item
    return result.status.is_final


async def poll_until_settled(
    client: SMSPartnerClient,
    pairs: Sequence[Pair],
    *,
    backoff: Backoff | None = None,
    sleep: Sleep = asyncio.sleep,
    on_round: Callable[[int, int, int], None] | None = None,
) -> Outcome:
    """Poll until every pair settles or `backoff.max_rounds` rounds have run.

    `on_round(round, asked, still_pending)` is called after each round.
    """
    backoff = backoff if backoff is not None else Backoff()
    outcome = Outcome()
    pending = list(range(len(pairs)))
    while pending and outcome.rounds < backoff.max_rounds:
        if outcome.rounds:
            await sleep(backoff.delay(outcome.rounds))
        outcome.rounds += 1
        try:
            results = await client.multi_status([pairs[i] for i in pending])
        except (APIConnectionError, ServerError, RateLimitError):
            results = []  # an outage: not one call answered; every pair is asked again
        still: list[int] = [] if results else list(pending)
        for result in results:
            index = pending[result.index]
            if is_settled(result):
                outcome.settled[index] = result
                outcome.pending.pop(index, None)
            else:
                outcome.pending[index] = result
                still.append(index)
        if on_round is not None:
            on_round(outcome.rounds, len(pending), len(still))
        pending = still
    return outcome


class FakeClock:
    """Simulated time: `sleep` moves `now` forward at once. For tests and the sandbox demo."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def _read_pairs(lines: Sequence[str]) -> list[Pair]:
    pairs: list[Pair] = []
    for line in lines:
        phone, _, message_id = line.strip().partition(",")
        if phone and message_id and not phone.startswith("phone"):
            pairs.append((phone, message_id.strip()))
    return pairs


async def run(args: argparse.Namespace) -> int:
    backoff = Backoff(first=args.first_delay, max_rounds=args.max_rounds)
    sleep: Sleep = asyncio.sleep
    client_cm: AbstractAsyncContextManager[SMSPartnerClient]
    if args.sandbox:
        from smspartner_async.sandbox import Sandbox
        from smspartner_async.testing import sandbox_client

        fake = FakeClock()
        clock: Callable[[], float] = time.monotonic if args.real_time else fake
        if not args.real_time:
            sleep = fake.sleep
        sandbox = Sandbox(api_key=None, clock=clock)
        pairs: list[Pair] = list(sandbox.data.sample_pairs(args.pairs))
        client_cm = sandbox_client(sandbox)
    else:
        pairs = _read_pairs(sys.stdin.readlines())
        client_cm = SMSPartnerClient()

    def report(round_: int, asked: int, still: int) -> None:
        last = not still or round_ == backoff.max_rounds
        wait = "" if last else f"; next round in {backoff.delay(round_):.0f} s"
        print(f"round {round_}: asked {asked}, {still} still waiting{wait}")

    async with client_cm as client:
        outcome = await poll_until_settled(
            client, pairs, backoff=backoff, sleep=sleep, on_round=report
        )
    print(f"{len(outcome.settled)} settled, {len(outcome.pending)} still pending")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sandbox", action="store_true", help="poll the built-in emulator")
    parser.add_argument("--real-time", action="store_true", help="sandbox: really wait")
    parser.add_argument("--pairs", type=int, default=2000, help="sandbox: pairs to poll")
    parser.add_argument("--max-rounds", type=int, default=8)
    parser.add_argument("--first-delay", type=float, default=2.0)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
