"""bulk-status-by-tag, page after page, safe against a server that ignores `page` or moves.

The API answers `currentPage` and `total` (items over all pages) but documents
no page parameter; we send `page=N`, the convention of its other paged lists.
Once page 1 tells how many pages to expect, those are fetched concurrently and
still yielded in page order; past them, pages are asked one at a time while
items are still missing. `total` can move while we page (messages sent with
the tag meanwhile): the latest one announced is the one followed.

Iteration stops on an empty page, once `total` items were seen, on a page that
answers another page number or repeats one already seen, and at `max_pages`.
Every yielded page carries `seen` (items through it), so the last page tells
whether the iteration reached the total (`TagPage.missing`); a stop short of
it is also logged as a warning, with how many of how many.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

import attrs

from ._models import TagPage
from ._window import run_windowed

__all__ = ["iter_tag_pages"]

log = logging.getLogger("smspartner_async")


def _fingerprint(page: TagPage) -> tuple[object, ...]:
    head, tail = page.recipients[0], page.recipients[-1]
    return (len(page.recipients), head.phone_number, head.date, tail.phone_number, tail.date)


async def iter_tag_pages(
    fetch: Callable[[int], Awaitable[TagPage]], *, max_concurrency: int, max_pages: int
) -> AsyncGenerator[TagPage, None]:
    first = await fetch(1)
    seen, total = 0, first.total
    why = "page 1 was empty"
    if first.recipients:
        seen = len(first.recipients)
        yield attrs.evolve(first, seen=seen)
        if seen >= total:
            return
        why = f"max_pages={max_pages} reached"
        fingerprints = {_fingerprint(first)}
        expected = min(math.ceil(total / seen), max_pages)
        number = 1
        pages = _later_pages(fetch, expected, max_concurrency, max_pages)
        async with aclosing(pages) as stream:
            async for page in stream:
                number += 1
                if not page.recipients:
                    why = f"page {number} was empty"
                    break
                fingerprint = _fingerprint(page)
                if page.current_page != number or fingerprint in fingerprints:
                    again = " again" if fingerprint in fingerprints else ""
                    why = f"asked for page {number}, got page {page.current_page}{again}"
                    break
                fingerprints.add(fingerprint)
                seen += len(page.recipients)
                total = page.total
                yield attrs.evolve(page, seen=seen)
                if seen >= total:
                    return
    if seen < total:
        log.warning(
            "bulk-status-by-tag: stopped with %d of %d items (%s)",
            seen,
            total,
            why,
            extra={"endpoint": "bulk-status-by-tag", "seen": seen, "total": total},
        )


async def _later_pages(
    fetch: Callable[[int], Awaitable[TagPage]],
    expected: int,
    max_concurrency: int,
    max_pages: int,
) -> AsyncGenerator[TagPage, None]:
    """Pages 2 to `max_pages` in order: concurrently up to `expected`, then one at a time
    for as long as the consumer asks (it stops once it has the total)."""
    window = run_windowed(range(2, expected + 1), fetch, max_concurrency, ordered=True)
    async with aclosing(window) as pages:
        async for page in pages:
            yield page
    for number in range(max(expected, 1) + 1, max_pages + 1):
        yield await fetch(number)
