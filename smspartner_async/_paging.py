"""bulk-status-by-tag, page after page, safe against a server that ignores `page`.

The API answers `currentPage` and `total` (items over all pages) but documents
no page parameter; we send `page=N`, the convention of its other paged lists.
Once page 1 tells how many pages to expect, the others are fetched
concurrently and still yielded in page order. Iteration stops on an empty
page, once `total` items were seen, on a page that answers another page number
or repeats one already seen, and at `max_pages`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from ._batching import run_windowed
from ._models import TagPage

__all__ = ["iter_tag_pages"]

log = logging.getLogger("smspartner_async")


def _fingerprint(page: TagPage) -> tuple[object, ...]:
    head, tail = page.recipients[0], page.recipients[-1]
    return (len(page.recipients), head.phone_number, head.date, tail.phone_number, tail.date)


async def iter_tag_pages(
    fetch: Callable[[int], Awaitable[TagPage]], *, max_concurrency: int, max_pages: int
) -> AsyncGenerator[TagPage, None]:
    first = await fetch(1)
    if not first.recipients:
        return
    yield first
    seen, total, per_page = len(first.recipients), first.total, len(first.recipients)
    fingerprints = {_fingerprint(first)}
    if seen >= total or max_pages <= 1:
        return
    number = 1
    pages = _later_pages(fetch, total, per_page, max_concurrency, max_pages)
    async with aclosing(pages) as stream:
        async for page in stream:
            number += 1
            if not _accept(page, number, fingerprints):
                return
            yield page
            seen += len(page.recipients)
            if seen >= total:
                return
    log.warning(
        "bulk-status-by-tag: stopped at max_pages=%d with %d of %d items",
        max_pages,
        seen,
        total,
    )


async def _later_pages(
    fetch: Callable[[int], Awaitable[TagPage]],
    total: int,
    per_page: int,
    max_concurrency: int,
    max_pages: int,
) -> AsyncGenerator[TagPage, None]:
    """Pages 2 to `max_pages` in order: concurrently up to the page `total` says is the last,
    then one at a time while the caller still misses items."""
    expected = min(math.ceil(total / per_page), max_pages)
    window = run_windowed(range(2, expected + 1), fetch, max_concurrency, ordered=True)
    async with aclosing(window) as pages:
        async for page in pages:
            yield page
    for number in range(expected + 1, max_pages + 1):
        yield await fetch(number)


def _accept(page: TagPage, number: int, fingerprints: set[tuple[object, ...]]) -> bool:
    if not page.recipients:
        return False
    fingerprint = _fingerprint(page)
    if page.current_page != number or fingerprint in fingerprints:
        log.warning(
            "bulk-status-by-tag: asked for page %d, got page %d%s; stopping",
            number,
            page.current_page,
            " again" if fingerprint in fingerprints else "",
        )
        return False
    fingerprints.add(fingerprint)
    return True
