"""How a store tells the parts of a watch that there may be work: `Bell` and `Bells`.

A watcher's parts never wait on each other: the poller waits for pairs to come due,
the outbox for changes to take, and both learn of them from the store, which is the
one thing every process of a fleet shares. A store rings its bells when its state
changes in a way a waiter may care about, whoever changed it: this process (an `add`,
a `commit`) or, for a shared store, another one (Redis publishes each change to every
worker). What a store cannot ring for (a lease lapsing: nothing happens at that
moment) a waiter finds by looking again after `Bells.recheck` seconds at the latest.

A bell is a counter, not a flag, so that no ring is lost between looking at the store
and waiting: read `rung` first, look, then `wait(seen)` returns at once if the bell
rang meanwhile.
"""

from __future__ import annotations

import asyncio

import attrs

__all__ = ["Bell", "Bells"]


class Bell:
    """A counter that rings: waiters wait for it to move past what they saw."""

    __slots__ = ("_rung", "_waiters")

    def __init__(self) -> None:
        self._rung = 0
        self._waiters: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"Bell(rung={self._rung})"

    @property
    def rung(self) -> int:
        """How many times it rang: read it before looking at the store."""
        return self._rung

    def ring(self) -> None:
        """Wake every waiter (call on the event loop)."""
        self._rung += 1
        if not self._waiters:  # the common case: a ring per change acknowledged
            return
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, seen: int, at_most: float | None = None) -> bool:
        """Until it rings past `seen` (True), or `at_most` real seconds (False)."""
        if self._rung != seen:
            return True
        if at_most is not None and at_most <= 0:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(at_most):
                await waiter
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)
        return True


@attrs.frozen(weakref_slot=False, eq=False)
class Bells:
    """A store's bells and how long a waiter may trust them."""

    due: Bell = attrs.field(factory=Bell)
    """Pending pairs may be due sooner: added, handed back, hinted, rescheduled."""
    outbox: Bell = attrs.field(factory=Bell)
    """Changes to take: committed, or handed back."""
    room: Bell = attrs.field(factory=Bell)
    """Changes acknowledged: room in the outbox (a poller paused on the backlog waits for
    it; readers do not, so acknowledging wakes no reader)."""
    recheck: float | None = None
    """Real seconds after which a waiter looks at the store again without a ring: the
    bound on noticing what the store cannot ring for (a lapsed lease, a notice lost with
    a connection). None: every change rings (a store with a single owner)."""
