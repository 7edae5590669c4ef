"""Serving the sandbox over real sockets with uvicorn, an optional dependency.

uvicorn is imported only here, lazily, so the client core never needs a server. Access logs
stay off because they would print query strings, and this API puts `apiKey` in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._faults import DroppedConnection

if TYPE_CHECKING:
    from ._app import Sandbox

__all__ = ["base_url", "serve", "serve_app", "uvicorn_config"]


class _HideDeliberateStops(logging.Filter):
    """uvicorn logs a traceback whenever an app raises. Two stops are on purpose: a "drop"
    fault, and an answer still on its way (the sandbox's latency) when the block serving
    it ends, which uvicorn cancels after its grace period and announces at ERROR level."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, DroppedConnection | asyncio.CancelledError):
            return False
        return not str(record.msg).startswith("Cancel %s running task(s)")


_FILTER = _HideDeliberateStops()


def _import_uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "serving the sandbox over TCP needs uvicorn; install it (pip install uvicorn) "
            "or drive `sandbox.app` in-process with httpx.ASGITransport"
        ) from exc
    return uvicorn


def uvicorn_config(sandbox: Sandbox, **options: Any) -> Any:
    """A uvicorn.Config for the sandbox with the safe defaults (no access log, no lifespan)."""
    return _config(_import_uvicorn(), sandbox.app, options)


def _config(uvicorn: Any, app: Any, options: dict[str, Any]) -> Any:
    settings: dict[str, Any] = {
        "log_level": "warning",
        "interface": "asgi3",  # a bound method is not detected as ASGI 3
        "lifespan": "off",
        "access_log": False,
        "timeout_graceful_shutdown": 1,
    }
    settings.update(options)
    config = uvicorn.Config(app, **settings)
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
    return config


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def serve(
    sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
) -> AsyncIterator[str]:
    """Serve the sandbox on a real socket in the running loop; yield its base URL (…/v1).

    The socket is bound here (port 0 picks a free port), so a busy port raises OSError instead
    of uvicorn exiting the process. The server is stopped and awaited however the block ends.
    """
    async with serve_app(
        sandbox.app, host=host, port=port, startup_timeout=startup_timeout
    ) as bound_port:
        yield base_url(host, bound_port)


@contextlib.asynccontextmanager
async def serve_app(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
) -> AsyncIterator[int]:
    """Any ASGI app (a callback receiver, say) served like the sandbox; yields the port."""
    uvicorn = _import_uvicorn()
    sock = _bind(host, port)
    bound_port: int = sock.getsockname()[1]
    server = uvicorn.Server(_config(uvicorn, app, {}))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="sandbox-server")
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started:
                if task.done():
                    task.result()  # re-raise the startup failure
                    raise RuntimeError("the sandbox server stopped during startup")
                await asyncio.sleep(0.005)
        yield bound_port
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()
