"""A watch worker of the callback fleet test: a Watcher on a shared Redis store, no receiver.

    python -m tests.callback_worker REDIS_URL NAMESPACE --pairs 3

Watches on a sandbox whose statuses are final, with a schedule whose first check is an
hour away: the only way a change can come soon is a hint put into the store by another
process. Adds nothing itself (the test process adds the pairs); prints "ready", then one
JSON line per change, as it comes.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from smspartner_async.sandbox import Sandbox
from smspartner_async.testing import sandbox_client
from smspartner_async.watch import Schedule, StatusChange, Watcher
from smspartner_async.watch.redis import RedisWatchStore


async def main(args: argparse.Namespace) -> None:
    def show(change: StatusChange) -> None:
        print(
            json.dumps(
                {
                    "phone": change.phone_number,
                    "id": change.message_id,
                    "status": change.status.value,
                    "settled": change.settled,
                }
            ),
            flush=True,
        )

    async with (
        sandbox_client(Sandbox(api_key=None)) as client,
        Watcher(
            client,
            store=RedisWatchStore(args.redis_url, namespace=args.namespace),
            schedule=Schedule(intervals=(3600,)),
            on_change=show,
        ) as watcher,
    ):
        print("ready", flush=True)
        await watcher.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("namespace")
    asyncio.run(main(parser.parse_args()))
