"""A watch store on Redis, shared by a fleet of worker processes (`RedisWatchStore`, extra
`redis`).

Every worker runs its own `Watcher` with its own `RedisWatchStore` on the same Redis and
namespace; together they watch one set of pairs, each due pair asked by one worker per
round, and each change reported by one consumer.

Key layout (`ns` is the namespace, "smspartner:watch" by default). Every key carries the
hash tag `{ns}`, so they all live in one slot and the scripts also run on Redis Cluster.
A pair's *member* is `phone:message_id`; a change is known by its id, `phone:id:seq`.

- `{ns}:pairs`    hash, member -> "index|sent_at|status|sequence": every pending pair;
- `{ns}:due`      sorted set, member -> due_at: the pending pairs nobody holds;
- `{ns}:held`     sorted set, member -> end of its lease (ms of Redis time): held pairs;
- `{ns}:held_due` sorted set, member -> due_at: the same held pairs, by due time;
- `{ns}:holder`   hash, member -> claim token: who may commit the pair;
- `{ns}:settled`  sorted set, member -> settled_at: settled pairs, until pruned;
- `{ns}:outbox`   sorted set, change id -> position: every unacknowledged change;
- `{ns}:changes`  hash, change id -> the change (JSON);
- `{ns}:taken`    sorted set, change id -> end of its take lease (ms of Redis time);
- `{ns}:taker`    hash, change id -> take token;
- `{ns}:byid`     sorted set, "message_id:phone" (score 0): the pending pairs by message
                   id, for a hint without a phone number (a bulk send's recipients);
- `{ns}:hinted`   hash, member -> when hinted: held pairs hinted, due then once committed;
- `{ns}:kept`     sorted set, "message_id:phone" ("message_id:" without a phone) -> when
                   hinted: hints for pairs not added yet, bounded in number and in time;
- `{ns}:settled_status` hash, member -> its last status: for `counts`, until pruned;
- `{ns}:wake`     a pub/sub channel, not a key: every script that makes pairs due, fills
                   the outbox or empties it publishes "due", "outbox" or "room" there, and
                   every open store listens and rings its bells, so each worker's watcher
                   learns of what the others did within a notice's delivery (or `RECHECK`);
- `{ns}:token`, `{ns}:position`: counters; `{ns}:version`: the layout version.

Redis memory (`benchmarks/redis_store.py`, Redis 7.0): a pending pair costs an entry in
`pairs`, one in `due` and one in `byid`, about 320 bytes; a settled pair about 180 until
`prune` forgets it (with its status, for `counts`); a change about 280 until it is
acknowledged; a held pair about 130 more while held (its entries in `held`, `held_due`
and `holder`, less the one in `due`). Needs Redis 6.2 or later (`ZMSCORE`).

Leases and tokens:

- Every multi-key step is one Lua script, so it is atomic: no other worker sees half a
  claim or half a commit.
- `claim` first sends the pairs whose lease has run out back to `due` (their holder is
  presumed dead), then moves the earliest due pairs to `held` under a new token (one
  counter for the fleet, one token per claim) and records that token in `holder`.
- `commit` applies a pair's update only if `holder` still has the token this store got
  when it claimed the pair; otherwise another worker has claimed it since, and the pair's
  update and its changes are dropped (the new holder asks again). A hold that lapsed but
  was not claimed again still commits: nobody else asked.
- Takes work the same way on the outbox, except that a taken change stays in `outbox`
  (in order) and `take_changes` skips the ones under a live lease: there are few (a batch
  per consumer), and the order needs no other bookkeeping. `ack` deletes a change
  whoever holds it: a change reported is reported.
- `open` releases nothing: the other holds belong to live workers, as far as anyone can
  tell, and only their lease running out says otherwise. `close` hands back what this
  store object claimed or took and did not finish, if it still holds it, so a worker
  stopped on purpose does not make the others wait a whole lease.

Which clock: `due_at`, `now` and `settled_at` are the watcher's clock, as everywhere in
the watch (a test or a simulation may run it fast). Leases are judged by Redis `TIME`,
read inside the scripts: a lease is about whether a process is still alive, in real
time, and Redis's clock is the one clock every worker shares; workers' own clocks may
differ by more than a short lease. So `lease` is real seconds, and the `now` given to
`take_changes` is not used.

Wake-ups: the scripts publish on `{ns}:wake` (see the key layout), and each open store
listens on a connection of its own and rings its `bells`; a watcher on it also looks at
Redis at least every `RECHECK` seconds. So a worker notices pairs another process added
within a notice's delivery (`benchmarks/redis_store.py` measures it), and a dead worker's
claims within `RECHECK` after their lease. Hints (`hint`) are kept in Redis, so any
worker may take a delivery report and every worker acts on it. The scripts live in
`lua/`, one file each.

Redis unreachable, too slow (10 s a command) or refusing a command: the call raises
`WatchStoreUnavailableError` and nothing is assumed done: a `Watcher` stops with it.
What a failed command may have done on the server is undone by the leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime
from importlib import resources
from typing import Any, Final, NamedTuple, TypeVar

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from .._errors import ClientStateError, InvalidInputError, WatchStoreUnavailableError
from .._models import DeliveryStatus
from .._redis_commands import redis_command, redis_from_url
from ._bell import Bells
from ._hints import HINT_KEEP_MAX, HINT_KEEP_SECONDS
from ._records import (
    NewPair,
    PairUpdate,
    SettleReason,
    StatusChange,
    StoreCounts,
    WatchedPair,
    new_change,
)

__all__ = ["RECHECK", "RedisWatchStore", "WatchStoreUnavailableError"]

T = TypeVar("T")

log = logging.getLogger("smspartner_async.watch")

_VERSION: Final = "1"
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# Seconds one command may take. A claim or a commit of a page of 8,000 pairs takes some
# 100 ms; past this, Redis is taken for unavailable rather than waited for without end.
_COMMAND_TIMEOUT: Final = 10.0
# Pairs per `add` script: a million pairs added at once must not block Redis for seconds.
_ADD_CHUNK: Final = 5_000
#: Real seconds a watcher on this store goes at most without looking at it: what no notice
#: says (a lease running out, a notice lost while the connection was down) is seen then.
RECHECK: Final = 1.0
_LISTEN_BACKOFF: Final = (0.1, 2.0)  # seconds between reconnects of the listener: first, most
_STATUS: dict[str, DeliveryStatus | None] = {"": None, **{s.value: s for s in DeliveryStatus}}
_REASON: dict[str | None, SettleReason | None] = {None: None, **{r.value: r for r in SettleReason}}

_USES = re.compile(r"^-- uses: (.+)$", re.MULTILINE)


@functools.cache
def _script(name: str) -> str:
    """The Lua script `lua/<name>.lua` (package data), after the helpers it names on its
    "-- uses:" line. Pages go to and from the scripts as one string, a line per pair or
    change: a reply of 24,000 strings costs redis-py seconds to parse, one string of the
    same bytes next to nothing."""
    text = (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")
    uses = _USES.search(text)
    helpers = "".join(_script(used) for used in uses.group(1).split(", ")) if uses else ""
    return helpers + text


class _Keys(NamedTuple):
    pairs: str
    due: str
    held: str
    held_due: str
    holder: str
    settled: str
    outbox: str
    changes: str
    taken: str
    taker: str
    token: str
    position: str
    version: str
    byid: str
    hinted: str
    kept: str
    settled_status: str
    wake: str

    @classmethod
    def of(cls, namespace: str) -> _Keys:
        return cls(*(f"{{{namespace}}}:{name}" for name in cls._fields))


class _Scripts:
    def __init__(self, redis: Redis | RedisCluster) -> None:
        self.add = redis.register_script(_script("add"))
        self.claim = redis.register_script(_script("claim"))
        self.commit = redis.register_script(_script("commit"))
        self.next_due = redis.register_script(_script("next_due"))
        self.take = redis.register_script(_script("take"))
        self.ack = redis.register_script(_script("ack"))
        self.release = redis.register_script(_script("release"))
        self.hint = redis.register_script(_script("hint"))
        self.prune = redis.register_script(_script("prune"))


class RedisWatchStore:
    """A `WatchStore` on Redis, shared by every worker watching with the same namespace.

    Claims and takes are leases judged by Redis's clock, and commits are fenced by a
    token per claim; the module docstring has the key layout and the rules. Give the
    watcher a `lease` well over what a page takes to ask: a worker slower than its lease
    has its round's answers dropped (logged) and the pairs asked again by another.

        store = RedisWatchStore("redis://redis:6379/0")
        async with Watcher(client, store=store, lease=600) as watcher: ...

    Args:
        redis: A URL (`redis://`, `rediss://`, `unix://`): the store makes its own client at
            `open` and closes it at `close`. Or a `redis.asyncio` client (`Redis`, or
            `RedisCluster`), which the store never closes.
        namespace: What the workers of one watch share: letters, digits and `_.:-`. Stores
            with another namespace on the same Redis see nothing of this one.

    Raises (from any call): `WatchStoreUnavailableError` when Redis does not answer;
    `ClientStateError` when the namespace holds state of another layout version.
    """

    def __init__(
        self, redis: str | Redis | RedisCluster, *, namespace: str = "smspartner:watch"
    ) -> None:
        if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
            raise InvalidInputError(
                "namespace must be 1 to 128 letters, digits or '_.:-'", value=namespace
            )
        if isinstance(redis, str):
            self._url: str | None = redis
            self._redis: Redis | RedisCluster | None = None
        elif isinstance(redis, Redis | RedisCluster):
            self._url = None
            self._redis = redis
        else:
            raise InvalidInputError(
                "redis must be a URL or a redis.asyncio client", value=type(redis).__name__
            )
        self.namespace = namespace
        self._keys = _Keys.of(namespace)
        self._scripts: _Scripts | None = None
        # What this store object holds: member -> (claim token, "index|sent_at"), and
        # change id -> take token. A page or a batch in flight at a time: bounded.
        self._held: dict[str, tuple[str, str]] = {}
        self._taken: dict[str, str] = {}
        self.bells = Bells(recheck=RECHECK)
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._stop = ""

    def __repr__(self) -> str:
        # Never the URL: it may hold a password.
        state = "open" if self._scripts is not None else "closed"
        return f"RedisWatchStore(namespace={self.namespace!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check the layout version; other workers' holds stay theirs."""
        if self._scripts is not None:
            raise ClientStateError(f"{self!r} is already open")
        if self._url is not None:
            self._redis = redis_from_url(self._url)  # see _redis_commands: no socket timeout
        redis = self._client()
        try:
            keys = self._keys
            await self._call("connecting", redis.set(keys.version, _VERSION, nx=True))
            version = await self._call("connecting", redis.get(keys.version))
            if _text(version) != _VERSION:
                raise ClientStateError(
                    f"namespace {self.namespace!r} holds watch state of another version "
                    f"({_text(version)!r})"
                )
        except BaseException:
            if self._url is not None:
                self._redis = None
                await redis.aclose()
            raise
        self._scripts = _Scripts(redis)
        self._held.clear()
        self._taken.clear()
        if isinstance(redis, Redis):  # redis-py's cluster client has no asyncio pub/sub
            self._listening = True
            self._stop = f"{self._keys.wake}:{uuid.uuid4().hex}"
            self._listener = asyncio.create_task(
                self._listen(redis, self._stop), name="smspartner-watch-store-listener"
            )

    async def close(self) -> None:
        """Hand back what this store holds and did not finish; close a client it made."""
        if self._scripts is None:
            return
        try:
            await self._release()
        except WatchStoreUnavailableError as exc:
            # Nothing is lost: the holds lapse at the end of their lease.
            log.warning("watch store: holds not handed back at close (%s)", exc)
        finally:
            self._scripts = None
            self._held.clear()
            self._taken.clear()
            await self._stop_listening()
            if self._url is not None and self._redis is not None:
                redis, self._redis = self._redis, None
                await redis.aclose()

    # -- pairs -------------------------------------------------------------------------------

    async def add(self, pairs: Sequence[NewPair]) -> int:
        scripts, keys = self._open_scripts(), self._keys
        added = 0
        for start in range(0, len(pairs), _ADD_CHUNK):
            lines = "\n".join(
                f"{p.phone_number}:{p.message_id}|{float(p.due_at)!r}|"
                f"{p.position}|{float(p.sent_at)!r}||0"
                for p in pairs[start : start + _ADD_CHUNK]
            )
            added += await self._call(
                "adding pairs",
                scripts.add(
                    keys=[keys.pairs, keys.due, keys.settled, keys.byid, keys.kept],
                    args=[lines, keys.wake],
                ),
            )
        if added:
            self.bells.due.ring()
        return added

    async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
        scripts, keys = self._open_scripts(), self._keys
        if limit < 1:
            return []
        reply = await self._call(
            "claiming pairs",
            scripts.claim(
                keys=[
                    keys.pairs,
                    keys.due,
                    keys.held,
                    keys.held_due,
                    keys.holder,
                    keys.token,
                    keys.kept,
                ],
                args=[repr(float(now)), limit, _ms(lease), repr(HINT_KEEP_SECONDS)],
            ),
        )
        if not reply:
            return []
        token = str(reply[0])
        held = self._held
        claimed: list[WatchedPair] = []
        for line in _text(reply[1]).split("\n"):
            member, due_at, index, sent_at, status, sequence = line.split("|")
            held[member] = (token, f"{index}|{sent_at}")
            phone, _, message_id = member.rpartition(":")
            claimed.append(
                WatchedPair(
                    phone,
                    int(message_id),
                    int(index),
                    float(sent_at),
                    float(due_at),
                    _STATUS[status],
                    int(sequence),
                )
            )
        return claimed

    async def commit(self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange]) -> None:
        scripts, keys, held = self._open_scripts(), self._keys, self._held
        members: list[str] = []
        lines: list[str] = []
        for u in updates:
            member = f"{u.phone_number}:{u.message_id}"
            members.append(member)
            # A pair this store does not hold gets no token: its update is refused.
            token, head = held.get(member, ("", ""))
            if u.due_at is None:
                settled_at = u.settled_at if u.settled_at is not None else 0.0
                status = "" if u.status is None else u.status.value
                lines.append(f"{member}|{token}||{float(settled_at)!r}|{status}")
            else:
                status = "" if u.status is None else u.status.value
                lines.append(f"{member}|{token}|{float(u.due_at)!r}|{head}|{status}|{u.sequence}")
        found = b"\n".join(
            b"%s:%d\t%s\t%s" % (c.phone_number.encode(), c.message_id, c.id.encode(), _dump(c))
            for c in changes
        )
        refused = await self._call(
            "committing a round",
            scripts.commit(
                keys=[
                    keys.pairs,
                    keys.due,
                    keys.held,
                    keys.held_due,
                    keys.holder,
                    keys.settled,
                    keys.outbox,
                    keys.changes,
                    keys.position,
                    keys.byid,
                    keys.hinted,
                    keys.settled_status,
                ],
                args=["\n".join(lines), found, keys.wake],
            ),
        )
        if changes:
            self.bells.outbox.ring()
        for member in members:
            held.pop(member, None)
        if refused:
            log.warning(
                "watch store: %d updates dropped: their lease ran out and another worker "
                "claimed them (is the lease shorter than a page takes to ask?)",
                refused,
            )

    async def next_due(self) -> float | None:
        scripts, keys = self._open_scripts(), self._keys
        reply = await self._call(
            "reading the next due time", scripts.next_due(keys=[keys.due, keys.held_due])
        )
        times = [float(at) for at in reply if at is not None]
        return min(times) if times else None

    async def prune(self, *, settled_before: float) -> int:
        scripts, keys = self._open_scripts(), self._keys
        forgotten: int = await self._call(
            "pruning settled pairs",
            scripts.prune(
                keys=[keys.settled, keys.settled_status], args=[repr(float(settled_before))]
            ),
        )
        return forgotten

    async def hint(self, message_id: int, phone_number: str | None = None, *, now: float) -> int:
        scripts, keys = self._open_scripts(), self._keys
        made: int = await self._call(
            "hinting pairs",
            scripts.hint(
                keys=[
                    keys.pairs,
                    keys.due,
                    keys.held,
                    keys.settled,
                    keys.byid,
                    keys.hinted,
                    keys.kept,
                ],
                args=[
                    int(message_id),
                    phone_number or "",
                    repr(float(now)),
                    repr(HINT_KEEP_SECONDS),
                    HINT_KEEP_MAX,
                    keys.wake,
                ],
            ),
        )
        if made:
            self.bells.due.ring()
        return made

    async def counts(self) -> StoreCounts:
        """Pending pairs by last status (a scan of the pairs, a thousand at a time), settled
        ones by the status they settled on (pairs settled before this layout had one count
        as UNKNOWN)."""
        self._open_scripts()
        redis, keys = self._client(), self._keys
        pending: dict[DeliveryStatus | None, int] = {}
        cursor: Any = 0
        while True:
            reply: Any = await self._call(
                "counting pairs", redis.hscan(keys.pairs, cursor, count=1000)
            )
            cursor, batch = reply
            for record in batch.values():
                status = _STATUS.get(_text(record).split("|")[2], DeliveryStatus.UNKNOWN)
                pending[status] = pending.get(status, 0) + 1
            if not int(cursor):
                break
        settled: dict[DeliveryStatus, int] = {}
        total = int(await self._call("counting pairs", redis.zcard(keys.settled)))
        cursor = 0
        while True:
            reply = await self._call(
                "counting pairs", redis.hscan(keys.settled_status, cursor, count=1000)
            )
            cursor, batch = reply
            for value in batch.values():
                status = _STATUS.get(_text(value)) or DeliveryStatus.UNKNOWN
                settled[status] = settled.get(status, 0) + 1
            if not int(cursor):
                break
        known = sum(settled.values())
        if total > known:
            settled[DeliveryStatus.UNKNOWN] = settled.get(DeliveryStatus.UNKNOWN, 0) + total - known
        return StoreCounts(pending, settled)

    async def unreported(self) -> int:
        self._open_scripts()
        count = await self._call("counting changes", self._client().zcard(self._keys.outbox))
        return int(count)

    # -- changes -----------------------------------------------------------------------------

    async def take_changes(self, *, now: float, limit: int, lease: float) -> list[StatusChange]:
        scripts, keys = self._open_scripts(), self._keys
        if limit < 1:
            return []
        reply = await self._call(
            "taking changes",
            scripts.take(
                keys=[keys.outbox, keys.changes, keys.taken, keys.taker, keys.token],
                args=[limit, _ms(lease)],
            ),
        )
        if not reply:
            return []
        token = str(reply[0])
        raw = reply[1]
        changes = [_load(line) for line in raw.split(b"\n" if isinstance(raw, bytes) else "\n")]
        for change in changes:
            self._taken[change.id] = token
        return changes

    async def ack(self, change_ids: Sequence[str]) -> None:
        scripts, keys = self._open_scripts(), self._keys
        if not change_ids:
            return
        await self._call(
            "acknowledging changes",
            scripts.ack(
                keys=[keys.outbox, keys.changes, keys.taken, keys.taker, keys.wake],
                args=list(change_ids),
            ),
        )
        self.bells.room.ring()
        for change_id in change_ids:
            self._taken.pop(change_id, None)

    # -- internals ---------------------------------------------------------------------------

    def _client(self) -> Redis | RedisCluster:
        if self._redis is None:
            raise ClientStateError(f"{self!r} is not open")
        return self._redis

    def _open_scripts(self) -> _Scripts:
        if self._scripts is None:
            raise ClientStateError(f"{self!r} is not open")
        return self._scripts

    async def _release(self) -> None:
        if not self._held and not self._taken:
            return
        keys = self._keys
        args: list[str | int] = [len(self._held)]
        for member, (token, _) in self._held.items():
            args += (member, token)
        for change_id, token in self._taken.items():
            args += (change_id, token)
        args.append(keys.wake)
        await self._call(
            "handing back holds",
            self._open_scripts().release(
                keys=[keys.due, keys.held, keys.held_due, keys.holder, keys.taken, keys.taker],
                args=args,
            ),
        )

    async def _listen(self, redis: Redis, stop: str) -> None:
        """Ring the bells for what every store of the namespace publishes, for as long as
        the store is open; after a lost connection, subscribe again and ring both (what was
        published meanwhile is lost; `RECHECK` bounds that too).

        It ends when `close` publishes on `stop`, this store's own channel, or at its next
        look (every `RECHECK`): never by a cancellation, which a read blocked in redis-py's
        pub/sub does not always deliver.
        """
        wait = _LISTEN_BACKOFF[0]
        bells, wake = self.bells, self._keys.wake
        while self._listening:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(wake, stop)
                bells.due.ring()
                bells.outbox.ring()
                bells.room.ring()
                wait = _LISTEN_BACKOFF[0]
                while self._listening:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=RECHECK
                    )
                    if message is None:
                        continue
                    if _text(message.get("channel")) == stop:
                        return
                    data = _text(message.get("data"))
                    if data == "due":
                        bells.due.ring()
                    elif data == "outbox":
                        bells.outbox.ring()
                    elif data == "room":
                        bells.room.ring()
            except (RedisError, OSError) as exc:
                log.debug("watch store: notices lost (%s); listening again", type(exc).__name__)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            if self._listening:
                await asyncio.sleep(wait)
                wait = min(wait * 2, _LISTEN_BACKOFF[1])

    async def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        self._listening = False
        if listener is None:
            return
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._redis.publish(self._stop, "stop")
        _, pending = await asyncio.wait([listener], timeout=RECHECK + 1.0)
        for task in pending:  # Redis hung: the listener is stuck in a read
            task.cancel()
            await asyncio.wait([task], timeout=1.0)

    async def _call(self, what: str, command: Awaitable[T]) -> T:
        return await redis_command(
            command,
            what=what,
            within=_COMMAND_TIMEOUT,
            service="watch store",
            error=WatchStoreUnavailableError,
        )


# -- helpers -----------------------------------------------------------------------------------


def _ms(lease: float) -> int:
    return max(1, math.ceil(lease * 1000))


def _text(value: Any) -> str:
    """Redis replies are bytes unless the client decodes them."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _dump(c: StatusChange) -> bytes:
    return orjson.dumps(
        [
            c.index,
            c.phone_number,
            c.message_id,
            c.status.value,
            None if c.previous is None else c.previous.value,
            c.settled,
            None if c.reason is None else c.reason.value,
            c.sequence,
            c.checked_at,
            None if c.date is None else c.date.isoformat(),
            c.code,
            c.message,
        ]
    )


def _load(raw: bytes | str) -> StatusChange:
    (index, phone, message_id, status, previous, settled, reason, sequence, checked_at, date,
     code, message) = orjson.loads(raw)  # fmt: skip
    return new_change(
        index,
        phone,
        message_id,
        DeliveryStatus(status),
        None if previous is None else DeliveryStatus(previous),
        settled,
        _REASON[reason],
        sequence,
        checked_at,
        None if date is None else datetime.fromisoformat(date),
        code,
        message,
    )
