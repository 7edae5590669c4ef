"""The watch store on Redis (`RedisWatchStore`): the `WatchStore` contract, leases, a fleet.

Real Redis, real processes. Like tests/test_redis_flow.py, the tests read Redis's URL from
SMSPARTNER_TEST_REDIS_URL and skip without it, saying how to run them; with CI=true they
fail instead. Each test works under a namespace of its own and deletes its keys.

The fleet tests run this file as a worker: `python tests/test_redis_store.py worker ...`
runs one `Watcher` over the sandbox's pairs with a `RedisWatchStore`, in real time with a
compressed schedule and a sandbox whose statuses settle 30 times faster; it logs every pair
it claims (with its due time: a pair is asked once per due time, so two workers asking in
the same round would both log it) and every change it reports.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from smspartner_async import ClientStateError, DeliveryStatus, InvalidInputError
from smspartner_async.watch import (
    TAKE,
    MemoryStore,
    NewPair,
    PairUpdate,
    Schedule,
    SettleReason,
    StatusChange,
    Watcher,
    WatchStore,
    watch,
)
from tests import test_watch_store as contract
from tests.redis_support import RedisServer, free_port
from tests.test_watch_store import change, claim, keep, pair, settle, take

try:
    import redis
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.crc import key_slot

    from smspartner_async.watch.redis import RedisWatchStore, WatchStoreUnavailableError
except ImportError as exc:  # pragma: no cover - tests.test_redis_flow skips (or fails) first
    pytest.skip(f"needs the redis extra ({exc})", allow_module_level=True)

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
W, D = DeliveryStatus.WAITING, DeliveryStatus.DELIVERED

# The fleet: sandbox pairs, seconds of the watch, the sandbox running SPEED times faster (its
# Waiting statuses settle 2 to 60 s of its time after the start: within 2 s here).
SEED = 7
PAIRS = 20_000
SPEED = 30.0
SCHEDULE = Schedule(intervals=(0.5, 0.5, 1.0), window=6.0, not_found_grace=1.0)
PAGE = 1_000  # pages of 1,000 rather than 8,000: the workers interleave more
WORKERS = 3


# -- Redis for the tests ------------------------------------------------------------------------


def drop_keys(url: str, namespace: str) -> None:
    with redis.Redis.from_url(url) as r:
        keys = list(r.scan_iter(match=f"{{{namespace}}}:*", count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    ns = f"test:{uuid.uuid4().hex}"
    yield ns
    drop_keys(redis_url, ns)


@pytest.fixture
async def stores(redis_url: str, namespace: str) -> AsyncIterator[list[RedisWatchStore]]:
    """Stores the test opens (on `namespace`: workers of one fleet), closed at teardown."""
    made: list[RedisWatchStore] = []
    yield made
    for made_store in made:
        await made_store.close()


async def worker_store(made: list[RedisWatchStore], url: str, namespace: str) -> RedisWatchStore:
    opened = RedisWatchStore(url, namespace=namespace)
    await opened.open()
    made.append(opened)
    return opened


@pytest.fixture
async def store(stores: list[RedisWatchStore], redis_url: str, namespace: str) -> WatchStore:
    return await worker_store(stores, redis_url, namespace)


async def claim_lease(s: WatchStore, lease: float, now: float = 100.0) -> list[int]:
    return [p.message_id for p in await s.claim(now=now, limit=100, lease=lease)]


# -- the WatchStore contract, as tests/test_watch_store.py checks it on memory and SQLite ------
#
# The same test functions, run on this module's `store` fixture. "Opening again releases
# what was held" holds here because `close` hands back what that store object held; what
# another worker opening does (nothing) is the next test's business.

test_known_pairs_keep_their_state = contract.test_known_pairs_keep_their_state
test_claims_come_due_first_and_are_held_until_committed = (
    contract.test_claims_come_due_first_and_are_held_until_committed
)
test_opening_again_releases_what_was_held = contract.test_opening_again_releases_what_was_held
test_commit_applies_state_and_appends_changes_in_order = (
    contract.test_commit_applies_state_and_appends_changes_in_order
)
test_the_outbox_hands_out_each_change_until_acknowledged = (
    contract.test_the_outbox_hands_out_each_change_until_acknowledged
)
test_prune_forgets_pairs_settled_long_ago = contract.test_prune_forgets_pairs_settled_long_ago
test_a_hint_makes_a_pending_pair_due_now = contract.test_a_hint_makes_a_pending_pair_due_now
test_a_hint_without_a_phone_reaches_every_recipient_of_the_message = (
    contract.test_a_hint_without_a_phone_reaches_every_recipient_of_the_message
)
test_a_hint_leaves_a_settled_pair_alone = contract.test_a_hint_leaves_a_settled_pair_alone
test_a_hint_before_the_add_makes_the_pair_due_once_added = (
    contract.test_a_hint_before_the_add_makes_the_pair_due_once_added
)
test_a_hint_kept_for_a_pair_not_added_expires = (
    contract.test_a_hint_kept_for_a_pair_not_added_expires
)
test_a_held_pair_hinted_is_due_at_the_hint_once_committed = (
    contract.test_a_held_pair_hinted_is_due_at_the_hint_once_committed
)
test_counts_and_the_backlog = contract.test_counts_and_the_backlog
test_bells_ring_for_work_and_wait_for_it = contract.test_bells_ring_for_work_and_wait_for_it


# -- what a shared store promises ----------------------------------------------------------------


async def test_what_one_worker_does_rings_the_bells_of_the_others(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    # Within half of RECHECK: it is the notice that rings, not a worker looking again.
    one = await worker_store(stores, redis_url, namespace)
    other = await worker_store(stores, redis_url, namespace)
    await asyncio.sleep(0.2)  # both listening
    bells = other.bells
    seen = bells.due.rung
    await one.add([pair(1), pair(2)])
    assert await bells.due.wait(seen, 0.5)
    seen = bells.outbox.rung
    await claim(one)
    await one.commit([settle(1), keep(2, 500.0)], [change(1, status=D)])
    assert await bells.outbox.wait(seen, 0.5)
    seen = bells.room.rung
    taken = await one.take_changes(now=0.0, limit=10, lease=60.0)
    await one.ack([c.id for c in taken])
    assert await bells.room.wait(seen, 0.5)
    seen = bells.due.rung
    assert await one.hint(2, pair(2).phone_number, now=100.0) == 1
    assert await bells.due.wait(seen, 0.5)


async def test_another_worker_opening_releases_nothing_a_lapsed_lease_does(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    first = await worker_store(stores, redis_url, namespace)
    await first.add([pair(1), pair(2, due=20.0)])
    assert await claim_lease(first, lease=0.4) == [1, 2]
    second = await worker_store(stores, redis_url, namespace)  # opening takes nothing back
    assert await claim_lease(second, lease=60.0) == []
    assert await second.next_due() == 10.0  # held pairs are pending for everyone
    await asyncio.sleep(0.5)  # the lease runs out (on Redis's clock)
    claimed = await second.claim(now=100.0, limit=10, lease=60.0)
    assert [(p.message_id, p.due_at, p.status, p.sequence) for p in claimed] == [
        (1, 10.0, None, 0),
        (2, 20.0, None, 0),
    ]


async def test_a_stale_commit_is_dropped_for_the_pairs_taken_over(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    a = await worker_store(stores, redis_url, namespace)
    b = await worker_store(stores, redis_url, namespace)
    await a.add([pair(1), pair(2), pair(3)])
    assert await claim_lease(a, lease=0.3) == [1, 2, 3]
    await asyncio.sleep(0.4)
    assert await claim_lease(b, lease=60.0, now=10.0) == [1, 2, 3]  # A's lease ran out
    # A comes back from its stall and commits its round: nothing of it applies.
    await a.commit(
        [settle(1), keep(2, 500.0), keep(3, 600.0)],
        [change(1, status=D), change(2), change(3)],
    )
    assert await take(b) == []
    assert await claim_lease(b, now=1000.0, lease=60.0) == []  # still B's
    await b.commit([keep(1, 40.0), settle(2), keep(3, 700.0, status=None, sequence=0)], [change(1)])
    assert await take(b) == ["+33600000001:1:1"]
    claimed = await b.claim(now=1000.0, limit=10, lease=60.0)
    assert [(p.message_id, p.due_at, p.status) for p in claimed] == [(1, 40.0, W), (3, 700.0, None)]
    assert await b.add([pair(2)]) == 0  # settled by B


async def test_a_lapsed_hold_nobody_claimed_since_still_commits(store: WatchStore) -> None:
    await store.add([pair(1)])
    assert await claim_lease(store, lease=0.1) == [1]
    await asyncio.sleep(0.2)
    assert await store.next_due() == 10.0
    await store.commit([keep(1, 70.0)], [change(1)])
    assert await store.next_due() == 70.0
    assert await take(store) == ["+33600000001:1:1"]


async def test_leases_run_on_redis_time_not_on_the_callers_now(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    """Workers' clocks differ (and a watcher's may be simulated): a `now` far ahead expires
    no one's lease. `now` only says which pairs are due."""
    a = await worker_store(stores, redis_url, namespace)
    b = await worker_store(stores, redis_url, namespace)
    await a.add([pair(1)])
    assert await claim_lease(a, lease=60.0) == [1]
    assert await claim_lease(b, lease=60.0, now=1e12) == []


async def test_takes_are_leases_each_change_to_one_consumer(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    a = await worker_store(stores, redis_url, namespace)
    b = await worker_store(stores, redis_url, namespace)
    await a.add([pair(n) for n in range(1, 5)])
    await claim_lease(a, lease=60.0)
    await a.commit([], [change(n) for n in range(1, 5)])
    first = [c.id for c in await a.take_changes(now=0.0, limit=2, lease=0.3)]
    second = [c.id for c in await b.take_changes(now=0.0, limit=10, lease=60.0)]
    assert first == ["+33600000001:1:1", "+33600000002:2:1"]
    assert second == ["+33600000003:3:1", "+33600000004:4:1"]
    await a.ack([first[0]])
    third = await worker_store(stores, redis_url, namespace)
    assert await take(third) == []  # opening took nothing back
    await asyncio.sleep(0.4)
    assert await take(third) == [first[1]]  # A's lease ran out; its acknowledged one is gone


async def test_close_hands_back_only_what_the_store_still_holds(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    a = await worker_store(stores, redis_url, namespace)
    b = await worker_store(stores, redis_url, namespace)
    await a.add([pair(1), pair(2)])
    assert await claim_lease(a, lease=0.2) == [1, 2]
    await asyncio.sleep(0.3)
    assert await claim_lease(b, lease=60.0) == [1, 2]  # A's lease ran out: B has them now
    await a.close()  # must not hand B's holds back
    c = await worker_store(stores, redis_url, namespace)
    assert await claim_lease(c, lease=60.0) == []
    await b.close()  # B stops on purpose: the others need not wait for its lease
    assert await claim_lease(c, lease=60.0) == [1, 2]


async def test_changes_come_back_whole(store: WatchStore) -> None:
    paris = timezone(timedelta(hours=2))
    found = [
        StatusChange(
            7, "+33600000007", 7, DeliveryStatus.UNKNOWN, None, True, SettleReason.API_ERROR,
            1, 1234.5, None, 4, "Message introuvable | \t\n« é »",
        ),
        StatusChange(
            8, "+33600000008", 8, D, W, True, SettleReason.FINAL, 2, 99.25,
            datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=paris),
        ),
    ]  # fmt: skip
    await store.add([pair(7), pair(8)])
    await store.claim(now=100.0, limit=10, lease=60.0)
    await store.commit(
        [
            PairUpdate("+33600000007", 7, None, DeliveryStatus.UNKNOWN, 1, 50.0),
            PairUpdate("+33600000008", 8, None, D, 2, 50.0),
        ],
        found,
    )
    back = await store.take_changes(now=0.0, limit=10, lease=60.0)
    assert back == found
    assert back[1].date is not None and back[1].date.utcoffset() == timedelta(hours=2)


async def test_keys_share_one_slot_and_a_pending_pair_costs_little(
    store: RedisWatchStore, redis_url: str, namespace: str
) -> None:
    n = 2_000
    assert await store.add([pair(i) for i in range(n)]) == n
    await store.claim(now=100.0, limit=300, lease=60.0)  # some held, some free
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        keys = [k.decode() async for k in r.scan_iter(match=f"{{{namespace}}}:*")]
        assert keys and all(k.startswith(f"{{{namespace}}}:") for k in keys)
        assert len({key_slot(k.encode()) for k in keys}) == 1  # one slot: fine on a cluster
        held = ("held", "held_due", "holder")
        await store.commit([keep(i, 500.0) for i in range(300)], [])  # none held any more
        used = 0
        for k in keys:
            if not k.endswith(held):
                used += await r.memory_usage(k, samples=0) or 0
    # Bytes per pending pair (the benchmark measures more): its record, its due time, and
    # its entry in the message-id index that hints without a phone number use.
    assert used / n < 400, used / n


async def test_construction_checks_and_secrets(redis_url: str, namespace: str) -> None:
    with pytest.raises(InvalidInputError):
        RedisWatchStore(redis_url, namespace="{braces}")
    with pytest.raises(InvalidInputError):
        RedisWatchStore(42)  # type: ignore[arg-type]
    secret = RedisWatchStore("redis://:hunter2-secret@127.0.0.1:1/0", namespace="n")
    assert isinstance(secret, WatchStore)
    assert "hunter2" not in repr(secret) and "closed" in repr(secret)
    with pytest.raises(ClientStateError):
        await secret.claim(now=0.0, limit=1, lease=1.0)  # not open


async def test_an_injected_client_is_never_closed(redis_url: str, namespace: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        injected = RedisWatchStore(client, namespace=namespace)
        await injected.open()
        await injected.add([pair(1)])
        assert await claim(injected) == [1]  # decoded replies work too
        await injected.close()
        assert await client.ping()
        await injected.open()  # reopened on the same client
        assert await claim(injected) == [1]  # handed back at close
        await injected.close()
    finally:
        await client.aclose()


async def test_a_namespace_of_another_layout_version_is_refused(
    redis_url: str, namespace: str
) -> None:
    with redis.Redis.from_url(redis_url) as r:
        r.set(f"{{{namespace}}}:version", "999")
    other = RedisWatchStore(redis_url, namespace=namespace)
    with pytest.raises(ClientStateError, match="another version"):
        await other.open()
    assert "closed" in repr(other)


# -- Redis unavailable ---------------------------------------------------------------------------


async def test_an_unreachable_redis_is_a_typed_error_not_a_hang() -> None:
    began = time.monotonic()
    closed = f"redis://:pw-secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(WatchStoreUnavailableError) as caught:
        await RedisWatchStore(closed, namespace="x").open()
    assert isinstance(caught.value, ClientStateError)
    assert "pw-secret" not in str(caught.value)
    # An injected client keeps its own retries (redis-py's default: 3, over some 3 s).
    client = redis.asyncio.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    with pytest.raises(WatchStoreUnavailableError):
        await RedisWatchStore(client, namespace="x").open()
    await client.aclose()
    assert time.monotonic() - began < 5


async def test_redis_going_away_stops_a_watcher_with_the_typed_error(
    own_redis: RedisServer,
) -> None:
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client

    own_redis.start()
    shared = RedisWatchStore(own_redis.url, namespace="w")
    await shared.open()
    await shared.add([pair(1)])
    own_redis.stop()
    began = time.monotonic()
    with pytest.raises(WatchStoreUnavailableError):
        await shared.claim(now=100.0, limit=10, lease=60.0)
    await shared.close()  # cannot hand back its holds: logged, and the client is closed
    own_redis.start()  # the same port, empty: a new store works at once
    again = RedisWatchStore(own_redis.url, namespace="w")
    await again.open()
    await again.close()

    sandbox = Sandbox(seed=SEED, api_key=None)
    fast = Schedule(intervals=(0.2,), window=60.0)
    async with sandbox_client(sandbox) as client:
        store = RedisWatchStore(own_redis.url, namespace="w")
        watcher = Watcher(client, store=store, schedule=fast, lease=5.0)

        async def watch_while_redis_stops() -> None:
            async with watcher:
                await watcher.add(list(sandbox.data.sample_pairs(10)))
                own_redis.stop()
                await asyncio.wait_for(watcher.wait(), 10)

        with pytest.raises(WatchStoreUnavailableError):
            await watch_while_redis_stops()
    assert time.monotonic() - began < 15


# -- what the Watcher does for a shared store ----------------------------------------------------
#
# When `take_changes` finds nothing, the reader resets the backlog (what this process found
# has been taken and acknowledged, maybe elsewhere), and waits for its own commits at most a
# second of real time before looking at the store again.


async def test_a_consumer_sees_what_other_workers_commit(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client

    other = await worker_store(stores, redis_url, namespace)
    async with (
        sandbox_client(Sandbox(seed=SEED, api_key=None)) as client,
        Watcher(client, store=RedisWatchStore(redis_url, namespace=namespace)) as watcher,
        aclosing(watcher.changes()) as changes,
    ):
        first = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.3)  # nothing yet: the consumer waits
        await other.add([pair(1)])
        await claim(other)
        await other.commit([settle(1)], [change(1, status=D)])  # another worker found it
        try:
            got = await asyncio.wait_for(first, 2.0)
        finally:
            first.cancel()
        assert got.id == "+33600000001:1:1"


async def test_a_worker_keeps_polling_when_others_consume_its_changes(
    stores: list[RedisWatchStore], redis_url: str, namespace: str
) -> None:
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client

    other = await worker_store(stores, redis_url, namespace)

    first = asyncio.Lock()

    class Consumed(RedisWatchStore):
        """Another worker's consumer takes and acknowledges each round's changes first."""

        async def commit(
            self, updates: Sequence[PairUpdate], found: Sequence[StatusChange]
        ) -> None:
            async with first:
                await super().commit(updates, found)
                taken = await other.take_changes(now=0.0, limit=100, lease=60.0)
                await other.ack([c.id for c in taken])

        async def take_changes(self, *, now: float, limit: int, lease: float) -> list[Any]:
            async with first:
                return await super().take_changes(now=now, limit=limit, lease=lease)

    sandbox = Sandbox(seed=SEED, api_key=None)
    records = ((p, sandbox.data.status_of(*p)) for p in sandbox.data.sample_pairs(50))
    final = [p for p, r in records if r is not None and r.status != "Waiting"]  # one round each
    quick = Schedule(intervals=(0.1,), window=60.0, not_found_grace=0.0)
    store = Consumed(redis_url, namespace=namespace)
    async with (
        sandbox_client(sandbox) as client,
        Watcher(client, store=store, schedule=quick, page_size=1, max_backlog=1) as watcher,
        aclosing(watcher.changes()) as changes,
    ):

        async def read() -> None:
            async for _ in changes:  # whatever this worker gets to report
                pass

        reading = asyncio.ensure_future(read())
        await watcher.add(final[:3])
        try:
            async with asyncio.timeout(2.0):
                while await other.next_due() is not None:  # noqa: ASYNC110 - Redis's state
                    await asyncio.sleep(0.05)
        finally:
            reading.cancel()
            await asyncio.wait([reading])


# -- a fleet of worker processes -----------------------------------------------------------------


def worker(
    url: str,
    namespace: str,
    out: str,
    lease: str,
    kill_at: str,
    adds: str = "yes",
    pairs_count: str = str(PAIRS),
    reader: str = "changes",
) -> None:
    """One worker of the fleet (see the module docstring); KILL_AT > 0: SIGKILL itself
    just before its KILL_AT-th commit, holding that page and the one claimed ahead.

    ADDS "yes": it adds the pairs itself; "no": it only watches what others add. Every
    worker enters its `Watcher` (on a store that may still be empty) before it says
    "ready", and runs until the fleet has settled every pair and reported every change.
    READER "changes": it acknowledges each change as it goes; "batches": each batch.
    """
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client

    kill = int(kill_at)
    count = int(pairs_count)
    claims = open(out + ".claims", "a", encoding="utf-8")  # noqa: SIM115 - lives as long
    sink = open(out + ".changes", "a", encoding="utf-8")  # noqa: SIM115 - as the process
    start = [0.0]

    class Logged(RedisWatchStore):
        commits = 0

        async def claim(self, *, now: float, limit: int, lease: float) -> list[Any]:
            got = await super().claim(now=now, limit=limit, lease=lease)
            if got:
                pairs = [[p.phone_number, p.message_id, p.due_at] for p in got]
                claims.write(json.dumps({"at": time.time(), "claimed": pairs}) + "\n")
                claims.flush()
            return got

        async def commit(
            self, updates: Sequence[PairUpdate], found: Sequence[StatusChange]
        ) -> None:
            self.commits += 1
            if self.commits == kill:
                os.kill(os.getpid(), signal.SIGKILL)
            await super().commit(updates, found)
            done = [[u.phone_number, u.message_id] for u in updates]
            claims.write(json.dumps({"committed": done}) + "\n")
            claims.flush()

    class Fast(Sandbox):
        def elapsed(self) -> float:
            return (time.time() - start[0]) * SPEED

    async def main() -> dict[str, int]:
        sandbox = Fast(seed=SEED, api_key=None)
        pairs = list(sandbox.data.sample_pairs(count))
        outbox, settled = f"{{{namespace}}}:outbox", f"{{{namespace}}}:settled"
        asked = found = added = 0

        def on_round(report: Any) -> None:
            nonlocal asked, found
            asked += report.asked
            found += report.changes

        store = Logged(url, namespace=namespace)
        async with (
            sandbox_client(sandbox) as client,
            redis.asyncio.Redis.from_url(url) as raw,
            Watcher(
                client,
                store=store,
                schedule=SCHEDULE,
                lease=float(lease),
                page_size=PAGE,
                on_round=on_round,
            ) as watcher,
        ):
            await asyncio.sleep(0.3)  # the poller has looked at the store: maybe empty
            print("ready", flush=True)
            start[0] = float(await asyncio.to_thread(sys.stdin.readline))
            if adds == "yes":
                added = await watcher.add(pairs, sent_at=start[0])
            while True:  # until the fleet has settled every pair and reported every change
                if reader == "batches":
                    async with aclosing(watcher.batches(until_idle=True)) as batches:
                        async for batch in batches:
                            sink.write("".join(json.dumps(_record(c)) + "\n" for c in batch))
                            sink.flush()  # before it is acknowledged (asking for the next)
                else:
                    async with aclosing(watcher.changes(until_idle=True)) as changes:
                        async for c in changes:
                            sink.write(json.dumps(_record(c)) + "\n")
                            sink.flush()  # before it is acknowledged (asking for the next)
                if await raw.zcard(outbox) == 0 and await raw.zcard(settled) == count:
                    break
                await asyncio.sleep(0.2)
        return {"added": added, "asked": asked, "found": found}

    print(json.dumps(asyncio.run(main())), flush=True)


def _record(c: StatusChange) -> dict[str, Any]:
    return {
        "id": c.id,
        "pair": [c.phone_number, c.message_id],
        "status": c.status.value,
        "settled": c.settled,
        "reason": None if c.reason is None else c.reason.value,
        "sequence": c.sequence,
    }


@cache
def solo_outcomes(count: int = PAIRS) -> dict[tuple[str, int], tuple[str, str]]:
    """(final status, settle reason) per pair, from one worker alone (a `MemoryStore`),
    in simulated time, with the same schedule and sandbox speed."""
    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client

    t0 = 1_700_000_000.0

    class Clock:
        now = t0

        def __call__(self) -> float:
            return self.now

        async def sleep(self, seconds: float) -> None:
            self.now += seconds
            await asyncio.sleep(0)

    clock = Clock()

    class Fast(Sandbox):
        def elapsed(self) -> float:
            return (clock.now - t0) * SPEED

    async def run() -> dict[tuple[str, int], tuple[str, str]]:
        sandbox = Fast(seed=SEED, api_key=None)
        outcomes: dict[tuple[str, int], tuple[str, str]] = {}
        pairs = list(sandbox.data.sample_pairs(count))
        async with sandbox_client(sandbox) as client:
            stream = watch(
                client, pairs, sent_at=t0, schedule=SCHEDULE, store=MemoryStore(),
                clock=clock, sleep=clock.sleep,
            )  # fmt: skip
            async with aclosing(stream) as changes:
                async for c in changes:
                    if c.settled:
                        assert c.reason is not None
                        outcomes[(c.phone_number, c.message_id)] = (c.status.value, c.reason.value)
        return outcomes

    return asyncio.run(run())


def run_fleet(
    url: str,
    namespace: str,
    tmp: Path,
    *,
    lease: float,
    kill_at: Sequence[int],
    adds: Sequence[bool] | None = None,
    count: int = PAIRS,
    then: Callable[[float], None] | None = None,
    reader: str = "changes",
) -> tuple[list[int], list[dict[str, Any]]]:
    """Start the workers, let them go together, wait; their return codes and reports.

    `adds`: which workers add the pairs (every one by default); `then`: called with the start
    time once the workers are going (another process adding pairs, say)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = []
    adding = adds if adds is not None else [True] * len(kill_at)
    for n, (kill, add) in enumerate(zip(kill_at, adding, strict=True)):
        command = [sys.executable, str(HERE), "worker", url, namespace, str(tmp / f"w{n}")]
        command += [str(lease), str(kill), "yes" if add else "no", str(count), reader]
        processes.append(
            subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        )
    try:
        for p in processes:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        t0 = repr(time.time())
        for p in processes:
            assert p.stdin is not None
            p.stdin.write(t0 + "\n")
            p.stdin.flush()
        if then is not None:
            then(float(t0))
        outs = [p.communicate(timeout=60)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    reports = [json.loads(out.splitlines()[-1]) if out.strip() else {} for out in outs]
    return [p.returncode for p in processes], reports


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_changes(reported: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[str, str]]:
    """Each pair's changes, repeats dropped, are 1, 2, ... with only the last one settled;
    returns each pair's (final status, reason)."""
    by_pair: dict[tuple[str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    for c in reported:
        seen = by_pair[(c["pair"][0], c["pair"][1])].setdefault(c["sequence"], c)
        assert seen == c  # a repeat is the same change, whole
    outcomes = {}
    for key, changes in by_pair.items():
        sequences = sorted(changes)
        assert sequences == list(range(1, len(sequences) + 1)), (key, sequences)
        assert [changes[s]["settled"] for s in sequences] == [False] * (len(sequences) - 1) + [True]
        last = changes[sequences[-1]]
        outcomes[key] = (last["status"], last["reason"])
    return outcomes


def fleet_logs(tmp: Path, n: int) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    changes = [c for w in range(n) for c in read_lines(tmp / f"w{w}.changes")]
    claims = [read_lines(tmp / f"w{w}.claims") for w in range(n)]
    return changes, claims


def held_at_death(claims: list[dict[str, Any]]) -> dict[tuple[str, int, float], float]:
    """(phone, message id, due time) -> when claimed, for what a killed worker had claimed
    and not committed (its log, read in order)."""
    held: dict[tuple[str, int], tuple[float, float]] = {}
    for line in claims:
        for p in line.get("claimed", []):
            held[(p[0], p[1])] = (p[2], line["at"])
        for p in line.get("committed", []):
            held.pop((p[0], p[1]), None)
    return {(phone, mid, due): at for (phone, mid), (due, at) in held.items()}


def claimed_by(claims: list[dict[str, Any]]) -> list[tuple[str, int, float, float]]:
    """(phone, message id, due time, when) for each pair a worker claimed."""
    return [(p[0], p[1], p[2], c["at"]) for c in claims if "at" in c for p in c["claimed"]]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_fleet_polls_each_pair_once_a_round_and_reports_each_change_once(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    codes, reports = run_fleet(redis_url, namespace, tmp_path, lease=20.0, kill_at=[0] * WORKERS)
    assert codes == [0] * WORKERS, reports
    changes, claims = fleet_logs(tmp_path, WORKERS)
    # Added once across the fleet, each worker adding every pair.
    assert sum(r["added"] for r in reports) == PAIRS
    # No (pair, due time) was handed to two workers; each worker asked what it claimed.
    rounds = Counter((phone, mid, due) for w in claims for phone, mid, due, _ in claimed_by(w))
    assert max(rounds.values()) == 1
    assert [r["asked"] for r in reports] == [len(claimed_by(w)) for w in claims]
    assert sum(1 for r in reports if r["asked"]) >= 2  # the work was shared
    # Every change found was reported once, across the fleet, with no repeat.
    assert len({c["id"] for c in changes}) == len(changes) == sum(r["found"] for r in reports)
    assert check_changes(changes) == solo_outcomes()
    with redis.Redis.from_url(redis_url) as r:
        assert r.zcard(f"{{{namespace}}}:outbox") == 0
        assert r.hlen(f"{{{namespace}}}:pairs") == 0
        assert r.zcard(f"{{{namespace}}}:settled") == PAIRS


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_worker_killed_mid_round_loses_nothing(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    lease = 3.0
    codes, _ = run_fleet(redis_url, namespace, tmp_path, lease=lease, kill_at=[2, 0, 0])
    assert codes == [-signal.SIGKILL, 0, 0]
    changes, (victim, *survivors) = fleet_logs(tmp_path, WORKERS)
    # What the victim claimed and never committed (the page it died asking, the one ahead).
    lost = held_at_death(victim)
    assert lost
    # The others asked about each of them, once, after its lease ran out; and nothing else
    # was asked twice.
    others: dict[tuple[str, int, float], list[float]] = defaultdict(list)
    for w in survivors:
        for phone, mid, due, at in claimed_by(w):
            others[(phone, mid, due)].append(at)
    assert max(len(times) for times in others.values()) == 1
    for key, at in lost.items():
        # (less 0.5 s: the victim noted the time once its loop got to it, not at the claim)
        assert len(others[key]) == 1 and others[key][0] >= at + lease - 0.5, key
    mine = {(phone, mid, due) for phone, mid, due, _ in claimed_by(victim)}
    assert all(key not in others or key in lost for key in mine)
    # Each change reported, repeats only of what the victim had in hand; same outcomes.
    victims = {c["id"] for c in read_lines(tmp_path / "w0.changes")}
    repeated = Counter(c["id"] for c in changes) - Counter({c["id"]: 1 for c in changes})
    assert set(repeated) <= victims and sum(repeated.values()) <= 1
    assert check_changes(changes) == solo_outcomes()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_pairs_one_worker_adds_belong_to_the_fleet_even_once_it_is_killed(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """Three workers start on an empty store; one adds every pair and is killed mid-run.

    The other two never added anything: they learn of the pairs from the store, share the
    rounds while the adder lives, and take over its claims once its lease runs out.
    """
    # It kills itself before its first commit, holding the page it asked (and any claimed
    # ahead): the other two may claim most pages first, but it claims one in some round.
    lease, count = 3.0, 6_000
    codes, reports = run_fleet(
        redis_url, namespace, tmp_path, lease=lease, kill_at=[1, 0, 0],
        adds=[True, False, False], count=count, reader="batches",
    )  # fmt: skip
    assert codes == [-signal.SIGKILL, 0, 0], reports
    changes, (adder, *others) = fleet_logs(tmp_path, WORKERS)
    assert all(claimed_by(w) for w in others)  # both watchers asked, not only the adder
    lost = held_at_death(adder)
    assert lost  # it died holding pairs
    taken_over: dict[tuple[str, int, float], list[float]] = defaultdict(list)
    for w in others:
        for phone, mid, due, at in claimed_by(w):
            taken_over[(phone, mid, due)].append(at)
    assert max(len(times) for times in taken_over.values()) == 1
    for key, at in lost.items():
        assert len(taken_over[key]) == 1 and taken_over[key][0] >= at + lease - 0.5, key
    # Every pair reached its settled change, as one worker alone would have found it; the
    # only repeats are of the batch the adder had in hand (acknowledged a batch at a time).
    repeated = Counter(c["id"] for c in changes) - Counter({c["id"]: 1 for c in changes})
    adders = {c["id"] for c in read_lines(tmp_path / "w0.changes")}
    assert set(repeated) <= adders and sum(repeated.values()) <= TAKE
    assert check_changes(changes) == solo_outcomes(count)


@pytest.mark.slow
def test_pairs_another_process_adds_are_watched_by_workers_that_added_nothing(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """Three workers wait on an empty store; a process that runs no watcher adds the pairs."""
    from smspartner_async.sandbox import Sandbox

    count = 3_000

    def add_from_here(t0: float) -> None:
        async def add() -> None:
            pairs = Sandbox(seed=SEED, api_key=None).data.sample_pairs(count)
            first = SCHEDULE.first_check(t0)
            store = RedisWatchStore(redis_url, namespace=namespace)
            await store.open()
            try:
                added = [NewPair(phone, mid, i, t0, first) for i, (phone, mid) in enumerate(pairs)]
                assert await store.add(added) == count
            finally:
                await store.close()

        asyncio.run(add())

    codes, reports = run_fleet(
        redis_url, namespace, tmp_path, lease=20.0, kill_at=[0] * WORKERS,
        adds=[False] * WORKERS, count=count, then=add_from_here, reader="batches",
    )  # fmt: skip
    assert codes == [0] * WORKERS, reports
    changes, claims = fleet_logs(tmp_path, WORKERS)
    assert sum(1 for w in claims if claimed_by(w)) >= 2  # the work was shared
    rounds = Counter((phone, mid, due) for w in claims for phone, mid, due, _ in claimed_by(w))
    assert max(rounds.values()) == 1
    assert len({c["id"] for c in changes}) == len(changes) == sum(r["found"] for r in reports)
    assert check_changes(changes) == solo_outcomes(count)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(*sys.argv[2:])
