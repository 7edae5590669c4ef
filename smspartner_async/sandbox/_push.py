"""The sandbox pushes delivery reports too: callbacks to a URL, as `urlDlr` makes SMS Partner do.

    pusher = CallbackPusher(sandbox, "http://127.0.0.1:8011/dlr/<token>", lost=0.1)
    async with pusher:                    # pushes as reports become available
        pusher.track(pairs)               # as if they had just been sent with urlDlr

A pair's report becomes available when the sandbox's data says its status is
final: at once for the pairs final from the start, at their `settles_at` for
the Waiting ones that settle (on the sandbox's clock); never for the others
(unknown pairs, Waiting for ever). Its callback goes `delay` seconds later,
unless the options say otherwise:

- `lost`: the share of callbacks never sent (the watch's polling must find them);
- `duplicated`: the share sent twice, a few seconds apart;
- `reordered`: the share followed, after the final report, by a stale "waiting"
  one, as platforms that deliver out of order do (it must change nothing);
- `late`: the share held back up to `late_by` seconds;
- `without_phone`: the share naming the message id alone (a bulk send's report).

Draws come from `seed`: the same options and pairs push the same callbacks.
The payload's shape is a guess (the real one is not documented): lowercase
statuses, `messageId` and `phoneNumber`, as JSON (`body="json"`), a form
(`body="form"`) or a query string (`method="GET"`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Self

import attrs
import httpx
import orjson

from ._data import DELIVERED, NOT_DELIVERED, WAITING

if TYPE_CHECKING:
    from ._app import Sandbox

__all__ = ["CallbackPusher", "PushStats"]

_SEND_AT_ONCE: Final = 32
_SEEN_MAX: Final = 1_000_000
_REPEAT_WITHIN: Final = 5.0
_STATUS_WORDS: Final = {
    DELIVERED: "delivered",
    NOT_DELIVERED: "not delivered",
    WAITING: "waiting",
}


class _Callback(NamedTuple):
    at: float  # sandbox elapsed seconds
    order: int
    message_id: int
    phone: str | None
    status: str


@attrs.define(weakref_slot=False)
class PushStats:
    """What the pusher did (a test reads it to know what the watch could have been told)."""

    tracked: int = 0
    """Pairs given to `track`."""
    reports: int = 0
    """Pairs whose report becomes available (the others never get a callback)."""
    lost: int = 0
    """Reports whose callback is never sent."""
    scheduled: int = 0
    """Callbacks to send, repeats and stale ones included."""
    sent: int = 0
    """Callbacks answered 2xx."""
    refused: int = 0
    """Callbacks answered with another status."""
    failed: int = 0
    """Callbacks that got no answer (connection refused, timeout)."""


def _share(value: float, name: str) -> float:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a share between 0 and 1, not {value!r}")
    return float(value)


class CallbackPusher:
    """Sends the sandbox's delivery reports to a callback URL, on the sandbox's clock.

    Args:
        sandbox: Whose data and clock say when each report becomes available.
        url: The callback URL (the receiver's, token included).
        http: The client to send with (default: a new one, closed on exit); pass one
            with `httpx.ASGITransport(app=receiver.asgi)` to push in-process.
        method: "POST" (the default) or "GET" (the fields in the query string).
        body: For POST, "json" or "form".
        delay: Seconds of sandbox time between a report and its callback.
        sleep: Waits that many seconds of the sandbox's clock (`FastClock.sleep` for
            a fast one; `asyncio.sleep` by default).
    """

    def __init__(
        self,
        sandbox: Sandbox,
        url: str,
        *,
        http: httpx.AsyncClient | None = None,
        method: Literal["GET", "POST"] = "POST",
        body: Literal["json", "form"] = "json",
        delay: float = 1.0,
        lost: float = 0.0,
        duplicated: float = 0.0,
        reordered: float = 0.0,
        late: float = 0.0,
        late_by: float = 600.0,
        without_phone: float = 0.0,
        seed: int = 0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, not {method!r}")
        if body not in ("json", "form"):
            raise ValueError(f"body must be 'json' or 'form', not {body!r}")
        for name, seconds in (("delay", delay), ("late_by", late_by)):
            if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
                raise ValueError(f"{name} must be a number of seconds, not {seconds!r}")
        self.sandbox = sandbox
        self.url = url
        self.method = method
        self.body = body
        self.delay = float(delay)
        self.lost = _share(lost, "lost")
        self.duplicated = _share(duplicated, "duplicated")
        self.reordered = _share(reordered, "reordered")
        self.late = _share(late, "late")
        self.late_by = float(late_by)
        self.without_phone = _share(without_phone, "without_phone")
        self.stats = PushStats()
        self._http = http
        self._own_http = http is None
        self._sleep = sleep
        self._rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self._order = itertools.count()
        self._queue: list[_Callback] = []
        self._seen: dict[tuple[str, int], None] = {}
        self._tracked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        # Not the URL: it holds the receiver's token.
        return f"CallbackPusher(method={self.method!r}, waiting={len(self._queue)})"

    # -- what to push --------------------------------------------------------------------------

    def track(self, pairs: Iterable[tuple[str, int]]) -> int:
        """Push the reports of these pairs, as if they had just been sent with `urlDlr`.

        Returns how many callbacks were scheduled.
        """
        now = self.sandbox.elapsed()
        data, rng, stats = self.sandbox.data, self._rng, self.stats
        before = stats.scheduled
        for phone, message_id in pairs:
            stats.tracked += 1
            record = data.status_of(phone, message_id, math.inf)
            if record is None or record.status == WAITING:
                continue  # no report, ever
            stats.reports += 1
            if rng.random() < self.lost:
                stats.lost += 1
                continue
            settles = record.settles_at if record.settles_at is not None else 0.0
            at = max(now, settles) + self.delay
            if rng.random() < self.late:
                at += rng.uniform(0.0, self.late_by)
            named = None if rng.random() < self.without_phone else record.phone
            word = _STATUS_WORDS[record.status]
            self._push(at, message_id, named, word)
            if rng.random() < self.duplicated:
                self._push(at + rng.uniform(0.0, _REPEAT_WITHIN), message_id, named, word)
            if rng.random() < self.reordered:
                self._push(
                    at + rng.uniform(0.0, _REPEAT_WITHIN), message_id, named, _STATUS_WORDS[WAITING]
                )
        self._tracked.set()
        return stats.scheduled - before

    def track_first_asked(self, pairs: Iterable[tuple[str, int]]) -> int:
        """`track` the pairs never seen before: for a sandbox with no send endpoint (the
        standalone server), a pair counts as sent the first time it is asked about
        (`sandbox.on_asked = pusher.track_first_asked`). Remembers the last
        `_SEEN_MAX` pairs."""
        seen = self._seen
        new = [pair for pair in pairs if pair not in seen]
        for pair in new:
            seen[pair] = None
        while len(seen) > _SEEN_MAX:
            del seen[next(iter(seen))]
        return self.track(new) if new else 0

    def _push(self, at: float, message_id: int, phone: str | None, status: str) -> None:
        heapq.heappush(self._queue, _Callback(at, next(self._order), message_id, phone, status))
        self.stats.scheduled += 1

    @property
    def waiting(self) -> int:
        """Callbacks scheduled and not sent yet."""
        return len(self._queue)

    def next_at(self) -> float | None:
        """When the next callback is due, in sandbox elapsed seconds; None when none waits."""
        return self._queue[0].at if self._queue else None

    # -- pushing -------------------------------------------------------------------------------

    async def push_due(self) -> int:
        """Send every callback due by the sandbox's clock now; returns how many went out."""
        now = self.sandbox.elapsed()
        due: list[_Callback] = []
        while self._queue and self._queue[0].at <= now:
            due.append(heapq.heappop(self._queue))
        for start in range(0, len(due), _SEND_AT_ONCE):
            await asyncio.gather(*(self._send(c) for c in due[start : start + _SEND_AT_ONCE]))
        return len(due)

    async def _send(self, callback: _Callback) -> None:
        fields: dict[str, str] = {"messageId": str(callback.message_id), "status": callback.status}
        if callback.phone is not None:
            fields["phoneNumber"] = callback.phone
        http = self._client()
        try:
            if self.method == "GET":
                response = await http.get(self.url, params=fields)
            elif self.body == "json":
                response = await http.post(
                    self.url,
                    content=orjson.dumps(fields),
                    headers={"content-type": "application/json"},
                )
            else:
                response = await http.post(self.url, data=fields)
        except httpx.HTTPError:
            self.stats.failed += 1
            return
        if response.is_success:
            self.stats.sent += 1
        else:
            self.stats.refused += 1

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0)
        return self._http

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("this pusher is already running")
        self._task = asyncio.create_task(self._run(), name="sandbox-callback-pusher")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _run(self) -> None:
        """Sleep on the sandbox's clock until the next callback is due (or pairs are tracked)."""
        while True:
            self._tracked.clear()
            await self.push_due()
            next_at = self.next_at()
            if next_at is None:
                await self._tracked.wait()
                continue
            napping = asyncio.ensure_future(self._sleep(next_at - self.sandbox.elapsed()))
            tracked = asyncio.ensure_future(self._tracked.wait())
            try:
                await asyncio.wait((napping, tracked), return_when=asyncio.FIRST_COMPLETED)
            finally:
                napping.cancel()
                tracked.cancel()
