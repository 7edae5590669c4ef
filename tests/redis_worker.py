"""One worker process of the fleet tests in test_redis_flow.py: its own client, shared limits.

    python -m tests.redis_worker BASE_URL REDIS_URL --key KEY --rate 10 --seconds 15 \
        --phone +33600000000 --message-id 1000000

Builds a client with `shared_limits=REDIS_URL`, prints "ready", waits for a line on stdin,
then sends message-status requests for PHONE from `--tasks` tasks for `--seconds` (tasks still
waiting for their turn are cancelled then), and prints one JSON line: what its client counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

from smspartner_async import SMSPartnerClient, SMSPartnerError


async def main(args: argparse.Namespace) -> None:
    client = SMSPartnerClient(
        args.key,
        base_url=args.base_url,
        shared_limits=args.redis_url,
        max_requests_per_second=args.rate,
        max_concurrency=args.tasks,
    )
    errors: Counter[str] = Counter()
    answered = 0

    async def run() -> None:
        nonlocal answered
        while True:
            try:
                await client.message_status(args.phone, args.message_id)
            except SMSPartnerError as exc:
                errors[type(exc).__name__] += 1
            else:
                answered += 1

    async with client:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        try:
            async with asyncio.timeout(args.seconds), asyncio.TaskGroup() as group:
                for _ in range(args.tasks):
                    group.create_task(run())
        except TimeoutError:
            pass
        stats = client.stats
        report = {
            "requests": stats.requests,
            "rate_limited": stats.rate_limited,
            "answered": answered,
            "errors": dict(errors),
        }
    print(json.dumps(report), flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.redis_worker")
    parser.add_argument("base_url")
    parser.add_argument("redis_url")
    parser.add_argument("--key", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--phone", required=True)
    parser.add_argument("--message-id", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=4)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
