"""Injected faults: each kind as it appears on the wire, scripted and random."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from smspartner_async.sandbox import FAULT_KINDS, Faults, Sandbox

from ._helpers import KEY, make_client

PARAMS = {"apiKey": KEY, "tag": "montag"}


def faulty(*script: str | None, **options: float) -> Sandbox:
    sandbox = Sandbox(seed=7, faults=Faults(**options))  # type: ignore[arg-type]
    sandbox.faults.script(script)
    return sandbox


async def get(sandbox: Sandbox, **params: str) -> httpx.Response:
    async with make_client(sandbox) as http:
        return await http.get("/bulk-status-by-tag", params=PARAMS | params)


async def test_429_has_retry_after() -> None:
    sandbox = faulty("429", retry_after=7)
    r = await get(sandbox)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json()["code"] == 429
    assert sandbox.stats.faults == {"429": 1}


async def test_500_is_a_json_error() -> None:
    r = await get(faulty("500"))
    assert r.status_code == 500
    assert r.json()["success"] is False


async def test_502_has_an_empty_body() -> None:
    r = await get(faulty("502"))
    assert r.status_code == 502
    assert r.content == b""


async def test_503_is_html_with_retry_after() -> None:
    r = await get(faulty("503"))
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("text/html")
    assert b"503 Service Temporarily Unavailable" in r.content


async def test_html_is_a_gateway_page() -> None:
    r = await get(faulty("html"))
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert b"<h1>502 Bad Gateway</h1>" in r.content


async def test_html200_is_html_with_status_200() -> None:
    r = await get(faulty("html200"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_truncate_cuts_the_body_with_a_matching_length(fmt: str) -> None:
    whole = await get(faulty(None), _format=fmt)
    cut = await get(faulty("truncate"), _format=fmt)
    assert cut.status_code == 200
    assert cut.content == whole.content[: len(whole.content) // 2]
    assert cut.headers["content-length"] == str(len(cut.content))
    assert cut.headers["content-type"] == whole.headers["content-type"]


async def test_drop_announces_the_full_length_but_sends_half() -> None:
    # In-process the transport hands over what was sent; over TCP the connection is cut
    # (see test_sandbox_server).
    whole = await get(faulty(None))
    dropped = await get(faulty("drop"))
    assert dropped.headers["content-length"] == str(len(whole.content))
    assert dropped.content == whole.content[: len(whole.content) // 2]


async def test_slow_delays_the_answer() -> None:
    start = time.perf_counter()
    r = await get(faulty("slow", slow_seconds=0.05))
    assert time.perf_counter() - start >= 0.05
    assert r.status_code == 200
    assert r.json()["total"] == 2


async def test_script_runs_in_order_then_stops() -> None:
    sandbox = faulty("429", None, "500")
    async with make_client(sandbox) as http:
        codes = [
            (await http.get("/bulk-status-by-tag", params=PARAMS)).status_code for _ in range(4)
        ]
    assert codes == [429, 200, 500, 200]
    assert sandbox.faults.pending == 0
    assert sandbox.stats.faults == {"429": 1, "500": 1}


async def test_random_faults_follow_the_rate_and_the_seed() -> None:
    async def run(seed: int) -> list[int]:
        sandbox = Sandbox(faults=Faults(rate=0.3, kinds=("500",), seed=seed))
        async with make_client(sandbox) as http:
            return [
                (await http.get("/bulk-status-by-tag", params=PARAMS)).status_code
                for _ in range(200)
            ]

    first = await run(1)
    assert first == await run(1)
    assert first != await run(2)
    assert 30 < first.count(500) < 90
    assert set(first) == {200, 500}


def test_fault_kinds_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Faults(kinds=("404",))
    with pytest.raises(ValueError, match="unknown fault kind"):
        Faults().script(["teapot"])
    with pytest.raises(ValueError, match="rate"):
        Faults(rate=1.5)
    assert set(Faults().kinds) < set(FAULT_KINDS)
