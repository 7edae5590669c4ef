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

# Each class, and the qualified name of its own method (asked on every request: built once).
_PATCHED = tuple(
    (cls, f"{cls.__name__}.handle_async_request")
    for cls in (httpx.AsyncHTTPTransport, httpcore.AsyncConnectionPool)
)


def patched_by_a_mock() -> str | None:
    """The replaced method's name (`httpx.AsyncHTTPTransport.handle_async_request`), or None."""
    for cls, own in _PATCHED:
        if cls.handle_async_request.__qualname__ != own:
            return f"{cls.__module__}.{own}"
    return None
