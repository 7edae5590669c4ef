"""One date rule for every endpoint and every output: aware datetimes in UTC.

The API writes the same instant as Paris wall time (message-status,
`2025-02-16 01:05:00`) or as epoch seconds (multi-status); a user comparing
or storing them must get the same value, spelled the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner

from smspartner_async._structure import parse_date
from smspartner_async.cli._commands import cli
from smspartner_async.sandbox import Sandbox
from smspartner_async.testing import sandbox_client

from ._dates_support import delivered_pair


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-02-16 01:05:00", datetime(2025, 2, 16, 0, 5, tzinfo=UTC)),  # winter, UTC+1
        ("2025-07-16 01:05:00", datetime(2025, 7, 15, 23, 5, tzinfo=UTC)),  # summer, UTC+2
        ("1739664300", datetime(2025, 2, 16, 0, 5, tzinfo=UTC)),
        (1739664300, datetime(2025, 2, 16, 0, 5, tzinfo=UTC)),
        ("2025-02-16T01:05:00+01:00", datetime(2025, 2, 16, 0, 5, tzinfo=UTC)),
    ],
)
def test_every_spelling_of_a_date_is_utc(text, expected):
    parsed = parse_date(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is UTC
    assert parsed.isoformat() == expected.isoformat()


async def test_message_status_and_multi_status_give_the_same_date():
    sandbox = Sandbox(api_key=None, clock=lambda: 10**9)
    phone, message_id = delivered_pair(sandbox)
    async with sandbox_client(sandbox) as client:
        one = await client.message_status(phone, message_id)
        [many] = await client.multi_status([(phone, message_id)])
        bulk = await client.bulk_status(message_id)
    dates = {one.date, many.date, *(r.date for r in bulk.recipients if r.phone_number == phone)}
    assert len(dates) == 1
    assert one.date is not None and one.date.tzinfo is UTC
    assert one.date.isoformat() == many.date.isoformat()


def test_cli_one_and_check_print_the_same_utc_date(tmp_path):
    sandbox = Sandbox(api_key=None)
    phone, message_id = delivered_pair(sandbox)
    runner = CliRunner()
    one = runner.invoke(
        cli, ["--sandbox", "one", phone, str(message_id), "--output-format", "jsonl"]
    )
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"phone_number,message_id\n{phone},{message_id}\n", encoding="utf-8")
    check = runner.invoke(cli, ["--sandbox", "check", str(pairs), "--output-format", "jsonl"])
    assert one.exit_code == 0, one.output
    assert check.exit_code == 0, check.output
    one_date = orjson.loads(one.stdout.splitlines()[0])["date"]
    check_date = orjson.loads(check.stdout.splitlines()[0])["date"]
    assert one_date == check_date
    assert one_date.endswith("+00:00")
