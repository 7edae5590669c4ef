"""What a sending service calls after each send: hand the pairs to the fleet of watch workers.

    from saq import Queue
    from examples.queue_watch.service import register

    queue = Queue.from_url("redis://127.0.0.1:6379/0", name="smspartner-watch")
    await queue.connect()
    ...                                      # send the SMS, get its message id
    await register(queue, [(phone, message_id) for phone in recipients])

From a shell, against the sandbox (its pairs come from the same seed as the server's):

    python -m examples.queue_watch.service --sandbox-pairs 1000 [--seed 0]
    python -m examples.queue_watch.service < pairs.csv       # phone,message_id lines

The service only enqueues: it needs Redis, not the API key, and returns as soon as SAQ
has the job. A worker adds the pairs to the shared watch (see `worker.py`); a job lost
with a crashed worker is swept and retried, and adding pairs twice changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from saq import Job, Queue

from .config import Config

__all__ = ["register"]

Pair = tuple[str, int | str]

#: Pairs per `watch_pairs` job: a job's arguments are one JSON value in Redis.
CHUNK = 5_000


async def register(
    queue: Queue,
    pairs: Iterable[Pair],
    sent_at: float | datetime | None = None,
    *,
    chunk: int = CHUNK,
    job_timeout: int = 60,
) -> list[Job]:
    """Enqueue `watch_pairs` jobs for these (phone, message id) pairs; returns the jobs.

    `sent_at` (epoch seconds or an aware datetime, default now) is when the messages
    left: each pair's schedule and 48-hour window count from it, however long the job
    waits in the queue. Pairs are validated by the worker: a malformed one is logged
    and dropped there.
    """
    if isinstance(sent_at, datetime):
        if sent_at.tzinfo is None:
            raise ValueError("sent_at must be an aware datetime")
        sent = sent_at.timestamp()
    else:
        sent = time.time() if sent_at is None else float(sent_at)
    jobs: list[Job] = []
    items = iter(pairs)
    while batch := list(itertools.islice(items, chunk)):
        job = await queue.enqueue(
            "watch_pairs",
            pairs=[[phone, message_id] for phone, message_id in batch],
            sent_at=sent,
            timeout=job_timeout,
            retries=5,
            retry_delay=1.0,
            retry_backoff=30,
        )
        if job is not None:  # None only for a key already queued; these keys are new
            jobs.append(job)
    return jobs


def _read_pairs(lines: Iterable[str]) -> list[Pair]:
    pairs: list[Pair] = []
    for line in lines:
        phone, _, message_id = line.strip().partition(",")
        if phone and message_id and not phone.startswith("phone"):
            pairs.append((phone, message_id.strip()))
    return pairs


async def run(args: argparse.Namespace) -> int:
    if args.sandbox_pairs:
        from smspartner_async.sandbox import SandboxData

        pairs: list[Pair] = list(SandboxData(args.seed).sample_pairs(args.sandbox_pairs))
    else:
        pairs = _read_pairs(sys.stdin)
    config = Config.from_env()
    queue = Queue.from_url(config.redis_url, name=config.queue)
    await queue.connect()
    try:
        jobs = await register(queue, pairs)
    finally:
        await queue.disconnect()
    print(f"registered {len(pairs)} pairs in {len(jobs)} jobs on queue {config.queue}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.queue_watch.service",
        description="Register (phone, message id) pairs with the watch workers.",
    )
    parser.add_argument("--sandbox-pairs", type=int, default=0, help="N pairs of the sandbox")
    parser.add_argument("--seed", type=int, default=0, help="the sandbox's --seed")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
