"""The sandbox over real sockets (uvicorn) and its command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys

import httpx
import pytest

from smspartner_async.sandbox import Sandbox, serve

from ._helpers import KEY

pytest.importorskip("uvicorn")


async def test_serve_on_an_ephemeral_port_and_stop() -> None:
    sandbox = Sandbox(seed=7)
    async with serve(sandbox, port=0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        async with httpx.AsyncClient(base_url=base_url) as http:
            r = await http.get("/bulk-status-by-tag", params={"apiKey": KEY, "tag": "montag"})
            assert r.status_code == 200
            assert r.json()["total"] == 2
            r = await http.get(
                "/bulk-status-by-tag", params={"apiKey": KEY, "tag": "montag", "_format": "xml"}
            )
            assert r.headers["content-type"] == "application/xml; charset=utf-8"
    assert sandbox.stats.total == 2
    async with httpx.AsyncClient(base_url=base_url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/bulk-status-by-tag")


async def test_server_stops_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with serve(Sandbox(), port=0) as base_url:
            raise RuntimeError("boom")
    async with httpx.AsyncClient(base_url=base_url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/bulk-status")


async def test_drop_cuts_the_connection_over_tcp(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = Sandbox()
    sandbox.faults.script(["drop"])
    async with serve(sandbox, port=0) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/bulk-status-by-tag", params={"apiKey": KEY, "tag": "demo"})
        r = await http.get("/bulk-status-by-tag", params={"apiKey": KEY, "tag": "demo"})
        assert r.status_code == 200
    assert "Exception in ASGI application" not in caplog.text  # deliberate, not logged


async def test_a_request_still_served_at_exit_logs_no_traceback(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Leaving `serve` while a slow answer is on its way (the sandbox's latency) stops the
    server, which cancels that answer after its grace period: on purpose, so no "Exception in
    ASGI application" traceback (the recipes' example printed one)."""
    sandbox = Sandbox(latency=30)
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        async with serve(sandbox, port=0) as base_url, httpx.AsyncClient() as http:
            slow = asyncio.create_task(
                http.get(f"{base_url}/bulk-status", params={"apiKey": KEY, "messageId": "1"})
            )
            while not sandbox.stats.in_flight:  # noqa: ASYNC110 - the request is in its latency
                await asyncio.sleep(0.01)
        with contextlib.suppress(httpx.HTTPError):
            await slow
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert "Exception in ASGI application" not in capfd.readouterr().err


async def test_busy_port_raises_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=r"[Aa]ddress already in use|in use"):
            async with serve(Sandbox(), port=port):
                pass  # pragma: no cover


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "smspartner_async.sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--port", "--seed", "--latency", "--fault-rate", "--page-size", "--api-key"):
        assert option in out


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    from smspartner_async.sandbox.__main__ import main

    assert main(["--fault-kinds", "teapot"]) == 2
    assert "unknown fault kind" in capsys.readouterr().err
