"""Checked by mypy --strict (nox -s typing), never run: the public API's types as users see them."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime
from decimal import Decimal
from typing import assert_type

from smspartner_async import (
    BulkStatus,
    DeliveryStatus,
    MessageStatus,
    MultiStatusResult,
    RecipientStatus,
    RetryPolicy,
    SMSPartnerClient,
    SMSPartnerError,
    SMSPartnerSyncClient,
)
from smspartner_async.testing import sandbox_client
from smspartner_async.watch import MemoryStore, Schedule, StatusChange, Watcher


async def usage() -> None:
    async with SMSPartnerClient("key", retry=RetryPolicy.testing(), max_concurrency=4) as client:
        one = await client.message_status("+33612345678", 1)
        assert_type(one, MessageStatus)
        assert_type(one.cost, Decimal | None)
        assert_type(one.date, datetime | None)
        many = await client.multi_status([("0612345678", "2")], progress=lambda d, t: None)
        assert_type(many, list[MultiStatusResult])
        assert_type(many[0].error, SMSPartnerError | None)
        async with aclosing(client.iter_multi_status(iter([("0612345678", 3)]))) as stream:
            async for item in stream:
                assert_type(item, MultiStatusResult)
                assert_type(item.status, DeliveryStatus)
        assert_type(await client.bulk_status(1), BulkStatus)
        assert_type(await client.status_by_tag("t"), list[RecipientStatus])
    async with sandbox_client(max_concurrency=2, batch_size=100) as test_client:
        assert_type(test_client, SMSPartnerClient)
        assert_type(test_client.batch_size, int)
        assert_type(test_client.max_concurrency, int)
        assert_type(test_client.default_region, str)
        changes = test_client.watch(
            [("0612345678", 1)], sent_at=datetime.now(UTC), store=MemoryStore()
        )
        async with aclosing(changes) as stream:
            async for change in stream:
                assert_type(change, StatusChange)
                assert_type(change.settled, bool)
        async with Watcher(test_client, on_batch=lambda batch: None) as watcher:
            assert_type(await watcher.add([("0612345678", 2)]), int)
            assert_type(await watcher.hint(2, "0612345678"), int)


def sync_usage() -> None:
    with SMSPartnerSyncClient("key", transport="aiohttp") as client:
        assert_type(client.multi_status([("0612345678", 1)]), list[MultiStatusResult])
        assert_type(client.with_options(max_retries=0), SMSPartnerSyncClient)
        for item in client.iter_multi_status([("0612345678", 1)]):
            assert_type(item, MultiStatusResult)
        for change in client.watch([("0612345678", 1)], sent_at=0.0, schedule=Schedule()):
            assert_type(change, StatusChange)
