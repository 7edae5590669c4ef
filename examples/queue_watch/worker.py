"""A fleet of watch workers on SAQ: each worker process runs one `Watcher` on the shared store.

    redis-server --port 6379 --save '' &
    python -m smspartner_async.sandbox --any-key --port 8000 &
    export SMSPARTNER_API_KEY=demo SMSPARTNER_BASE_URL=http://127.0.0.1:8000/v1
    export SMSPARTNER_REDIS_URL=redis://127.0.0.1:6379/0
    saq examples.queue_watch.worker.settings --workers 2 -v     # from the repository root
    python -m examples.queue_watch.service --sandbox-pairs 1000

How it fits together. The sending service enqueues a `watch_pairs` job after each send
(`service.register`). Whichever worker takes it adds the pairs to its `Watcher`, whose
state lives in one `RedisWatchStore` shared by every worker: from then on the pairs belong
to the fleet, not to that worker. Each round, every worker claims the pairs due (a claim
is a lease), asks the API about them and commits what it found; each change found goes to
one worker's `on_change`, which enqueues a `status_changed` job carrying the change. That
job is where your code goes.

How many workers. One `Watcher` per process (a store is used by one watcher at a time),
so run N processes: `saq ... --workers N` on one host, or one per container. They share
the pairs, the changes and, through `shared_limits`, one API rate limit and 429 pause.
One worker keeps `max_concurrency` (8) calls of 500 pairs in flight: the API's rate
limit, which the fleet shares, is the ceiling, not the number of workers. Run two or
more for availability: a crash then delays the dead worker's checks by the lease
instead of stopping every check until a restart. SAQ's `concurrency` (10) is how many
jobs one worker runs at once.

What a crash costs (`kill -9`, an OOM, a lost host), nothing else:

- Pairs the dead worker had claimed stay held until the lease runs out
  (SMSPARTNER_WATCH_LEASE, 600 s), then another worker claims them: checks come late,
  none is lost.
- A change is acknowledged in the store only once its `status_changed` job is enqueued
  (`on_change` returned). A crash in between hands the change out again after the lease:
  at least once. The job key is derived from `change.id` (stable across deliveries), so
  SAQ drops the repeat while the first job is still queued or running; once it has
  finished, the repeat runs again, so `status_changed` must be idempotent by `change.id`
  (below, `HSETNX`; in a database, an upsert or a unique key).
- A `status_changed` or `watch_pairs` job the dead worker was running is swept by another
  worker once SMSPARTNER_JOB_TIMEOUT has passed, and retried. SAQ's sweeper takes such
  jobs one at a time and waits up to 5 s for each to abort, so this takes about
  timeout + 5 s per job the dead worker had (up to `concurrency`). The sweeper can also
  run a job twice that never died (tobymao/saq#277): one more reason to be idempotent.
  Adding pairs again is harmless: a pair already known keeps its state.
- Redis itself down: SAQ, the store and the shared limits all stop. The watch stops, this
  worker stops too and exits non-zero (`_stop_with_the_watch`); run workers under a
  supervisor that restarts them. All state is in Redis: make it durable (AOF) if a
  Redis restart must lose nothing.

SIGTERM (or Ctrl-C) stops a worker cleanly: SAQ cancels the jobs in flight (they are
retried elsewhere), then `shutdown` closes the watcher (what it had claimed goes back at
once) and the client.

Personal data: a change holds a phone number. The job key is a digest of `change.id`, so
SAQ's INFO logs (`-v`) show none; its DEBUG logs (`-vv`) print job arguments in full.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

from redis.asyncio import Redis
from saq import Queue
from saq.types import Context, SettingsDict

from smspartner_async import InvalidInputError, SMSPartnerClient
from smspartner_async.watch import StatusChange, Watcher, WatchStore
from smspartner_async.watch.redis import RedisWatchStore

from .config import Config

__all__ = [
    "WatchContext",
    "change_key",
    "change_to_dict",
    "settings",
    "shutdown",
    "startup",
    "status_changed",
    "watch_pairs",
]

log = logging.getLogger("queue_watch")


class WatchContext(Context, total=False):
    """SAQ's job context, plus what `startup` puts in it for the worker's life."""

    config: Config
    watcher: Watcher
    sink: Redis
    cleanup: AsyncExitStack
    failure: Exception


def make_store(config: Config) -> WatchStore:
    """The watch store every worker of the fleet shares: its own connection, one namespace."""
    return RedisWatchStore(config.redis_url, namespace=config.namespace)


def change_key(change_id: str) -> str:
    """The SAQ job key of a change: the same for every delivery of it (dedup), and without
    the phone number that `change.id` holds (SAQ logs job keys)."""
    return "change-" + hashlib.sha256(change_id.encode()).hexdigest()[:32]


def change_to_dict(change: StatusChange) -> dict[str, Any]:
    """A change as JSON-ready values (SAQ stores job arguments as JSON)."""
    return {
        "id": change.id,
        "index": change.index,
        "phone_number": change.phone_number,
        "message_id": change.message_id,
        "status": change.status.value,
        "previous": None if change.previous is None else change.previous.value,
        "settled": change.settled,
        "reason": None if change.reason is None else change.reason.value,
        "sequence": change.sequence,
        "checked_at": change.checked_at,
        "date": None if change.date is None else change.date.isoformat(),
        "code": change.code,
        "message": change.message,
    }


# -- the jobs ------------------------------------------------------------------------------


async def watch_pairs(
    ctx: WatchContext, *, pairs: Sequence[Sequence[Any]], sent_at: float | None = None
) -> int:
    """Watch these (phone, message id) pairs from now on; returns how many were new.

    Enqueued by `service.register`. Adding a pair already known does nothing, so a
    retry after a crash is harmless. A malformed pair would refuse the whole batch:
    then each pair is added on its own and the bad ones are logged (by position) and
    dropped, since retrying cannot fix them.
    """
    watcher = ctx["watcher"]
    given = [(phone, message_id) for phone, message_id in pairs]
    try:
        return await watcher.add(given, sent_at=sent_at)
    except InvalidInputError:
        added = 0
        for position, pair in enumerate(given):
            try:
                added += await watcher.add([pair], sent_at=sent_at)
            except InvalidInputError:
                log.warning("watch_pairs: pair %d is not a (phone, message id); dropped", position)
        return added


async def status_changed(ctx: WatchContext, *, change: dict[str, Any]) -> None:
    """One status change (`change_to_dict`): YOUR CODE GOES HERE.

    Runs at least once per change: again after a crash, and when it raises (SAQ retries
    it). So make it idempotent by `change["id"]`. This demo records the change in a
    Redis hash with HSETNX (a repeat changes nothing) and logs it; in your application,
    update the message's row (an upsert keyed on the id), notify a user, call a webhook
    carrying the id as an idempotency key.
    """
    key = change_key(change["id"])
    first = await ctx["sink"].hsetnx(ctx["config"].changes_key, change["id"], json.dumps(change))
    settled = f" settled ({change['reason']})" if change["settled"] else ""
    if first:
        log.info(
            "change %s recorded: message %s #%d %s%s",
            key,
            change["message_id"],
            change["sequence"],
            change["status"],
            settled,
        )
    else:
        log.info("change %s repeated: already recorded", key)


# -- the worker's life ---------------------------------------------------------------------


async def startup(ctx: WatchContext) -> None:
    """One client and one running `Watcher` for this worker's life (closed by `shutdown`).

    `on_change` enqueues a `status_changed` job and returns once SAQ has it: only then
    does the watcher acknowledge the change in the store. So a crash before that point
    hands the change out again, and nothing is lost between the watch and the queue.
    """
    config = Config.from_env()
    queue = ctx["worker"].queue
    cleanup = AsyncExitStack()
    try:
        # SMSPARTNER_API_KEY and SMSPARTNER_BASE_URL come from the environment; the
        # fleet shares one rate limit (when set) and every 429 pause through Redis.
        client = await cleanup.enter_async_context(
            SMSPartnerClient(
                max_requests_per_second=config.max_requests_per_second,
                shared_limits=config.redis_url,
            )
        )
        # No socket timeout (see smspartner_async/_redis_commands.py: through asyncio.wait_for,
        # redis-py can drop a cancellation on Python 3.11); the job's timeout bounds it.
        sink = Redis.from_url(config.redis_url, socket_timeout=None)
        cleanup.push_async_callback(sink.aclose)

        async def on_change(change: StatusChange) -> None:
            await queue.enqueue(
                "status_changed",
                change=change_to_dict(change),
                key=change_key(change.id),
                timeout=config.job_timeout,
                retries=10,
                retry_delay=1.0,
                retry_backoff=60,
            )

        watcher = await cleanup.enter_async_context(
            Watcher(
                client,
                store=make_store(config),
                schedule=config.schedule,
                on_change=on_change,
                lease=config.lease,
            )
        )
        stopper = asyncio.create_task(_stop_with_the_watch(ctx, watcher))
        cleanup.callback(stopper.cancel)
    except BaseException:
        await cleanup.aclose()
        raise
    ctx["config"], ctx["watcher"], ctx["sink"], ctx["cleanup"] = config, watcher, sink, cleanup
    log.info("watch worker ready: queue %s, store %s", queue.name, config.namespace)


async def shutdown(ctx: WatchContext) -> None:
    """Close the watcher (its claims go back to the fleet at once), then the client."""
    cleanup = ctx.get("cleanup")
    if cleanup is not None:
        await cleanup.aclose()
    failure = ctx.get("failure")
    if failure is not None:
        raise failure  # the process exits non-zero: its supervisor restarts it


async def _stop_with_the_watch(ctx: WatchContext, watcher: Watcher) -> None:
    """A watch that stopped on its own (a bad key, Redis gone) stops this worker too, rather
    than leave it taking `watch_pairs` jobs it cannot serve."""
    try:
        await watcher.wait()
    except Exception as exc:
        ctx["failure"] = exc
    if not ctx["worker"].event.is_set():  # not shutting down already
        log.critical("the watch stopped; stopping this worker")
        ctx["worker"].event.set()


def settings() -> SettingsDict[WatchContext]:
    """SAQ's worker settings (`saq examples.queue_watch.worker.settings`), from the env."""
    config = Config.from_env()
    return {
        "queue": Queue.from_url(config.redis_url, name=config.queue),
        "functions": [watch_pairs, status_changed],
        "concurrency": config.concurrency,
        "startup": startup,
        "shutdown": shutdown,
        # SAQ's defaults but the sweep, which finds the jobs of a worker that died.
        "timers": {"schedule": 1, "worker_info": 10, "sweep": config.sweep_every, "abort": 1},
    }
