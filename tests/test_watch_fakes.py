"""Fakes shared by the watch tests (no tests here): simulated time and a scripted API.

`FakeClock` is the watcher's clock and sleep: a sleep moves time forward at once.
`ScriptedAPI` answers multi-status from a timeline per phone number (what the API
says about that pair at each instant), records every pair it was asked about and
when, and can fail calls on demand.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from smspartner_async import RetryPolicy, SMSPartnerClient

T0 = 1_700_000_000.0  # a multiple of 256: grid steps fall on whole offsets from it
NOT_FOUND = "not found"  # a timeline value: the per-item answer code 4


class FakeClock:
    """Epoch seconds that only move when the watcher sleeps."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


#: A pair's timeline: seconds since T0 -> the status text, or NOT_FOUND.
Timeline = Callable[[float], str]


def steps(*changes: tuple[float, str]) -> Timeline:
    """A timeline from (from_second, value) steps, the first one from 0."""

    def at(elapsed: float) -> str:
        value = changes[0][1]
        for start, then in changes:
            if elapsed >= start:
                value = then
        return value

    return at


class ScriptedAPI:
    """A multi-status endpoint for `httpx.MockTransport`, driven by timelines and a clock."""

    def __init__(self, clock: FakeClock, timelines: dict[str, Timeline]) -> None:
        self.clock = clock
        self.timelines = timelines
        self.asked: defaultdict[str, list[float]] = defaultdict(list)
        self.calls: list[int] = []  # pairs per answered call
        self.attempts = 0
        #: Called with the attempt number (1-based); a response returned is sent instead.
        self.fail: Callable[[int], httpx.Response | None] = lambda attempt: None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        failure = self.fail(self.attempts)
        if failure is not None:
            return failure
        body = orjson.loads(request.content)
        items = body["SMSStatut_List"]
        self.calls.append(len(items))
        elapsed = self.clock.now - T0
        answers = []
        for item in items:
            phone, message_id = item["phoneNumber"], item["messageId"]
            self.asked[phone].append(elapsed)
            answers.append(self._item(phone, message_id, self.timelines[phone](elapsed)))
        return httpx.Response(
            200,
            content=orjson.dumps({"success": True, "code": 200, "StatutResponse_List": answers}),
        )

    @staticmethod
    def _item(phone: str, message_id: int, value: str) -> dict[str, Any]:
        if value == NOT_FOUND:
            return {
                "success": False,
                "code": 4,
                "phoneNumber": phone,
                "messageId": message_id,
                "status": "Numéro introuvable",
            }
        return {
            "success": True,
            "code": 200,
            "phoneNumber": phone,
            "messageId": message_id,
            "status": value,
            "date": "1517934416",
            "stopSms": "0",
            "isSpam": "0",
        }


@asynccontextmanager
async def scripted_client(api: ScriptedAPI, **options: Any) -> AsyncIterator[SMSPartnerClient]:
    """A client whose requests all go to `api`, with no retry waits; closed on exit."""
    options.setdefault("retry", RetryPolicy.testing())
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(api)) as http,
        SMSPartnerClient(
            "test-key", base_url="https://api.example.test/v1", http_client=http, **options
        ) as client,
    ):
        yield client


def phone(n: int) -> str:
    return f"+336{n:08d}"
