"""A scripted multi-status endpoint for respx: echoes what it is asked, counts what it sees."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import attrs
import httpx
import orjson

STATUSES = ("Delivered", "Not delivered", "Waiting")


def expected_status(phone: str, message_id: int) -> str:
    """The status the fake gives a pair: a pure function, so tests can check every result."""
    return STATUSES[(int(phone[-4:]) + message_id) % 3]


def missing(message_id: int) -> bool:
    return message_id % 97 == 0


@attrs.define
class FakeMultiStatus:
    delay: float = 0.0
    shuffle: bool = False
    national_echo: bool = False
    #: call number (1-based) -> a response to give instead
    script: dict[int, Callable[[], httpx.Response]] = attrs.field(factory=dict)
    calls: int = 0
    pairs_per_call: list[int] = attrs.field(factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    seen: list[tuple[str, int]] = attrs.field(factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        number = self.calls
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if number in self.script:
                return self.script[number]()
            body = orjson.loads(request.content)
            pairs = body["SMSStatut_List"]
            self.pairs_per_call.append(len(pairs))
            items = [self._item(p["phoneNumber"], p["messageId"]) for p in pairs]
            if self.shuffle:
                random.Random(number).shuffle(items)
            return httpx.Response(
                200,
                content=orjson.dumps({"success": True, "code": 200, "StatutResponse_List": items}),
            )
        finally:
            self.in_flight -= 1

    def _item(self, phone: str, message_id: int) -> dict[str, object]:
        self.seen.append((phone, message_id))
        echoed = "0" + phone[3:] if self.national_echo and phone.startswith("+33") else phone
        if missing(message_id):
            return {
                "success": False,
                "code": 4,
                "phoneNumber": echoed,
                "messageId": message_id,
                "status": "Numéro introuvable",
            }
        return {
            "success": True,
            "code": 200,
            "phoneNumber": echoed,
            "messageId": str(message_id),
            "status": expected_status(phone, message_id),
            "date": "1517934416",
            "stopSms": "0",
            "isSpam": "0",
        }


def pairs(n: int, *, national: bool = False) -> list[tuple[str, int]]:
    prefix = "06" if national else "+336"
    return [(f"{prefix}{i % 10**8:08d}", i + 1) for i in range(n)]
