"""A pair the sandbox reports as delivered, with a date (for the date tests)."""

from __future__ import annotations

from smspartner_async.sandbox import DELIVERED, Sandbox


def delivered_pair(sandbox: Sandbox) -> tuple[str, int]:
    for phone, message_id in sandbox.data.sample_pairs(200):
        record = sandbox.data.status_of(phone, message_id)
        if record is not None and record.status == DELIVERED:
            return phone, message_id
    raise AssertionError("no delivered pair among 200 samples")
