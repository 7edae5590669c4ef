"""The sandbox server: a raw ASGI 3 app emulating the four status endpoints.

Written against ASGI directly so that it needs nothing beyond the stdlib and orjson, and can be
driven in-process by `httpx.ASGITransport` or served over TCP by any ASGI server.
The API key is checked but never echoed, logged or stored in counters.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qs

import orjson

from . import _messages as msg
from ._data import SandboxData, StatusRecord, normalize_phone, paris_local_time
from ._faults import DroppedConnection, Faults
from ._render import Doc, Value, XmlStyle, render_json, render_xml
from ._stats import Stats

__all__ = ["Sandbox"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_PAIRS: Final = 500
_MAX_BODY: Final = 8 * 1024 * 1024
_BAD_KEY: Final = "bad-key"
_INT: Final = re.compile(r"-?[0-9]{1,18}")
_JSON: Final = b"application/json"
_XML: Final = b"application/xml; charset=utf-8"
_HTML: Final = b"text/html; charset=utf-8"

# path -> (endpoint name, allowed method, XML layout of its success answers)
_ROUTES: Final[dict[str, tuple[str, str, XmlStyle]]] = {
    "/v1/message-status": ("message-status", "GET", "inline"),
    "/v1/multi-status": ("multi-status", "POST", "block"),
    "/v1/bulk-status": ("bulk-status", "GET", "block"),
    "/v1/bulk-status-by-tag": ("bulk-status-by-tag", "GET", "inline"),
}

_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HTML_503: Final = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_MAINTENANCE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    b"<body><h1>Maintenance en cours</h1><p>Merci de r\xc3\xa9essayer plus tard.</p>"
    b"</body></html>\n"
)


class _Response(NamedTuple):
    status: int
    content_type: bytes
    body: bytes
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()


class _ApiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _parse_int(raw: object) -> int | None:
    """An integer message id from a JSON number or a digit string; bools are not ids."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        s = raw.strip()
        if _INT.fullmatch(s):
            return int(s)
    return None


class Sandbox:
    """An emulator of the SMS Partner status endpoints, with knobs, faults and counters.

    `app` is the ASGI callable. `api_key=None` accepts any key except "bad-key".
    The knobs below may be changed between requests (a test turning faults on).
    """

    seed: int
    """Picks the dataset: equal seeds give equal answers (`data`)."""
    api_key: str | None
    """The only key accepted; None accepts any key except "bad-key" (code 1)."""
    latency: float
    """Seconds each answer waits before it is sent."""
    page_size: int
    """Recipients per page of bulk-status-by-tag."""
    shuffle_multi: bool
    """Answer multi-status items in a shuffled order (the API does not promise its order)."""
    ignore_page: bool
    """Answer page 1 whatever page is asked (a paginator that must not loop for ever)."""
    language: msg.Language
    """The language of error messages: `"fr"` (the API's) or `"en"`."""
    faults: Faults
    """What goes wrong, and how often (no faults by default)."""
    clock: Callable[[], float]
    """Seconds, any origin; Waiting messages settle as it moves (`elapsed()`)."""
    data: SandboxData
    """The dataset answers come from: what each pair's status is, at any `elapsed()`."""
    stats: Stats
    """Requests, batch sizes, concurrency and faults injected so far."""
    on_asked: Callable[[list[tuple[str, int]]], object] | None
    """Called with the pairs of each multi-status request, if set: a `CallbackPusher`'s
    `track_first_asked`, so that the standalone server pushes their reports (`--push-url`)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        api_key: str | None = "sandbox-key",
        latency: float = 0.0,
        page_size: int = 100,
        shuffle_multi: bool = False,
        ignore_page: bool = False,
        language: msg.Language = "fr",
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if latency < 0:
            raise ValueError("latency must not be negative")
        if language not in ("fr", "en"):
            raise ValueError("language must be 'fr' or 'en'")
        self.seed = seed
        self.api_key = api_key
        self.latency = latency
        self.page_size = page_size
        self.shuffle_multi = shuffle_multi
        self.ignore_page = ignore_page
        self.language: msg.Language = language
        self.faults = faults if faults is not None else Faults()
        self.clock = clock
        self.data = SandboxData(seed)
        self.stats = Stats()
        self.on_asked = None
        self._started = clock()
        self._shuffle_rng = random.Random(seed)  # noqa: S311 - test data, not secrets

    def __repr__(self) -> str:
        # Deliberately without the API key.
        return f"Sandbox(seed={self.seed}, latency={self.latency}, page_size={self.page_size})"

    def elapsed(self) -> float:
        """Seconds of sandbox time since it was created; what Waiting records settle on."""
        return self.clock() - self._started

    # ASGI entry point

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the sandbox only speaks HTTP, not {scope['type']}")
        path: str = scope["path"]
        route = _ROUTES.get(path.rstrip("/") if path != "/" else path)
        self.stats._begin(route[0] if route else "unknown")
        try:
            body = await _read_body(receive)
            if body is None:
                return  # client went away
            fault = self.faults.next()
            if fault is not None:
                self.stats.faults[fault] += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault == "slow":
                await asyncio.sleep(self.faults.slow_seconds)
            canned = self._canned(fault)
            response = canned if canned is not None else self._handle(scope, route, body)
            await _send(send, response, fault)
        finally:
            self.stats._end()

    def _canned(self, fault: str | None) -> _Response | None:
        retry = ((b"retry-after", str(self.faults.retry_after).encode()),)
        if fault == "429":
            doc: Doc = {"success": False, "code": 429, "message": "Too Many Requests"}
            return _Response(429, _JSON, render_json(doc), retry)
        if fault == "500":
            doc = {"success": False, "code": 500, "message": "Internal Server Error"}
            return _Response(500, _JSON, render_json(doc))
        if fault == "502":
            return _Response(502, b"text/plain", b"")
        if fault == "503":
            return _Response(503, _HTML, _HTML_503, retry)
        if fault == "html":
            return _Response(502, _HTML, _HTML_502)
        if fault == "html200":
            return _Response(200, _HTML, _HTML_MAINTENANCE)
        return None

    # request handling

    def _handle(
        self, scope: Scope, route: tuple[str, str, XmlStyle] | None, body: bytes
    ) -> _Response:
        query = _query(scope)
        xml = query.get("_format", "").lower() == "xml"
        if route is None:
            return self._error(msg.UNKNOWN_PATH, xml)
        name, method, style = route
        if scope["method"] != method:
            resp = self._error(msg.METHOD_NOT_ALLOWED, xml)
            return resp._replace(extra_headers=((b"allow", method.encode()),))
        try:
            if name == "multi-status":
                payload = _json_object(body)
                fmt = payload.get("_format")
                xml = xml or (isinstance(fmt, str) and fmt.lower() == "xml")
                doc = self._multi_status(query, payload)
            elif name == "message-status":
                doc = self._message_status(query)
            elif name == "bulk-status":
                doc = self._bulk_status(query)
            else:
                doc = self._by_tag(query)
        except _ApiError as exc:
            return self._error(exc.code, xml)
        if xml:
            return _Response(200, _XML, render_xml(doc, style=style))
        return _Response(200, _JSON, render_json(doc))

    def _error(self, code: int, xml: bool) -> _Response:
        wire = msg.wire_code(code)
        self.stats.errors[wire] += 1
        doc: Doc = {"success": False, "code": wire, "message": msg.text(code, self.language)}
        if xml:
            return _Response(msg.http_status(code), _XML, render_xml(doc, plain_strings=True))
        return _Response(msg.http_status(code), _JSON, render_json(doc))

    def _check_key(self, key: object) -> None:
        if not isinstance(key, str) or not key:
            raise _ApiError(msg.API_KEY_MISSING)
        if key == _BAD_KEY or (self.api_key is not None and key != self.api_key):
            raise _ApiError(msg.API_KEY_INVALID)

    def _message_id(self, raw: str | None) -> int:
        mid = _parse_int(raw) if raw else None
        if mid is None:
            raise _ApiError(msg.MESSAGE_ID_MISSING)
        return mid

    def _message_status(self, query: dict[str, str]) -> Doc:
        self._check_key(query.get("apiKey"))
        phone = query.get("phoneNumber", "").strip()
        if not phone:
            raise _ApiError(msg.PHONE_MISSING)
        mid = self._message_id(query.get("messageId"))
        rec = self.data.status_of(phone, mid, self.elapsed())
        if rec is None:
            raise _ApiError(msg.NOT_FOUND)
        return {
            "success": True,
            "code": 200,
            "number": phone,
            "messageId": str(mid),
            "stopSms": rec.stop_sms,
            "date": paris_local_time(rec.date),
            "statut": rec.status,
            "cost": rec.cost,
            "countryCode": rec.country_code,
            "currency": rec.currency,
        }

    def _multi_status(self, query: dict[str, str], payload: dict[str, Any]) -> Doc:
        self._check_key(payload.get("apiKey", query.get("apiKey")))
        items = payload.get("SMSStatut_List", payload.get("SMSStatus_List"))
        if items is None or items == []:
            raise _ApiError(msg.EMPTY_LIST)
        if not isinstance(items, list):
            raise _ApiError(msg.BAD_FORMAT)
        if len(items) > MAX_PAIRS:
            raise _ApiError(msg.TOO_MANY_PAIRS)
        pairs: list[tuple[str, int]] = []
        for item in items:
            if not isinstance(item, dict):
                raise _ApiError(msg.BAD_FORMAT)
            phone = item.get("phoneNumber")
            mid = _parse_int(item.get("messageId"))
            if not isinstance(phone, str) or not phone.strip() or mid is None:
                raise _ApiError(msg.BAD_FORMAT)
            pairs.append((phone.strip(), mid))
        self.stats.pairs_per_call.append(len(pairs))
        if self.on_asked is not None:
            self.on_asked(pairs)
        elapsed = self.elapsed()
        not_found = msg.item_not_found(self.language)
        out: list[Value] = []
        for phone, mid in pairs:
            rec = self.data.status_of(phone, mid, elapsed)
            if rec is None:
                echo = normalize_phone(phone) or phone
                out.append(
                    {
                        "success": False,
                        "code": msg.NOT_FOUND,
                        "phoneNumber": echo,
                        "messageId": mid,
                        "status": not_found,
                    }
                )
            else:
                out.append(
                    {
                        "success": True,
                        "code": 200,
                        "phoneNumber": rec.phone,
                        "messageId": mid,
                        "status": rec.status,
                        "date": str(rec.date),
                        "stopSms": "1" if rec.stop_sms else "0",
                        "isSpam": "1" if rec.is_spam else "0",
                    }
                )
        if self.shuffle_multi:
            self._shuffle_rng.shuffle(out)
        return {"success": True, "code": 200, "StatutResponse_List": out}

    def _bulk_status(self, query: dict[str, str]) -> Doc:
        self._check_key(query.get("apiKey"))
        mid = self._message_id(query.get("messageId"))
        phones = self.data.recipients(mid)
        if phones is None:
            raise _ApiError(msg.NOT_FOUND)
        elapsed = self.elapsed()
        items: list[Value] = []
        for phone in phones:
            rec = self.data.status_of(phone, mid, elapsed)
            if rec is not None:
                items.append(_bulk_item(rec))
        return {"success": True, "code": 200, "message_id": str(mid), "StatutResponse_List": items}

    def _by_tag(self, query: dict[str, str]) -> Doc:
        self._check_key(query.get("apiKey"))
        tag = query.get("tag", "").strip()
        if not tag:
            raise _ApiError(msg.TAG_MISSING)
        raw_page = query.get("page", "").strip()
        page = _parse_int(raw_page) if raw_page else 1
        if page is None or page < 1:
            raise _ApiError(msg.BAD_FORMAT)
        if self.ignore_page:
            page = 1
        tag_items = self.data.tag_items(tag)
        start = (page - 1) * self.page_size
        elapsed = self.elapsed()
        items: list[Value] = []
        for phone, mid in tag_items[start : start + self.page_size]:
            rec = self.data.status_of(phone, mid, elapsed)
            if rec is not None:
                items.append(_bulk_item(rec))
        return {
            "success": True,
            "code": 200,
            "currentPage": page,
            "total": len(tag_items),
            "StatutResponse_List": items,
        }


def _bulk_item(rec: StatusRecord) -> Value:
    return {
        "phoneNumber": rec.phone,
        "status": rec.status,
        "stopSMS": rec.stop_sms,
        "date": str(rec.date),
    }


def _json_object(body: bytes) -> dict[str, Any]:
    """The multi-status body; an empty body counts as `{}` (so: API key missing)."""
    if not body.strip():
        return {}
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _ApiError(msg.MALFORMED_JSON) from None
    if not isinstance(payload, dict):
        raise _ApiError(msg.BAD_FORMAT)
    return payload


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    parsed = parse_qs(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    return {k: v[0] for k, v in parsed.items()}


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, response: _Response, fault: str | None) -> None:
    body = response.body
    length = len(body)
    if fault in ("truncate", "drop"):
        body = body[: len(body) // 2]
        if fault == "truncate":
            length = len(body)
    headers = [
        (b"content-type", response.content_type),
        (b"content-length", str(length).encode()),
        *response.extra_headers,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if fault == "drop":
        await send({"type": "http.response.body", "body": body, "more_body": True})
        raise DroppedConnection("sandbox fault: connection dropped mid-body")
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
