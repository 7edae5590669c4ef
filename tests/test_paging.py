"""Tag paging against a scripted `fetch`: which pages are asked for, and when paging stops."""

from __future__ import annotations

import logging

import pytest

from smspartner_async import DeliveryStatus, RecipientStatus, TagPage
from smspartner_async._paging import iter_tag_pages


def page(number: int, total: int, size: int = 2) -> TagPage:
    recipients = [
        RecipientStatus(f"+336000{number:03d}{i:02d}", DeliveryStatus.DELIVERED)
        for i in range(size)
    ]
    return TagPage(number, total, recipients)


class Pages:
    """Page n has `size` items (`short` has one) and claims `total`; none after `last`."""

    def __init__(self, total: int, last: int, size: int = 2, short: int = 0) -> None:
        self.total, self.last, self.size, self.short = total, last, size, short
        self.asked: list[int] = []

    async def __call__(self, number: int) -> TagPage:
        self.asked.append(number)
        size = 0 if number > self.last else 1 if number == self.short else self.size
        return page(number, self.total, size)


async def collect(pages: Pages, max_pages: int = 100) -> list[int]:
    stream = iter_tag_pages(pages, max_concurrency=4, max_pages=max_pages)
    return [p.current_page async for p in stream]


async def test_pages_up_to_the_total_then_stop() -> None:
    pages = Pages(total=7, last=4)
    assert await collect(pages) == [1, 2, 3, 4]
    assert sorted(pages.asked) == [1, 2, 3, 4]


async def test_items_still_missing_after_the_expected_pages_are_asked_one_at_a_time() -> None:
    """`total` says 4 pages of 2, but page 3 has one item: page 5 is asked for, after 2 to 4."""
    pages = Pages(total=8, last=10, short=3)
    assert await collect(pages) == [1, 2, 3, 4, 5]
    assert pages.asked[0] == 1 and sorted(pages.asked[1:4]) == [2, 3, 4]
    assert pages.asked[4:] == [5]


async def test_max_pages_stops_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    pages = Pages(total=20, last=10)
    with caplog.at_level(logging.WARNING, logger="smspartner_async"):
        assert await collect(pages, max_pages=3) == [1, 2, 3]
    assert max(pages.asked) == 3
    assert "stopped with 6 of 20 items (max_pages=3 reached)" in caplog.text


class Moving(Pages):
    """Like `Pages`, but page n claims `totals[n]` (the tag grew while we paged)."""

    def __init__(self, totals: dict[int, int], last: int, size: int = 20) -> None:
        super().__init__(totals[1], last, size)
        self.totals = totals

    async def __call__(self, number: int) -> TagPage:
        self.asked.append(number)
        size = 0 if number > self.last else self.size
        return page(number, self.totals.get(number, self.totals[max(self.totals)]), size)


async def pages_of(fetch: Pages, max_pages: int = 100) -> list[TagPage]:
    stream = iter_tag_pages(fetch, max_concurrency=4, max_pages=max_pages)
    return [p async for p in stream]


async def test_paging_follows_a_total_that_grows(caplog: pytest.LogCaptureFixture) -> None:
    """Page 1 says 40, page 2 says 70: pages 3 and 4 are asked for too, no warning."""
    fetch = Moving({1: 40, 2: 70}, last=4)
    with caplog.at_level(logging.WARNING, logger="smspartner_async"):
        got = await pages_of(fetch)
    assert [p.current_page for p in got] == [1, 2, 3, 4]
    assert [p.seen for p in got] == [20, 40, 60, 80]
    assert got[-1].missing == 0
    assert sorted(fetch.asked) == [1, 2, 3, 4]
    assert caplog.text == ""


async def test_an_empty_page_before_the_total_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """total 100, pages 1-2 full, page 3 empty: stops at 40 of 100, and says it."""
    fetch = Moving({1: 100}, last=2)
    with caplog.at_level(logging.WARNING, logger="smspartner_async"):
        got = await pages_of(fetch)
    assert [p.current_page for p in got] == [1, 2]
    assert got[-1].seen == 40 and got[-1].missing == 60
    assert "stopped with 40 of 100 items (page 3 was empty)" in caplog.text
    (record,) = caplog.records
    assert (record.seen, record.total) == (40, 100)  # type: ignore[attr-defined]


async def test_a_total_that_shrinks_stops_without_asking_more() -> None:
    fetch = Moving({1: 100, 2: 40}, last=10)
    got = await pages_of(fetch)
    assert [p.current_page for p in got] == [1, 2]
    assert got[-1].missing == 0


async def test_a_server_that_ignores_page_never_loops_nor_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Stuck(Pages):
        async def __call__(self, number: int) -> TagPage:
            self.asked.append(number)
            return page(1, self.total)  # always page 1

    fetch = Stuck(total=50, last=100)
    with caplog.at_level(logging.WARNING, logger="smspartner_async"):
        got = await pages_of(fetch)
    assert [p.current_page for p in got] == [1]
    assert got[-1].missing == 48
    assert "asked for page 2, got page 1" in caplog.text
