"""`smspartner-status` options: where they may go, what they change, what --help says.

Helpers and fixtures come from test_cli (the sandboxes with a stopped clock,
the served sandbox that wants a key).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click
import pytest

from smspartner_async import __version__
from smspartner_async.cli import _commands, _io, _session
from smspartner_async.sandbox import Faults, Sandbox
from smspartner_async.testing import sandbox_client

from .test_cli import (
    DATA,
    SECRET,
    assert_matches,
    csv_rows,
    e164,
    freeze_sandboxes,
    invoke,
    sample,
    serving,
    write_csv,
)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[Sandbox]:
    return freeze_sandboxes(monkeypatch)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with serving() as base_url:
        yield base_url


# -- global options, before or after the command ----------------------------------


def global_options() -> dict[str, click.Option]:
    """The group's own options: every one must also work after the command."""
    return {
        p.name: p
        for p in _commands.cli.params
        if isinstance(p, click.Option) and p.name and p.name not in ("help", "version")
    }


#: What each command's --help must list among the shared options: those it uses, no more.
USES = {
    "check": set(global_options()),
    "watch": set(global_options()),
    "one": set(global_options()) - {"concurrency"},
    "message": set(global_options()) - {"concurrency"},
    "tag": set(global_options()) - {"concurrency"},
    "demo": {"response_format", "concurrency", "timeout", "verbose"},
    "sample": set(),
}


def test_every_command_is_listed_here() -> None:
    assert set(_commands.cli.commands) == set(USES)


@pytest.mark.parametrize("command", sorted(USES))
def test_each_command_declares_the_shared_options_it_uses_and_no_other(command: str) -> None:
    sub = _commands.cli.commands[command]
    declared = {p.name: p for p in sub.params}
    for name, option in global_options().items():
        if name in USES[command]:
            assert name in declared, f"{command} lacks --{name}"
            assert declared[name].opts == option.opts
        else:
            assert name not in declared, f"{command} --help lists --{name}, which it ignores"
            listed = [
                line.split()[0].rstrip(",")
                for line in invoke(command, "--help").stdout.split("Options:")[1].splitlines()
                if line.startswith("  -")
            ]
            assert not set(option.opts) & set(listed)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--base-url", "http://x/v1", "demo", "--pairs", "1"], "--base-url"),
        (["--region", "BE", "demo", "--pairs", "1"], "--region"),
        (["--concurrency", "3", "one", "+33612345678", "1"], "--concurrency"),
        (["--timeout", "3", "sample"], "--timeout"),
    ],
)
def test_a_shared_option_a_command_ignores_is_refused(args: list[str], flag: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert f"does not use {flag}" in result.stderr


def test_sandbox_before_demo_or_sample_is_what_they_do_anyway() -> None:
    assert invoke("--sandbox", "demo", "--pairs", "10").exit_code == 0
    assert invoke("--sandbox", "sample", "--pairs", "2").exit_code == 0


@pytest.fixture
def client_options(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each sandbox client was made with (the CLI's settings as the library sees them)."""
    seen: list[dict[str, Any]] = []
    real = sandbox_client

    @asynccontextmanager
    async def recording(sandbox: Sandbox | None = None, **options: Any) -> AsyncIterator[Any]:
        seen.append(options)
        async with real(sandbox, **options) as client:
            yield client

    monkeypatch.setattr(_session, "sandbox_client", recording)
    return seen


def test_global_options_after_the_command(
    tmp_path: Path, frozen: list[Sandbox], client_options: list[dict[str, Any]]
) -> None:
    pairs = sample(600)
    source = write_csv(tmp_path / "in.csv", pairs)
    after = ["--format", "xml", "--concurrency", "3", "--timeout", "7", "--region", "FR"]
    result = invoke("check", "--sandbox", *after, str(source))
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)
    (options,) = client_options
    assert options["response_format"] == "xml"
    assert options["max_concurrency"] == 3
    assert options["timeout"] == 7.0


def test_the_command_s_value_wins_over_the_group_s(
    frozen: list[Sandbox], client_options: list[dict[str, Any]]
) -> None:
    source = "phone_number,message_id\n0470123456,1000001\n"
    result = invoke("--sandbox", "--region", "FR", "check", "--region", "BE", input=source)
    assert result.exit_code == 0, result.output
    (row,) = csv_rows(result.stdout)
    assert row["phone_number"] == "+32470123456"
    # Given only before the command, the group's value holds.
    result = invoke("--sandbox", "--format", "xml", "--concurrency", "2", "check", input=source)
    assert result.exit_code == 0, result.output
    assert client_options[-1]["response_format"] == "xml"
    assert client_options[-1]["max_concurrency"] == 2
    assert client_options[-1]["default_region"] == "FR"


def test_bad_global_option_after_the_command_is_a_usage_error() -> None:
    result = invoke("check", "--sandbox", "--region", "XX", input="")
    assert result.exit_code == 2
    assert "'XX' is not a region code" in result.stderr


def test_key_file_base_url_and_verbose_after_the_command(tmp_path: Path, served: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")
    phone, mid = next(p for p in sample(20, 0.0) if DATA.status_of(*p) is not None)
    record = DATA.status_of(phone, mid)
    assert record is not None
    result = invoke(
        "one", "-vv", "--api-key-file", str(key_file), "--base-url", served, phone, str(mid)
    )
    assert result.exit_code == 0, result.output
    assert record.status in result.stdout
    assert "message-status" in result.stderr  # -vv after the command turned logging on
    assert SECRET not in result.output


def test_sandbox_after_other_commands(frozen: list[Sandbox]) -> None:
    mid = sample(1)[0][1]
    result = invoke("message", str(mid), "--sandbox", "--output-format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["phone_number"] for x in result.stdout.splitlines()] == DATA.recipients(
        mid
    )
    result = invoke("tag", "--sandbox", "tag-230")
    assert result.exit_code == 0, result.output


# -- the output's format follows its file name --------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".JSONL"])
def test_jsonl_file_name_means_jsonl(tmp_path: Path, frozen: list[Sandbox], suffix: str) -> None:
    pairs = sample(40)
    source = write_csv(tmp_path / "in.csv", pairs)
    out = tmp_path / f"out{suffix}"
    result = invoke("--sandbox", "check", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["index"] for r in records) == list(range(40))
    for record in records:
        assert record["phone_number"] == e164(pairs[record["index"]][0])


def test_csv_file_name_and_explicit_format(tmp_path: Path, frozen: list[Sandbox]) -> None:
    pairs = sample(40)
    lines = "".join(json.dumps([p, m]) + "\n" for p, m in pairs)
    source = tmp_path / "in.jsonl"
    source.write_text(lines, encoding="utf-8")
    out = tmp_path / "out.csv"
    assert invoke("--sandbox", "check", str(source), "-o", str(out)).exit_code == 0
    assert_matches(csv_rows(out.read_text(encoding="utf-8")), pairs)
    # An explicit --output-format beats the file name.
    out = tmp_path / "out.jsonl"
    result = invoke("--sandbox", "check", str(source), "-o", str(out), "--output-format", "csv")
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(out.read_text(encoding="utf-8")), pairs)


def test_other_commands_follow_the_file_name_too(tmp_path: Path, frozen: list[Sandbox]) -> None:
    mid = sample(1)[0][1]
    out = tmp_path / "recipients.jsonl"
    result = invoke("--sandbox", "message", str(mid), "-o", str(out))
    assert result.exit_code == 0, result.output
    phones = [json.loads(x)["phone_number"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert phones == DATA.recipients(mid)


def test_unwritable_output_is_a_usage_error(tmp_path: Path, frozen: list[Sandbox]) -> None:
    source = write_csv(tmp_path / "in.csv", sample(3))
    result = invoke("--sandbox", "check", str(source), "-o", str(tmp_path / "no" / "out.csv"))
    assert result.exit_code == 2
    assert "cannot write" in result.stderr


# -- results in input order --------------------------------------------------------


@pytest.fixture
def slow_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first multi-status call answers last, so completion order is not input order."""

    def make(**kwargs: Any) -> Sandbox:
        faults = Faults(slow_seconds=0.3)
        faults.script(["slow"])
        return Sandbox(**(kwargs | {"faults": faults, "clock": lambda: 0.0}))

    monkeypatch.setattr(_session, "Sandbox", make)


def test_ordered_writes_rows_in_input_order(tmp_path: Path, slow_first_call: None) -> None:
    pairs = sample(1500)  # three calls of 500
    source = write_csv(tmp_path / "in.csv", pairs)
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 0, result.output
    unordered = [int(r["index"]) for r in csv_rows(result.stdout)]
    assert unordered != sorted(unordered)  # the slow call's rows came last
    result = invoke("--sandbox", "check", str(source), "--ordered")
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    assert [int(r["index"]) for r in rows] == list(range(1500))
    assert_matches(rows, pairs)


def test_ordered_jsonl_with_duplicates(tmp_path: Path, slow_first_call: None) -> None:
    pairs = sample(700)
    pairs = pairs + pairs[:300]  # repeats: several indexes share one answer
    source = write_csv(tmp_path / "in.csv", pairs)
    result = invoke("--sandbox", "check", str(source), "--ordered", "--output-format", "jsonl")
    assert result.exit_code == 0, result.output
    indexes = [json.loads(line)["index"] for line in result.stdout.splitlines()]
    assert indexes == list(range(1000))


def test_in_order_buffer_emits_each_run_as_soon_as_it_is_complete() -> None:
    written: list[int] = []
    buffer = _io.InOrder(written.append)
    for index in (2, 1, 4):
        buffer.add(index, index)
    assert written == []
    buffer.add(0, 0)
    assert written == [0, 1, 2]
    buffer.add(3, 3)
    assert written == [0, 1, 2, 3, 4]
    assert buffer.held == 0


# -- --version, NO_COLOR, exit codes in --help ---------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_help_lists_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    text = result.stdout
    assert "Exit codes" in text
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("0 ") and "each command" in line for line in lines)
    assert any(line.startswith("2 ") and "bad input" in line for line in lines)
    # Options come after the command too, and help says so.
    assert "after the command" in text


def exit_code_lines(command: str) -> dict[int, str]:
    """`--help`'s exit codes of a command: code -> its text, wrapped lines joined."""
    text = invoke(command, "--help").stdout
    codes: dict[int, str] = {}
    current = None
    for line in text.split("Exit codes:")[1].splitlines():
        stripped = line.strip()
        head = stripped.split(" ", 1)[0]
        if head.isdigit():
            current = int(head)
            codes[current] = stripped.split(" ", 1)[1].strip()
        elif stripped and current is not None:
            codes[current] += " " + stripped
    return codes


@pytest.mark.parametrize(
    ("command", "zero"),
    [
        ("check", "every pair got an answer"),
        ("watch", "every pair settled"),
        ("one", "the API answered"),
        ("message", "the API answered"),
        ("tag", "the API answered"),
        ("demo", "every answer matches"),
        ("sample", "written"),
    ],
)
def test_each_command_lists_its_own_exit_codes(command: str, zero: str) -> None:
    codes = exit_code_lines(command)
    assert zero in codes[0]
    assert 2 in codes


def test_watch_does_not_show_check_s_exit_codes() -> None:
    codes = exit_code_lines("watch")
    assert "got an answer" not in codes[0]
    assert "stopped" in codes[1]
    assert "--skip-bad-rows" in invoke("check", "--help").stdout


@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        ({"FORCE_COLOR": "1"}, True),  # the control: colour shows up when allowed
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": ""}, True),  # empty means unset (no-color.org)
    ],
)
def test_no_color_means_no_escape_codes_even_on_a_terminal(
    tmp_path: Path,
    frozen: list[Sandbox],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    coloured: bool,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setattr(_io, "TABLE_LIMIT", 2)
    source = write_csv(tmp_path / "in.csv", sample(5, national_share=0.0))
    result = invoke("--sandbox", "check", str(source), "--output-format", "table", env=env)
    assert result.exit_code == 0, result.output
    assert "use --output-format csv or jsonl for all" in result.stderr
    assert ("\x1b[" in result.stdout) is coloured
    assert ("\x1b[" in result.stderr) is coloured


# -- sample: a file of sandbox pairs for check and watch --------------------------------


def test_sample_writes_pairs_that_check_reads(tmp_path: Path) -> None:
    target = tmp_path / "pairs.csv"
    result = invoke("sample", "--pairs", "50", "-o", str(target))
    assert result.exit_code == 0, result.output
    rows = csv_rows(target.read_text(encoding="utf-8"))
    assert len(rows) == 50
    assert set(rows[0]) == {"phone_number", "message_id"}
    checked = invoke("check", "--sandbox", str(target), "--output-format", "jsonl")
    assert checked.exit_code == 0, checked.output
    results = [json.loads(line) for line in checked.stdout.splitlines()]
    assert len(results) == 50
    # Most are known to the sandbox: a status, not "not found".
    assert sum(1 for r in results if r["ok"]) >= 40


def test_sample_jsonl_from_the_file_name(tmp_path: Path) -> None:
    target = tmp_path / "pairs.jsonl"
    assert invoke("sample", "--pairs", "3", "-o", str(target)).exit_code == 0
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [sorted(item) for item in lines] == [["message_id", "phone_number"]] * 3


def test_base_url_from_the_environment_as_the_library_reads_it(
    served: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The README's recipe exports SMSPARTNER_BASE_URL: the command line follows it too."""
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")
    phone, mid = next(p for p in sample(20, 0.0) if DATA.status_of(*p) is not None)
    monkeypatch.setenv("SMSPARTNER_BASE_URL", served.removesuffix("/v1"))
    result = invoke("one", "--api-key-file", str(key_file), phone, str(mid))
    assert result.exit_code == 0, result.output
    # Every command sees the environment: demo, which does not use it, is not refused for it.
    assert invoke("demo", "--pairs", "5").exit_code == 0
