"""`smspartner-status` through click's CliRunner, against the in-process sandbox.

The CLI's sandboxes run on a real clock; the `frozen` fixture swaps in ones
whose clock stands still, so that no Waiting record settles mid-test and
every answer can be compared with `status_of`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from smspartner_async import cli as cli_package
from smspartner_async.cli import _commands, _io, _session
from smspartner_async.sandbox import Faults, Sandbox, SandboxData, serve

DATA = SandboxData(0)
SECRET = "s3cr3t-key-0123456789"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSPARTNER_API_KEY", raising=False)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[Sandbox]:
    """Every sandbox the CLI makes gets a stopped clock (and the list records them)."""
    return freeze_sandboxes(monkeypatch)


def freeze_sandboxes(monkeypatch: pytest.MonkeyPatch) -> list[Sandbox]:
    made: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("clock", lambda: 0.0)
        sandbox = Sandbox(**kwargs)
        made.append(sandbox)
        return sandbox

    monkeypatch.setattr(_session, "Sandbox", make)  # --sandbox
    monkeypatch.setattr(_commands, "Sandbox", make)  # demo
    return made


def invoke(*args: str, input: str | bytes | None = None, **kwargs: Any) -> Result:
    return CliRunner().invoke(_commands.cli, list(args), input=input, **kwargs)


def sample(n: int, national_share: float = 0.3) -> list[tuple[str, int]]:
    return list(DATA.sample_pairs(n, national_share=national_share))


def e164(phone: str) -> str:
    return "+33" + phone[1:] if phone.startswith("0") else phone


def write_csv(
    path: Path, pairs: list[tuple[str, int]], header: str = "phone_number,message_id"
) -> Path:
    path.write_text(header + "\n" + "".join(f"{p},{m}\n" for p, m in pairs), encoding="utf-8")
    return path


def expected_row(pair: tuple[str, int]) -> tuple[str, str, str]:
    """(phone, ok, status) as the CSV export must show it."""
    rec = DATA.status_of(*pair)
    if rec is None:
        return e164(pair[0]), "false", ""
    return rec.phone, "true", rec.status


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_matches(rows: list[dict[str, str]], pairs: list[tuple[str, int]]) -> None:
    assert sorted(int(r["index"]) for r in rows) == list(range(len(pairs)))
    for row in rows:
        pair = pairs[int(row["index"])]
        assert (row["phone_number"], row["ok"], row["status"]) == expected_row(pair)
        assert int(row["message_id"]) == pair[1]


# -- check ---------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["json", "xml"])
def test_check_csv_file_matches_the_sandbox_and_summarises(
    tmp_path: Path, frozen: list[Sandbox], response_format: str
) -> None:
    pairs = sample(1200)
    source = write_csv(tmp_path / "in.csv", pairs)
    result = invoke("--sandbox", "--format", response_format, "check", str(source))
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    assert_matches(rows, pairs)
    assert sum(1 for p, _ in pairs if p.startswith("0")) > 200  # national numbers were in play
    statuses = Counter(r["status"] for r in rows if r["ok"] == "true")
    not_found = sum(1 for r in rows if r["ok"] == "false")
    assert not_found > 0
    assert f"{'delivered':<28}{statuses['Delivered']:>9}" in result.stderr
    assert f"{'waiting':<28}{statuses['Waiting']:>9}" in result.stderr
    assert f"(code 4: {not_found})" in result.stderr
    assert f"{'calls failed for good':<28}{0:>9}" in result.stderr
    assert "1200 pairs checked" in result.stderr
    assert "pairs checked" not in result.stdout  # stdout stays a clean CSV


def test_check_jsonl_from_stdin_with_camel_case_keys(frozen: list[Sandbox]) -> None:
    pairs = sample(50)
    lines = "".join(json.dumps({"phoneNumber": p, "messageId": m}) + "\n" for p, m in pairs)
    for args in (["check"], ["check", "-"]):
        result = invoke("--sandbox", *args, "--output-format", "jsonl", input=lines)
        assert result.exit_code == 0, result.output
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(records) == 50
        for record in records:
            phone, mid = pairs[record["index"]]
            rec = DATA.status_of(phone, mid)
            assert record["ok"] is (rec is not None)
            assert record["phone_number"] == e164(phone)
            if rec is not None:
                assert record["status"] == rec.status
                assert record["date"] is not None


def test_check_custom_columns_and_output_file(tmp_path: Path, frozen: list[Sandbox]) -> None:
    pairs = sample(30)
    source = write_csv(tmp_path / "in.csv", pairs, header="mobile,sms_id")
    out = tmp_path / "out.csv"
    args = ["--sandbox", "check", str(source), "--phone-column", "mobile", "--id-column", "sms_id"]
    result = invoke(*args, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert_matches(csv_rows(out.read_text(encoding="utf-8")), pairs)
    # Without the options, the header names neither default: a usage error naming them.
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 2
    assert "'phone_number' or 'phoneNumber'" in result.stderr


def test_region_reads_national_numbers(frozen: list[Sandbox]) -> None:
    source = "phone_number,message_id\n0470123456,1000001\n"
    result = invoke("--sandbox", "--region", "BE", "check", input=source)
    assert result.exit_code == 0, result.output
    (row,) = csv_rows(result.stdout)
    assert row["phone_number"] == "+32470123456"
    assert (row["ok"], row["code"]) == ("false", "4")  # the sandbox knows French mobiles only
    assert invoke("--sandbox", "--region", "XX", "check", input=source).exit_code == 2


def test_check_table_output(tmp_path: Path, frozen: list[Sandbox]) -> None:
    pairs = sample(5, national_share=0.0)
    source = write_csv(tmp_path / "in.csv", pairs)
    result = invoke("--sandbox", "check", str(source), "--output-format", "table")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "+336" in line]
    assert [next(p for p, _ in pairs if p in line) for line in lines] == [p for p, _ in pairs]
    assert "phone_number" in result.stdout


def test_table_keeps_the_first_rows_by_index(
    tmp_path: Path, frozen: list[Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_io, "TABLE_LIMIT", 4)
    pairs = sample(1500, national_share=0.0)  # three calls, finishing in any order
    source = write_csv(tmp_path / "in.csv", pairs)
    result = invoke("--sandbox", "check", str(source), "--output-format", "table")
    assert result.exit_code == 0, result.output
    shown = [line.split()[1] for line in result.stdout.splitlines() if "+336" in line]
    assert shown == ["0", "1", "2", "3"]
    assert "the first 4 of 1500 rows" in result.stderr


def test_bad_pair_is_a_usage_error_naming_line_and_value(tmp_path: Path) -> None:
    pairs: list[tuple[str, Any]] = [("+33612345678", 1), ("06 12 34 56 78", 2), ("hello", 3)]
    source = tmp_path / "in.csv"
    source.write_text("phone_number,message_id\n" + "".join(f"{p},{m}\n" for p, m in pairs))
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 2
    assert "line 4: not a phone number in E.164 or FR national format: 'hello'" in result.stderr
    result = invoke("--sandbox", "check", input='{"phone_number": "+33612345678"}\n')
    assert result.exit_code == 2
    assert "line 1: no key 'message_id' or 'messageId'" in result.stderr
    result = invoke("--sandbox", "check", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2
    assert "No such file" in result.stderr


def test_calls_failed_for_good_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = partial(Sandbox, faults=Faults(rate=1.0, kinds=("500",)), clock=lambda: 0.0)
    monkeypatch.setattr(_session, "Sandbox", failing)
    source = write_csv(tmp_path / "in.csv", sample(700))
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 1
    assert f"{'calls failed for good':<28}{700:>9}" in result.stderr
    assert "(ServerError: 700)" in result.stderr
    assert len(csv_rows(result.stdout)) == 700  # every pair still has its row


# -- the other commands ----------------------------------------------------------


def test_tag_lists_every_page(frozen: list[Sandbox]) -> None:
    result = invoke("--sandbox", "tag", "tag-230")
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    expected = [DATA.status_of(p, m) for p, m in DATA.tag_items("tag-230")]
    assert [r["phone_number"] for r in rows] == [e.phone for e in expected if e is not None]
    assert [r["status"] for r in rows] == [e.status for e in expected if e is not None]


def test_message_lists_recipients(frozen: list[Sandbox]) -> None:
    mid = sample(1)[0][1]
    result = invoke("--sandbox", "message", str(mid), "--output-format", "jsonl")
    assert result.exit_code == 0, result.output
    phones = [json.loads(line)["phone_number"] for line in result.stdout.splitlines()]
    assert phones == DATA.recipients(mid)


def test_one_status_and_not_found(frozen: list[Sandbox]) -> None:
    phone, mid = next(p for p in sample(50, 1.0) if DATA.status_of(*p) is not None)
    assert phone.startswith("06")
    result = invoke("--sandbox", "one", phone, str(mid))
    assert result.exit_code == 0, result.output
    (row,) = csv_rows(result.stdout)
    assert (row["phone_number"], row["status"]) == (e164(phone), DATA.status_of(phone, mid).status)
    assert row["currency"] == "EUR"
    result = invoke("--sandbox", "one", phone, "-1")
    assert result.exit_code == 2  # refused before sending: not a message id
    unknown = next(
        f"+336{n:08d}" for n in range(100) if DATA.status_of(f"+336{n:08d}", mid) is None
    )
    result = invoke("--sandbox", "one", unknown, str(mid))
    assert result.exit_code == 1
    assert "code 4" in result.stderr


def test_demo_verifies_every_result() -> None:
    result = invoke("demo", "--pairs", "1500")
    assert result.exit_code == 0, result.output
    assert "all 1500 results match the sandbox's data" in result.stdout
    delivered = sum(
        1
        for p in DATA.sample_pairs(1500, national_share=0.1)
        if (r := DATA.status_of(*p)) and r.status == "Delivered"
    )
    assert f"{'delivered':<28}{delivered:>9}" in result.stdout
    assert "requests 3, retries 0" in result.stdout


@pytest.mark.parametrize("rate", ["0.2", "0.3"])
def test_demo_with_faults_shows_retries(rate: str) -> None:
    result = invoke("demo", "--pairs", "5000", "--fault-rate", rate)
    assert result.exit_code == 0, result.output
    retries = int(result.stdout.split("retries ")[1].split(",")[0])
    assert retries >= len(_commands.DEMO_FAULTS)  # every kind shows, whatever the draws
    assert "faults injected" in result.stdout
    assert "all 5000 results match" in result.stdout


def test_demo_reports_mismatches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verification itself can fail: a sandbox whose clock runs makes Waiting ones settle."""
    real = Sandbox
    clock = iter(range(0, 10**6, 30))
    monkeypatch.setattr(
        _commands, "Sandbox", lambda **kw: real(**(kw | {"clock": lambda: next(clock)}))
    )
    result = invoke("demo", "--pairs", "2000")
    assert result.exit_code == 1
    assert "results differ from the sandbox's data" in result.stdout


# -- keys ----------------------------------------------------------------------


def test_missing_key_is_a_usage_error() -> None:
    result = invoke("one", "+33612345678", "1")
    assert result.exit_code == 2
    assert "SMSPARTNER_API_KEY" in result.stderr
    assert "--api-key-file" in result.stderr


def test_key_file_problems(tmp_path: Path) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n")
    result = invoke("--api-key-file", str(empty), "one", "+33612345678", "1")
    assert result.exit_code == 2
    assert "is empty" in result.stderr
    result = invoke("--api-key-file", str(tmp_path / "nope"), "one", "+33612345678", "1")
    assert result.exit_code == 2
    assert "cannot read the API key file" in result.stderr


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """A sandbox on a real socket (its own loop, in a thread) that wants the key `SECRET`."""
    with serving() as base_url:
        yield base_url


@contextmanager
def serving() -> Iterator[str]:
    sandbox = Sandbox(api_key=SECRET, clock=lambda: 0.0)
    ready: list[str] = []
    started, stop = threading.Event(), threading.Event()

    async def run() -> None:
        async with serve(sandbox) as base_url:
            ready.append(base_url)
            started.set()
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield ready[0]
    stop.set()
    thread.join(10)


def test_key_from_file_over_the_network_never_printed(tmp_path: Path, served: str) -> None:
    base_url = served
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")
    phone, mid = next(p for p in sample(20, 0.0) if DATA.status_of(*p) is not None)
    common = ["-vv", "--api-key-file", str(key_file), "--base-url", base_url]
    result = invoke(*common, "one", phone, str(mid))
    assert result.exit_code == 0, result.output
    assert DATA.status_of(phone, mid).status in result.stdout
    assert "message-status" in result.stderr  # the request was logged...
    assert SECRET not in result.output  # ...without the key
    result = invoke(*common, "check", input=f"phone_number,message_id\n{phone},{mid}\n")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output


def test_wrong_key_exits_1_without_echoing_it(tmp_path: Path, served: str) -> None:
    base_url = served
    key_file = tmp_path / "key"
    key_file.write_text("wrong-key-abcdef")
    result = invoke("-v", "--api-key-file", str(key_file), "--base-url", base_url, "tag", "demo")
    assert result.exit_code == 1
    assert "code 10" in result.stderr
    assert "wrong-key-abcdef" not in result.output


def test_env_key_with_sandbox_and_verbose_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARTNER_API_KEY", SECRET)
    result = invoke("-vv", "--sandbox", "one", "+33612345678", "1000001")
    assert "HTTP Request: GET" in result.stderr
    assert SECRET not in result.output
    # At -v, httpx's request lines (whose URLs carry the phone number) stay out.
    result = invoke("-v", "--sandbox", "one", "+33612345678", "1000001")
    assert result.exit_code == 0
    assert "+33612345678" in result.stdout
    assert "33612345678" not in result.stderr


def test_missing_extra_gives_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "click", None)
    monkeypatch.delitem(sys.modules, "smspartner_async.cli._commands")
    with pytest.raises(SystemExit) as exit_info:
        cli_package.main(["--help"])
    assert exit_info.value.code == 1
    assert "pip install 'smspartner-async[cli]'" in capsys.readouterr().err
