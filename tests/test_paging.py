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
    assert "stopped at max_pages=3 with 6 of 20 items" in caplog.text
