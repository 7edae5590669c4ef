"""A fast canned SMS Partner server for the benchmarks, run in its own process.

`python -m benchmarks.server [--latency SECONDS]` binds an `aiohttp.web` server to an
ephemeral port on 127.0.0.1 and prints one ready line, `READY http://127.0.0.1:PORT`.

`POST /v1/multi-status` echoes each requested (phoneNumber, messageId) pair as a status item,
rendered from string templates (JSON, or positional XML with `_format=xml`); the items of about
3% of the message ids are per-item failures (code 4). Answers are cached by request body (up to
400 MB), so repeated runs cost the server only aiohttp's own work.

`GET /v1/bulk-status?messageId=N` answers N recipients (JSON, or XML with `_format=xml`), for the
loop-lag scenario; each answer is rendered once and cached.

Parent processes use `ServerProcess` to start it, wait for the ready line, read its CPU time
(to tell whether the server was the bottleneck) and stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

NAME = "aiohttp.web canned echo server (benchmarks/server.py), separate process, 127.0.0.1"

_OK = (
    '{"success":true,"code":200,"phoneNumber":"%s","messageId":%d,"status":"%s",'
    '"date":"1517934416","stopSms":"0","isSpam":"0"}'
)
_FAIL = '{"success":false,"code":4,"phoneNumber":"%s","messageId":%d,"status":"Numéro introuvable"}'
_HEAD = '{"success":true,"code":200,"StatutResponse_List":['
_TAIL = "]}"
_XML_OK = (
    "<entry><entry>true</entry><entry>200</entry><entry><![CDATA[%s]]></entry>"
    "<entry>%d</entry><entry><![CDATA[%s]]></entry><entry><![CDATA[1517934416]]></entry>"
    "<entry><![CDATA[0]]></entry><entry><![CDATA[0]]></entry></entry>"
)
_XML_FAIL = (
    "<entry><entry>false</entry><entry>4</entry><entry><![CDATA[%s]]></entry>"
    "<entry>%d</entry><entry><![CDATA[Numéro introuvable]]></entry></entry>"
)
_XML_HEAD = (
    "<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>true</entry><entry>200</entry><entry>"
)
_XML_TAIL = "</entry></result>"
_STATUSES = ("Delivered",) * 8 + ("Not delivered", "Waiting")
_BULK_OK = '{"phoneNumber":"%s","status":"%s","stopSMS":"0","date":"1517934416"}'
_BULK_HEAD = '{"success":true,"code":200,"message_id":"%d","StatutResponse_List":['
_XML_BULK_OK = (
    "<entry><entry><![CDATA[%s]]></entry><entry><![CDATA[%s]]></entry>"
    "<entry><![CDATA[0]]></entry><entry><![CDATA[1517934416]]></entry></entry>"
)
_XML_BULK_HEAD = (
    "<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>true</entry><entry>200</entry>"
    "<entry><![CDATA[%d]]></entry><entry>"
)
_ERROR = orjson.dumps({"success": False, "code": 6, "message": "Bad format"})
_UNSAFE = frozenset('"\\<>&]')
#: Answers by request body: the benchmarks send the same bodies again on every repeat.
_CACHE_BYTES = 400 * 1024 * 1024


def is_failure(message_id: int) -> bool:
    """Deterministic ~3% of the message ids answer `success: false`, code 4."""
    return message_id % 33 == 0


def render_multi_status(items: list[dict[str, Any]], xml: bool = False) -> bytes:
    """The answer for the requested items: one status item per requested pair, in order."""
    ok, fail = (_XML_OK, _XML_FAIL) if xml else (_OK, _FAIL)
    parts: list[str] = []
    append = parts.append
    for item in items:
        phone = item["phoneNumber"]
        mid = item["messageId"]
        if mid.__class__ is not int:
            mid = int(mid)
        if phone.__class__ is not str or not _UNSAFE.isdisjoint(phone):
            phone = "invalid"
        if mid % 33:
            append(ok % (phone, mid, _STATUSES[mid % 10]))
        else:
            append(fail % (phone, mid))
    if xml:
        return (_XML_HEAD + "".join(parts) + _XML_TAIL).encode()
    return (_HEAD + ",".join(parts) + _TAIL).encode()


def render_bulk_status(recipients: int, xml: bool = False) -> bytes:
    """A bulk-status answer with `recipients` recipients (message id = their count)."""
    ok, head = (_XML_BULK_OK, _XML_BULK_HEAD) if xml else (_BULK_OK, _BULK_HEAD)
    parts = [
        ok % (f"+336{(i * 7919 + 13) % 100_000_000:08d}", _STATUSES[i % 10])
        for i in range(recipients)
    ]
    if xml:
        return (head % recipients + "".join(parts) + _XML_TAIL).encode()
    return (head % recipients + ",".join(parts) + _TAIL).encode()


def make_app(latency: float = 0.0) -> web.Application:
    cache: dict[tuple[str, bytes], bytes] = {}
    sizes = [0]

    async def multi_status(request: web.Request) -> web.Response:
        body = await request.read()
        key = (request.query_string, body)
        payload = cache.get(key)
        if payload is None:
            try:
                doc = orjson.loads(body)
                xml = request.query.get("_format", doc.get("_format", "json")) == "xml"
                payload = render_multi_status(doc["SMSStatut_List"], xml)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
                return web.Response(body=_ERROR, status=400, content_type="application/json")
            if sizes[0] + len(payload) + len(body) < _CACHE_BYTES:
                sizes[0] += len(payload) + len(body)
                cache[key] = payload
        if latency:
            await asyncio.sleep(latency)
        ctype = "application/xml" if payload[:1] == b"<" else "application/json"
        return web.Response(body=payload, content_type=ctype)

    bulk: dict[tuple[int, bool], bytes] = {}

    async def bulk_status(request: web.Request) -> web.Response:
        try:
            recipients = int(request.query["messageId"])
        except (KeyError, ValueError):
            return web.Response(body=_ERROR, status=400, content_type="application/json")
        xml = request.query.get("_format") == "xml"
        payload = bulk.get((recipients, xml))
        if payload is None:
            payload = bulk[recipients, xml] = render_bulk_status(recipients, xml)
        if latency:
            await asyncio.sleep(latency)
        return web.Response(
            body=payload, content_type="application/xml" if xml else "application/json"
        )

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/multi-status", multi_status)
    app.router.add_get("/v1/bulk-status", bulk_status)
    app.router.add_get("/", health)
    return app


async def _serve(latency: float) -> None:
    runner = web.AppRunner(make_app(latency), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The parent closing our stdin (or dying) also stops us: no orphan servers.
    loop.add_reader(sys.stdin.fileno(), stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.latency))


class ServerProcess:
    """Start `benchmarks.server` in a subprocess; `url` is its base URL (no `/v1`)."""

    def __init__(self, latency: float = 0.0, *, timeout: float = 15.0) -> None:
        self.latency = latency
        self.timeout = timeout
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "benchmarks.server", "--latency", str(self.latency)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.2)
            if ready:
                line = self._proc.stdout.readline()
                if line.startswith("READY "):
                    self.url = line.split()[1]
                    return self.url
                if not line:
                    break
        self.stop()
        raise RuntimeError("benchmark server did not start")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux /proc), else None."""
        if self._proc is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
