"""Closed clients and ended event loops: the library's own error, in its own words, on every path.

- After `aclose()` (or the sync client's `close()`), every way of calling raises
  `ClientStateError` saying the client is closed and what to do: the methods, the
  `with_options` views, iterators started before the close, an injected httpx client
  closed by its owner, the sync facade. Never httpx's "Cannot send a request".
- A client made at import time and used inside `asyncio.run`: its pool closes itself
  when that loop ends, so a later `aclose()` from another loop is clean (no traceback
  through httpcore, no unclosed-socket warning), and a call from another loop says
  what to do.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from smspartner_async import ClientStateError, RetryPolicy, SMSPartnerClient, SMSPartnerSyncClient

from . import seeds

BASE = "https://api.smspartner.fr/v1"
CLOSED = "client is closed"


@contextlib.asynccontextmanager
async def closed_after_use() -> AsyncIterator[tuple[respx.MockRouter, SMSPartnerClient]]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
        router.get("/message-status").respond(content=seeds.MESSAGE_STATUS_JSON)
        router.get("/bulk-status-by-tag").respond(content=seeds.TAG_JSON)
        router.post("/multi-status").respond(content=seeds.MULTI_STATUS_JSON)
        client = SMSPartnerClient("k" * 8, retry=RetryPolicy.testing())
        async with client:
            await client.bulk_status(111)
        yield router, client


def calls(client: SMSPartnerClient) -> dict[str, Any]:
    async def first(stream: AsyncIterator[Any]) -> Any:
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            return await anext(stream)

    pairs = seeds.MULTI_STATUS_JSON_PAIRS
    return {
        "message_status": lambda: client.message_status("0600000000", 1111),
        "bulk_status": lambda: client.bulk_status(111),
        "multi_status": lambda: client.multi_status(pairs),
        "iter_multi_status": lambda: first(client.iter_multi_status(pairs)),
        "iter_tag_pages": lambda: first(client.iter_tag_pages("t")),
        "status_by_tag": lambda: client.status_by_tag("t"),
    }


@pytest.mark.parametrize("method", list(calls(SMSPartnerClient("k" * 8))))
@pytest.mark.parametrize("view", [False, True])
async def test_every_method_of_a_closed_client_says_it_is_closed(method: str, view: bool) -> None:
    async with closed_after_use() as (router, client):
        target = client.with_options(max_retries=0) if view else client
        sent = len(router.calls)
        with pytest.raises(ClientStateError, match=CLOSED) as caught:
            await calls(target)[method]()
        assert "Cannot send a request" not in str(caught.value)
        assert len(router.calls) == sent  # nothing reached the transport


async def test_a_view_made_before_the_close_is_closed_with_its_client() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.get("/bulk-status").respond(content=seeds.BULK_STATUS_JSON)
        client = SMSPartnerClient("k" * 8)
        view = client.with_options(timeout=3)
        await client.aclose()
        with pytest.raises(ClientStateError, match=CLOSED):
            await view.bulk_status(111)
        assert not route.called


async def test_an_iterator_started_before_the_close_raises_it_after() -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/multi-status").respond(content=seeds.MULTI_STATUS_JSON)
        client = SMSPartnerClient("k" * 8, batch_size=1, max_concurrency=1)
        pairs = seeds.MULTI_STATUS_JSON_PAIRS * 4
        stream = client.iter_multi_status(pairs)
        async with contextlib.aclosing(stream):
            await anext(stream)
            await client.aclose()
            with pytest.raises(ClientStateError, match=CLOSED):
                async for _ in stream:
                    pass


async def test_an_injected_client_closed_by_its_owner_is_our_error() -> None:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=seeds.TAG_JSON))
    )
    client = SMSPartnerClient("k" * 8, http_client=http)
    assert len(await client.status_by_tag("t")) == 2
    await http.aclose()
    with pytest.raises(ClientStateError, match=CLOSED) as caught:
        await client.status_by_tag("t")
    assert "httpx.AsyncClient given to it" in str(caught.value)


def test_the_sync_client_closed_says_it_in_the_library_s_words() -> None:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=seeds.TAG_JSON))
    )
    client = SMSPartnerSyncClient("k" * 8, http_client_factory=lambda: http)
    assert len(client.status_by_tag("t")) == 2
    client.close()
    with pytest.raises(ClientStateError, match=CLOSED) as caught:
        client.status_by_tag("t")
    assert "Cannot send a request" not in str(caught.value)
    with pytest.raises(ClientStateError, match=CLOSED):
        client.with_options(max_retries=0).bulk_status(111)


# -- a client made at import time, used in two asyncio.run calls -----------------------------

_SCRIPT = """
import asyncio, gc, http.server, threading
from smspartner_async import ClientStateError, SMSPartnerClient

BODY = {body!r}

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the pool keeps its connections open

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = SMSPartnerClient(  # at import time, outside any loop
    "k" * 8, base_url=f"http://127.0.0.1:{{server.server_port}}/v1", transport={transport!r}
)

async def use():
    await asyncio.gather(*(client.message_status("0600000000", 1111) for _ in range(4)))

asyncio.run(use())  # opens connections, left open when this loop ends
try:
    asyncio.run(use())
except ClientStateError as exc:
    print("second loop:", exc)
asyncio.run(client.aclose())
print("closed:", client.is_closed)
gc.collect()
server.shutdown()
server.server_close()
"""


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_aclose_after_the_loop_it_was_used_in_has_ended_is_clean(transport: str) -> None:
    script = _SCRIPT.format(body=seeds.MESSAGE_STATUS_JSON, transport=transport)
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == "", done.stderr  # no traceback, no unclosed socket or session
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("second loop: this client is bound to the event loop")
    assert "asyncio.run" in lines[0]  # says what to do
    assert lines[1:] == ["closed: True"]


def test_the_script_above_fails_on_a_pool_that_does_not_close_with_its_loop() -> None:
    """The check can fail: a plain httpx client kept across loops leaves what it looks for."""
    script = textwrap.dedent(
        """
        import asyncio, gc, socket
        import httpx

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        http = httpx.AsyncClient()

        async def connect():
            try:
                await http.get(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.2)
            except httpx.TimeoutException:
                pass

        asyncio.run(connect())
        asyncio.run(http.aclose())
        gc.collect()
        """
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr != ""


def test_aclose_from_another_loop_while_the_pool_s_loop_still_runs_says_where_to_close() -> None:
    """A loop in another thread still owns the sockets: refuse, and say to close it there."""
    import asyncio
    import threading

    from smspartner_async._transports.pooled import PooledTransport

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    transport = PooledTransport(max_connections=2)

    async def bind() -> None:
        transport._binding.enter()  # what the first request does

    try:
        asyncio.run_coroutine_threadsafe(bind(), loop).result(5)
        with pytest.raises(ClientStateError, match="still running") as caught:
            asyncio.run(transport.aclose())
        assert "close the client inside that loop" in str(caught.value)
        asyncio.run_coroutine_threadsafe(transport.aclose(), loop).result(5)  # there, it closes
        assert transport._binding._done
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
