"""Whether a mocking library has replaced httpx's or httpcore's send method right now.

pytest-httpx replaces `httpx.AsyncHTTPTransport.handle_async_request`, respx's default
mode `httpcore.AsyncConnectionPool.handle_async_request`, for the length of a test. A
method whose qualified name is no longer the class's own has been replaced. Read only:
nothing here patches anything.
"""

from __future__ import annotations

import httpcore
import httpx

__all__ = ["patched_by_a_mock"]

_PATCHED = (httpx.AsyncHTTPTransport, httpcore.AsyncConnectionPool)


def patched_by_a_mock() -> str | None:
    """The replaced method's name (`httpx.AsyncHTTPTransport.handle_async_request`), or None."""
    for cls in _PATCHED:
        if cls.handle_async_request.__qualname__ != f"{cls.__name__}.handle_async_request":
            return f"{cls.__module__}.{cls.__name__}.handle_async_request"
    return None
