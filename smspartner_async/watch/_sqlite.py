"""A durable watch store in one SQLite file (standard library only).

Why it looks like this:

- **Never on the event loop.** One connection, opened, used and closed by one
  worker thread (a single-thread executor): SQLite calls may wait on the disk or a
  lock, and the loop must keep turning meanwhile.
- **One transaction per round step**, WAL mode: a step's updates and the changes
  it found are committed together, so a crash never half-applies one; and readers
  never wait for the writer.
- **One owner.** The file is locked (an OS lock on its `-acks` companion, released
  by the OS when the process dies) so that two processes never watch it at once.
  Holds (claimed pairs, taken changes) therefore live in the owner's memory, cost no
  write, and vanish with it: the next owner finds every unfinished pair due again.
- **Acknowledgements cost no transaction.** The consumer takes changes in outbox
  order and acknowledges them in that order, so what has been reported is a prefix
  of the outbox: one number, the *watermark*. It is written into a memory-mapped
  companion file (`<path>-acks`) at each acknowledgement, a memory store that
  survives the process being killed; the acknowledged rows are deleted with the
  next transaction. A write per change would otherwise cost a thread hop and a
  commit per change: more than the whole round's work for that change. After a
  power loss the watermark may lag (changes delivered again, never lost): when it
  is ahead of the database (the database lost its last commits), it is pulled back
  to what the database holds, so changes found again are not taken for reported.
- **Bounded memory**: pairs are read a page at a time (`claim`), changes a batch
  at a time (`take_changes`); the page cache is capped. The changes this process
  commits are also kept in memory, up to a bound, and handed to a consumer that
  keeps up from there: reading back what was just written costs more than the write.
- **Rows in the order pairs were added** (a rowid table, schema version 2): pairs
  added together are checked together, so a round's updates land on neighbouring
  pages. A file of version 1 (keyed by phone number) is copied over when opened.
- **Hints** find a message's pairs through the index on `(message_id, phone)` (a hint without a
  phone number reaches every recipient of a bulk send). Hints for pairs not added yet,
  and for held pairs, live in the owner's memory like holds: a hint lost in a crash
  costs a later check, never a status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mmap
import operator
import os
import sqlite3
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from .._errors import ClientStateError, InvalidInputError
from .._models import DeliveryStatus
from .._validate import Key
from ._bell import Bells
from ._hints import KeptHints
from ._records import (
    NewPair,
    PairUpdate,
    SettleReason,
    StatusChange,
    StoreCounts,
    WatchedPair,
    new_change,
)

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_SCHEMA_VERSION = 2
# Pairs are rows in the order they were added (rowid `id`): pairs added together are
# checked together (their schedules are alike), so a round's updates land on a few
# neighbouring pages, not one page per pair as in a table ordered by phone number.
_PAIRS = """
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY,
    phone TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    sent_at REAL NOT NULL,
    due_at REAL,
    status TEXT,
    sequence INTEGER NOT NULL DEFAULT 0,
    settled_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS pairs_key ON pairs (message_id, phone);
CREATE INDEX IF NOT EXISTS pairs_due ON pairs (due_at) WHERE due_at IS NOT NULL;
"""
_SCHEMA = (
    _PAIRS
    + """
CREATE TABLE IF NOT EXISTS changes (
    pos INTEGER PRIMARY KEY,
    phone TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    previous TEXT,
    settled INTEGER NOT NULL,
    reason TEXT,
    sequence INTEGER NOT NULL,
    checked_at REAL NOT NULL,
    date REAL,
    code INTEGER,
    message TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
)
# Version 1 kept pairs in a table keyed by (phone, message_id): copied over in the order
# they were sent, in the transaction that changes the version.
_FROM_VERSION_1 = (
    "ALTER TABLE pairs RENAME TO pairs_v1",
    "DROP INDEX IF EXISTS pairs_due",
    "DROP INDEX IF EXISTS pairs_message",
    *(statement for statement in _PAIRS.split(";") if statement.strip()),
    "INSERT INTO pairs (phone, message_id, idx, sent_at, due_at, status, sequence, settled_at) "
    "SELECT phone, message_id, idx, sent_at, due_at, status, sequence, settled_at "
    "FROM pairs_v1 ORDER BY sent_at, idx",
    "DROP TABLE pairs_v1",
)
_CLAIM = (
    "SELECT id, phone, message_id, idx, sent_at, due_at, status, sequence FROM pairs "
    "WHERE due_at <= ? ORDER BY due_at LIMIT ?"
)
_ADD = (
    "INSERT OR IGNORE INTO pairs (phone, message_id, idx, sent_at, due_at) VALUES (?, ?, ?, ?, ?)"
)
_UPDATE = "UPDATE pairs SET due_at = ?, status = ?, sequence = ?, settled_at = ? WHERE id = ?"
_UPDATE_BY_KEY = (
    "UPDATE pairs SET due_at = ?, status = ?, sequence = ?, settled_at = ? "
    "WHERE phone = ? AND message_id = ?"
)
_APPEND = (
    "INSERT INTO changes (pos, phone, message_id, idx, status, previous, settled, reason, "
    "sequence, checked_at, date, code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Positions are never reused, even once every change is deleted (the watermark counts on it):
# the last one given is kept here, written once per commit.
_LAST = "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_position', ?)"
_TAKE = (
    "SELECT pos, idx, phone, message_id, status, previous, settled, reason, sequence, "
    "checked_at, date, code, message FROM changes WHERE pos > ? ORDER BY pos LIMIT ?"
)
_ROW_ID = operator.itemgetter(4)
# Changes committed by this process, kept to be taken without reading them back (at most
# that many: past it, they are read from the file).
_RECENT_MAX = 65_536
_STATUS: dict[str | None, DeliveryStatus | None] = {
    None: None,
    **{s.value: s for s in DeliveryStatus},
}
_REASON: dict[str | None, SettleReason | None] = {None: None, **{r.value: r for r in SettleReason}}
# The other way: a member as its text. sqlite3 binds a plain str directly; a str subclass
# (these enums) first goes through its adapter lookup, which costs more than the row.
_TEXT: dict[DeliveryStatus | SettleReason | None, str | None] = {
    None: None,
    **{s: s.value for s in DeliveryStatus},
    **{r: r.value for r in SettleReason},
}
# The watermark and a check value, so that a torn or foreign file reads as "nothing acked".
_MARK = struct.Struct("<qq")
_MARK_CHECK = 0x5D5A_C0FF_EE15_600D


class SQLiteStore:
    """Watch state in one SQLite file, for a watch that survives restarts.

    Args:
        path: The database file (created if missing). A companion `<path>-acks` file
            holds the lock and the acknowledgement watermark, next to SQLite's own
            `-wal` and `-shm` files.
        synchronous: SQLite's `synchronous` setting. `"NORMAL"` (the default, with
            WAL) survives a crash of the process; `"FULL"` also survives a power loss,
            at the cost of a disk sync per round step.

    Raises (from `open`):
        ClientStateError: Another process (or another store in this one) has the file.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> None:
        path = os.fspath(path)
        if not isinstance(path, str) or not path or path == ":memory:":
            raise InvalidInputError(
                "path must name a file (use MemoryStore for memory)", value=path
            )
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidInputError("synchronous must be 'NORMAL' or 'FULL'", value=synchronous)
        self.path = path
        self._synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        # Worker-thread state: the connection and the claimed pairs.
        self._db: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._last = 0  # the last change position given
        self._held: dict[Key, int] = {}  # claimed pairs -> their row ids
        self._hinted: dict[Key, float] = {}  # held pairs hinted: due then once committed
        self._kept = KeptHints()
        self.bells = Bells()  # one owner: every change is this process's, and rings
        # Event-loop state: the companion file, what was taken, what was acknowledged.
        self._fd = -1
        self._marks: mmap.mmap | None = None
        self._cursor = 0
        self._taken: deque[int] = deque()
        self._positions: dict[str, int] = {}
        self._acked: set[int] = set()
        self._watermark = 0
        self._recent: deque[tuple[int, StatusChange]] = deque()  # (position, change)

    def __repr__(self) -> str:
        state = "open" if self._executor is not None else "closed"
        return f"SQLiteStore({self.path!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            raise ClientStateError(f"{self!r} is already open")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="smspartner-watch-sqlite")
        self._cursor = 0
        self._taken.clear()
        self._positions.clear()
        self._acked.clear()
        self._recent.clear()
        try:
            self._watermark = await self._run(self._open)
            self.bells.due.ring()
            self.bells.outbox.ring()
        except BaseException:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=False)
            self._thread = None
            raise

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await self._run(self._close, self._watermark)
        finally:
            self._executor = None
            executor.shutdown(wait=False)
            # The thread ends as soon as it sees the shutdown. A thread's end cannot be
            # awaited, and joining it would block the loop: look again until it is gone.
            while self._thread is not None and self._thread.is_alive():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            self._thread = None

    # -- pairs -------------------------------------------------------------------------

    async def add(self, pairs: Sequence[NewPair]) -> int:
        added = await self._run(self._add, pairs)
        if added:
            self.bells.due.ring()
        return added

    async def claim(self, *, now: float, limit: int, lease: float) -> list[WatchedPair]:
        return await self._run(self._claim, now, limit)

    async def commit(self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange]) -> None:
        before = await self._run(self._commit, updates, changes, self._watermark)
        if changes:
            self._remember(before, changes)
            self.bells.outbox.ring()

    async def next_due(self) -> float | None:
        return await self._run(self._next_due)

    async def prune(self, *, settled_before: float) -> int:
        return await self._run(self._prune, settled_before)

    async def hint(self, message_id: int, phone_number: str | None = None, *, now: float) -> int:
        made = await self._run(self._hint, message_id, phone_number, now)
        if made:
            self.bells.due.ring()
        return made

    async def unreported(self) -> int:
        return self._last - self._watermark - len(self._acked)

    async def counts(self) -> StoreCounts:
        """Pairs pending and settled, by last status: a scan of the whole table, for a
        progress display when a watch starts (not one per round)."""
        rows = await self._run(self._counts)
        pending: dict[DeliveryStatus | None, int] = {}
        settled: dict[DeliveryStatus, int] = {}
        for is_pending, status, count in rows:
            value = _STATUS.get(status, DeliveryStatus.UNKNOWN)
            if is_pending:
                pending[value] = count
            else:
                settled[value or DeliveryStatus.UNKNOWN] = count
        return StoreCounts(pending, settled)

    # -- changes -----------------------------------------------------------------------

    async def take_changes(self, *, now: float, limit: int, lease: float) -> list[StatusChange]:
        recent, cursor = self._recent, self._cursor
        while recent and recent[0][0] <= cursor:
            recent.popleft()  # taken from the file meanwhile
        rows: Sequence[tuple[int, StatusChange]]
        if recent and recent[0][0] == cursor + 1:
            rows = [recent.popleft() for _ in range(min(limit, len(recent)))]
        else:
            rows = await self._run(self._take, cursor, limit, self._watermark)
        changes: list[StatusChange] = []
        for position, change in rows:
            self._taken.append(position)
            self._positions[change.id] = position
            changes.append(change)
        if rows:
            self._cursor = rows[-1][0]
        return changes

    async def ack(self, change_ids: Sequence[str]) -> None:
        # On the event loop, with no I/O, when acknowledgements come in order (the watcher's
        # way): see the module docstring.
        positions, acked, taken = self._positions, self._acked, self._taken
        now_acked: list[int] = []
        for cid in change_ids:
            position = positions.pop(cid, None)
            if position is not None:
                acked.add(position)
                now_acked.append(position)
        mark = self._watermark
        while taken and taken[0] in acked:
            mark = taken.popleft()
            acked.discard(mark)
        if mark != self._watermark and self._marks is not None:
            self._watermark = mark
            _MARK.pack_into(self._marks, 0, mark, mark ^ _MARK_CHECK)
        ahead = [position for position in now_acked if position in acked]
        if ahead:
            # Acknowledged before an earlier change: past the watermark, so a transaction.
            await self._run(self._forget, ahead)
        if now_acked:
            self.bells.room.ring()

    def _remember(self, before: int, changes: Sequence[StatusChange]) -> None:
        """Keep a commit's changes to hand out as they are (positions `before + 1`, ...).

        What `take_changes` would read back from the file is what was committed, so a
        consumer that keeps up takes the changes from memory. Not kept: more than
        `_RECENT_MAX` changes (the consumer is behind; it reads them from the file) and a
        date not in UTC (the file gives dates back in UTC).
        """
        recent = self._recent
        if len(recent) + len(changes) > _RECENT_MAX or not all(
            c.date is None or c.date.tzinfo is UTC for c in changes
        ):
            recent.clear()
            return
        if recent and recent[-1][0] != before:
            recent.clear()  # not next to what is kept: start again from here
        recent.extend(zip(itertools.count(before + 1), changes))

    # -- the worker thread ---------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise ClientStateError(f"{self!r} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> int:
        self._thread = threading.current_thread()
        self._fd, self._marks = _lock_and_map(self.path + "-acks")
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA synchronous = {self._synchronous}")
                db.execute("PRAGMA cache_size = -16000")  # KiB: a bound, not a need
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, 1, _SCHEMA_VERSION):
                    raise ClientStateError(
                        f"{self.path!r} holds watch state of a newer version ({version})"
                    )
                if version == 1:
                    with _transaction(db):
                        for statement in _FROM_VERSION_1:
                            db.execute(statement)
                        db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                kept = db.execute("SELECT value FROM meta WHERE key = 'last_position'").fetchone()
                highest = db.execute("SELECT max(pos) FROM changes").fetchone()[0]
                last = max(kept[0] if kept else 0, highest or 0)
                mark, check = _MARK.unpack_from(self._marks, 0)
                mark = mark if mark ^ check == _MARK_CHECK and mark > 0 else 0
                mark = min(mark, last)  # never ahead of what the database holds
                _MARK.pack_into(self._marks, 0, mark, mark ^ _MARK_CHECK)
                db.execute("DELETE FROM changes WHERE pos <= ?", (mark,))
            except BaseException:
                db.close()
                raise
        except BaseException:
            self._unmap()
            raise
        self._db = db
        self._held = {}
        if self._hinted:  # held when the last owner stopped: due at their hint now
            db.executemany(
                "UPDATE pairs SET due_at = min(due_at, ?) WHERE phone = ? AND message_id = ?",
                [(at, phone, message_id) for (phone, message_id), at in self._hinted.items()],
            )
            self._hinted = {}
        self._last = last
        return int(mark)

    def _close(self, watermark: int) -> None:
        db, self._db = self._db, None
        try:
            if db is not None:
                db.execute("DELETE FROM changes WHERE pos <= ?", (watermark,))
                db.close()
        finally:
            self._held = {}
            self._unmap()

    def _unmap(self) -> None:
        if self._marks is not None:
            with contextlib.suppress(OSError, ValueError):
                self._marks.flush()
            self._marks.close()
            self._marks = None
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ClientStateError(f"{self!r} is not open")
        return self._db

    def _add(self, pairs: Sequence[NewPair]) -> int:
        db = self._conn()
        kept = self._kept
        if len(kept):
            pairs = [_hinted(p, kept.due_at(p.phone_number, p.message_id)) for p in pairs]
        with _transaction(db):
            before = db.total_changes
            db.executemany(_ADD, pairs)
            return db.total_changes - before

    def _hint(self, message_id: int, phone_number: str | None, now: float) -> int:
        db, held, hinted = self._conn(), self._held, self._hinted
        if phone_number is None:
            rows = db.execute(
                "SELECT phone, due_at FROM pairs WHERE message_id = ?", (message_id,)
            ).fetchall()
            self._kept.keep(message_id, None, now)  # for recipients added later
        else:
            rows = db.execute(
                "SELECT phone, due_at FROM pairs WHERE phone = ? AND message_id = ?",
                (phone_number, message_id),
            ).fetchall()
            if not rows:
                self._kept.keep(message_id, phone_number, now)
        made, sooner = 0, []
        for phone, due_at in rows:
            if due_at is None:
                continue  # settled
            made += 1
            key = (phone, message_id)
            if key in held:
                hinted[key] = min(now, hinted.get(key, now))
            elif due_at > now:
                sooner.append((now, phone, message_id))
        if sooner:
            with _transaction(db):
                db.executemany(
                    "UPDATE pairs SET due_at = ? WHERE phone = ? AND message_id = ?", sooner
                )
        return made

    def _claim(self, now: float, limit: int) -> list[WatchedPair]:
        held = self._held
        self._kept.expire(now)
        rows = self._conn().execute(_CLAIM, (now, limit + len(held)))  # a row at a time
        claimed: list[WatchedPair] = []
        append, new, status = claimed.append, WatchedPair._make, _STATUS
        for row_id, phone, message_id, index, sent_at, due_at, last, sequence in rows:
            key = (phone, message_id)
            if key in held:
                continue
            held[key] = row_id
            append(new((phone, message_id, index, sent_at, due_at, status[last], sequence)))
            if len(claimed) == limit:
                break
        return claimed

    def _commit(
        self, updates: Sequence[PairUpdate], changes: Sequence[StatusChange], watermark: int
    ) -> int:
        """The round's transaction; returns the position before its first change."""
        # Anything else as it is: sqlite3 refuses what it cannot store, and the round with it.
        db, held, text = self._conn(), self._held, _TEXT.get
        by_id: list[tuple[Any, ...]] = []
        by_key: list[tuple[Any, ...]] = []  # committed without a claim: found by key
        for phone, message_id, due_at, status, sequence, settled_at in (
            map(self._with_hint, updates) if self._hinted else updates
        ):
            row_id = held.pop((phone, message_id), None)  # released, whatever comes of it
            if row_id is None:
                by_key.append(
                    (due_at, text(status, status), sequence, settled_at, phone, message_id)
                )
            else:
                by_id.append((due_at, text(status, status), sequence, settled_at, row_id))
        # A page comes in due order, each due time's pairs in row order: sorting the rows
        # makes the B-tree be walked once, not once per due time.
        by_id.sort(key=_ROW_ID)
        with _transaction(db):
            db.executemany(_UPDATE, by_id)
            if by_key:
                db.executemany(_UPDATE_BY_KEY, by_key)
            last = self._last
            if changes:
                db.executemany(
                    _APPEND,
                    (  # one row at a time: a page's changes are not copied into a list
                        (
                            position,
                            c.phone_number,
                            c.message_id,
                            c.index,
                            text(c.status, c.status),
                            text(c.previous, c.previous),
                            c.settled,
                            text(c.reason, c.reason),
                            c.sequence,
                            c.checked_at,
                            None if c.date is None else c.date.timestamp(),
                            c.code,
                            c.message,
                        )
                        for position, c in enumerate(changes, last + 1)
                    ),
                )
                db.execute(_LAST, (last + len(changes),))
            db.execute("DELETE FROM changes WHERE pos <= ?", (watermark,))
        self._last = last + len(changes)
        return last

    def _with_hint(self, update: PairUpdate) -> PairUpdate:
        at = self._hinted.pop((update.phone_number, update.message_id), None)
        if at is None or update.due_at is None or update.due_at <= at:
            return update
        return update._replace(due_at=at)

    def _forget(self, positions: list[int]) -> None:
        db = self._conn()
        with _transaction(db):
            db.executemany("DELETE FROM changes WHERE pos = ?", [(p,) for p in positions])

    def _next_due(self) -> float | None:
        row = self._conn().execute("SELECT min(due_at) FROM pairs WHERE due_at IS NOT NULL")
        due: float | None = row.fetchone()[0]
        return due

    def _counts(self) -> list[tuple[int, str | None, int]]:
        sql = "SELECT due_at IS NOT NULL, status, count(*) FROM pairs GROUP BY 1, 2"
        return self._conn().execute(sql).fetchall()

    def _prune(self, settled_before: float) -> int:
        db = self._conn()
        with _transaction(db):
            cursor = db.execute(
                "DELETE FROM pairs WHERE due_at IS NULL AND settled_at < ?", (settled_before,)
            )
            return cursor.rowcount

    def _take(self, cursor: int, limit: int, watermark: int) -> list[tuple[int, StatusChange]]:
        db = self._conn()
        db.execute("DELETE FROM changes WHERE pos <= ?", (watermark,))
        rows = db.execute(_TAKE, (cursor, limit)).fetchall()
        status, reason = _STATUS, _REASON
        return [
            (
                position,
                new_change(
                    index,
                    phone,
                    message_id,
                    status[new],  # type: ignore[arg-type]
                    status[previous],
                    bool(settled),
                    reason[why],
                    sequence,
                    checked_at,
                    None if date is None else datetime.fromtimestamp(date, UTC),
                    code,
                    message,
                ),
            )
            for (
                position,
                index,
                phone,
                message_id,
                new,
                previous,
                settled,
                why,
                sequence,
                checked_at,
                date,
                code,
                message,
            ) in rows
        ]


def _hinted(pair: NewPair, at: float | None) -> NewPair:
    return pair if at is None or at >= pair.due_at else pair._replace(due_at=at)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _lock_and_map(path: str) -> tuple[int, mmap.mmap]:
    """Open, lock (exclusively, or fail) and map the companion file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd, path)
        if os.fstat(fd).st_size < _MARK.size:
            os.ftruncate(fd, _MARK.size)
        return fd, mmap.mmap(fd, _MARK.size)
    except BaseException:
        os.close(fd)
        raise


def _lock(fd: int, path: str) -> None:
    try:
        if sys.platform == "win32":  # pragma: no cover - not run on the CI's Linux
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ClientStateError(f"{path!r} is in use by another watch store") from None
