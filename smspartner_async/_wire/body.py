"""An answer's bytes: read within a cap, inflated within the cap, the key scrubbed out.

The body is read raw (`aiter_raw`), not through httpx's decoders, because those
inflate without an output limit: a 2 MiB gzip body can become gigabytes. Here
every stage has the same ceiling, `limit` bytes, raw and inflated, and a body
over it is a `ResponseFormatError` as soon as the limit is crossed.

The key is taken out of the body on receipt, before anything decodes it: an
error page that echoes the request (its URL, its JSON) would otherwise leave
the key in frame locals that tracebacks rendered with locals record (Sentry).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import attrs
import httpx

from .._errors import ResponseFormatError, ResponseTooLargeError
from .._redact import REDACTED, SecretStr

__all__ = ["Answer", "receive"]

_INFLATABLE = frozenset(("gzip", "x-gzip", "deflate"))
_MASK = REDACTED.encode()
#: Bodies inflated and decoded off the event loop past this size (`benchmarks/loop_lag.py`).
OFFLOAD_BYTES = 256 * 1024
# An encoded body this large may inflate past OFFLOAD_BYTES (deflate reaches about 1000:1).
_OFFLOAD_ENCODED = OFFLOAD_BYTES // 1024


@attrs.frozen
class Answer:
    """An HTTP answer read whole: `body` is still encoded when `codings` is not empty."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    codings: tuple[str, ...] = ()

    @property
    def heavy(self) -> bool:
        """Whether decoding it could hold the event loop long enough to be felt."""
        if self.codings:
            return len(self.body) > _OFFLOAD_ENCODED
        return len(self.body) > OFFLOAD_BYTES

    def content(self, limit: int, secret: SecretStr) -> bytes:
        """The body inflated (gzip, deflate) within `limit` bytes, key scrubbed out.

        Other codings are left as they are, as httpx does: the client asks for
        neither, and a body still encoded then fails to decode as JSON or XML.
        """
        if not self.codings:
            return self.body
        body = self.body
        for coding in reversed(self.codings):
            if coding in _INFLATABLE and body:  # a bodiless 429 labelled gzip keeps its status
                body = _inflate(body, limit)
        return scrub(body, secret)


async def receive(response: httpx.Response, limit: int, secret: SecretStr) -> Answer:
    """Read `response`'s raw body, refusing it past `limit` bytes; scrub it if not encoded."""
    codings: tuple[str, ...] = ()
    if response.is_stream_consumed:
        # Built in memory (a mock's answer): httpx has read and decoded it already.
        body = response.content
        if len(body) > limit:
            raise _too_large(limit)
    else:
        body, codings = await _read_raw(response, limit), _codings(response.headers)
        if codings:
            body, codings = _inflate_light(body, codings, min(limit, OFFLOAD_BYTES))
    if not codings:
        body = scrub(body, secret)
    return Answer(response.status_code, response.headers, body, codings)


def _inflate_light(
    body: bytes, codings: tuple[str, ...], cap: int
) -> tuple[bytes, tuple[str, ...]]:
    """The body inflated now when it inflates to at most `cap` bytes (a call's answer, which
    then needs no worker thread); else, or when it does not inflate, left for `content`,
    which inflates it within the client's limit and raises what is wrong with it."""
    if not all(coding in _INFLATABLE for coding in codings) or not body:
        return body, codings
    inflated = body
    for _ in codings:
        try:
            inflated = _inflate(inflated, cap)
        except ResponseFormatError:  # too large for now, or broken: `content` will say
            return body, codings
    return inflated, ()


async def _read_raw(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _codings(headers: httpx.Headers) -> tuple[str, ...]:
    """Content-Encoding's codings in the order they were applied (identity left out)."""
    return tuple(
        coding
        for value in headers.get_list("content-encoding")
        for coding in (c.strip().lower() for c in value.split(","))
        if coding and coding != "identity"
    )


def scrub(body: bytes, secret: SecretStr) -> bytes:
    """`body` with every copy of the key (as is, or percent-encoded) replaced by `***`."""
    for form in secret.byte_forms():
        if form in body:
            body = body.replace(form, _MASK)
    return body


def _inflate(body: bytes, limit: int) -> bytes:
    # 32 + 15: a gzip or zlib header, detected; bare deflate (-15) as a fallback.
    for wbits in (47, -15):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            raise _too_large(limit, inflated=True)
        if not inflater.eof:
            break  # truncated: the stream stops before its end marker
        return out
    raise ResponseFormatError("the body does not match its Content-Encoding (gzip or deflate)")


def _too_large(limit: int, *, inflated: bool = False) -> ResponseTooLargeError:
    what = "inflates to more than" if inflated else "is larger than"
    return ResponseTooLargeError(
        f"the answer {what} max_response_bytes={limit:,}; refused (raise the cap if legitimate)"
    )
