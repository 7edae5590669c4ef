"""`smspartner-status watch`: every pair followed to its settled row, resumable, stopped cleanly.

The sandbox runs on the command's fast clock (--speed), so a 48-hour window
passes in a second or so. What each pair must end with comes from the sandbox's
dataset: a final status (reason final), Waiting for ever (expired), or not
known (api_error, code 4).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from smspartner_async import DeliveryStatus
from smspartner_async.cli import _commands
from smspartner_async.cli._watch_view import WatchView, duration
from smspartner_async.sandbox import Sandbox, SandboxData
from smspartner_async.testing import FastClock, sandbox_client
from smspartner_async.watch import (
    MemoryStore,
    Schedule,
    SettleReason,
    SQLiteStore,
    StatusChange,
    StoreCounts,
    Watcher,
    WatchRound,
)

DATA = SandboxData(0)
FAST = "200000"  # 48 hours in under a second


def write_pairs(path: Path, n: int) -> list[tuple[str, int]]:
    pairs = list(DATA.sample_pairs(n))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["phone_number", "message_id"])
        writer.writerows(pairs)
    return pairs


def watch_args(tmp_path: Path, out: Path, speed: str = FAST) -> tuple[str, ...]:
    """`watch pairs.csv` on the sandbox at `speed`, state in w.db, rows to `out`."""
    pairs, state = str(tmp_path / "pairs.csv"), str(tmp_path / "w.db")
    return ("watch", pairs, "--sandbox", "--speed", speed, "--state", state, "-o", str(out))


def settled_in_state(path: Path) -> int:
    """How many pairs the state file holds as settled (what a resumed run starts from)."""

    async def count() -> int:
        store = SQLiteStore(str(path))
        await store.open()
        try:
            return (await store.counts()).total_settled
        finally:
            await store.close()

    return asyncio.run(count())


def invoke(*args: str) -> Result:
    return CliRunner().invoke(_commands.cli, list(args))


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def expected_end(phone: str, message_id: int) -> tuple[str, str]:
    """(last status, reason) the watch must settle this pair on."""
    record = DATA.status_of(phone, message_id, elapsed=1e9)
    if record is None:
        return DeliveryStatus.UNKNOWN.value, SettleReason.API_ERROR.value
    if record.status == DeliveryStatus.WAITING.value:
        return record.status, SettleReason.EXPIRED.value
    return record.status, SettleReason.FINAL.value


def check_outcome(rows: list[dict[str, Any]], pairs: list[tuple[str, int]]) -> None:
    """Each pair: changes numbered 1, 2, ... with no gap, one settled change, last, as expected."""
    by_pair: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_pair[row["phone_number"], int(row["message_id"])].append(row)
    assert set(by_pair) == set(pairs)
    for index, pair in enumerate(pairs):
        changes = by_pair[pair]
        assert [int(c["id"].rsplit(":", 1)[1]) for c in changes] == list(range(1, len(changes) + 1))
        assert {int(c["index"]) for c in changes} == {index}
        settled = [c for c in changes if c["settled"] in (True, "true")]
        assert settled == changes[-1:], pair
        assert (changes[-1]["status"], changes[-1]["reason"]) == expected_end(*pair)


def test_watch_follows_every_pair_until_it_settles(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.csv", 600)
    out = tmp_path / "changes.jsonl"
    result = invoke(*watch_args(tmp_path, out))
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    check_outcome(rows, pairs)
    reasons = {row["reason"] for row in rows}
    assert {"final", "expired", "api_error"} <= reasons  # the sample has each kind
    assert "pending 0, settled 600" in result.stderr


def test_the_same_command_again_resumes_and_adds_nothing(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.csv", 200)
    out = tmp_path / "changes.csv"
    args = watch_args(tmp_path, out)
    assert invoke(*args).exit_code == 0
    first = out.read_text()
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert out.read_text() == first  # appended to, with nothing: no second header either
    assert "settled 200 (200 before this run)" in again.stderr
    check_outcome(read_rows(out), pairs)


@pytest.mark.parametrize("kind", ["pairs file", "text", "missing directory"])
def test_a_state_that_is_not_a_watch_database_is_bad_input(tmp_path: Path, kind: str) -> None:
    """Arguments swapped (`--state pairs.csv`), a stray file, a directory that does not exist:
    exit 2 with a message naming --state, and nothing written beside the file."""
    pairs = tmp_path / "pairs.csv"
    write_pairs(pairs, 3)
    state = {
        "pairs file": pairs,
        "text": tmp_path / "notes.db",
        "missing directory": tmp_path / "nowhere" / "state.db",
    }[kind]
    if kind == "text":
        state.write_text("not a database\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("watch", "--sandbox", "--no-live", "--state", str(state), str(pairs))
    assert result.exit_code == 2, result.output
    assert "--state" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_without_state_a_run_starts_over_and_overwrites(tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs.csv", 50)
    out = tmp_path / "changes.jsonl"
    args = ("watch", str(tmp_path / "pairs.csv"), "--sandbox", "--speed", FAST, "-o", str(out))
    assert invoke(*args).exit_code == 0
    first = read_rows(out)
    assert invoke(*args).exit_code == 0
    assert [row["id"] for row in read_rows(out)] == [row["id"] for row in first]


def test_speed_needs_the_sandbox(tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs.csv", 3)
    result = invoke("watch", str(tmp_path / "pairs.csv"), "--speed", "10")
    assert result.exit_code == 2
    assert "--speed needs --sandbox" in result.stderr


def test_bad_rows_refuse_the_watch_and_leave_no_state(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("phone_number,message_id\n0612345678,1\nnope,2\n")
    result = invoke(
        "watch", str(tmp_path / "pairs.csv"), "--sandbox",
        "--state", str(tmp_path / "w.db"), "-o", str(tmp_path / "out.jsonl"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "line 3" in result.stderr and "nothing was sent" in result.stderr
    assert not (tmp_path / "w.db").exists()
    assert not (tmp_path / "out.jsonl").exists()


# -- stopped from outside ------------------------------------------------------------------


def start(tmp_path: Path, speed: str) -> subprocess.Popen[str]:
    args = watch_args(tmp_path, tmp_path / "changes.jsonl", speed)
    command = [sys.executable, "-m", "smspartner_async.cli", *args]
    env = {**os.environ, "NO_COLOR": "1"}
    # As from a terminal: a test run started in the background of a non-interactive shell
    # ignores SIGINT, and a child inheriting that ignores Ctrl-C by design (Python then sets
    # no KeyboardInterrupt handler), which would fail the SIGINT case for the launcher's sake.
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_rows(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.05)
    pytest.fail("the watch wrote no rows in time")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_it_cleanly_and_the_same_command_resumes(
    tmp_path: Path, how: signal.Signals
) -> None:
    pairs = write_pairs(tmp_path / "pairs.csv", 400)
    out = tmp_path / "changes.jsonl"
    # 48 hours in 48 s: the first rows come at once, the expired ones only at the end.
    process = start(tmp_path, "3600")
    wait_for_rows(out, 100, process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    assert "stopped; the same command resumes from" in stderr
    rows = read_rows(out)
    assert len(rows) >= 100 and all(row["id"] for row in rows)  # whole lines only
    written = sum(row["settled"] for row in rows)
    # The stop may come between a round's commit and the writing of its changes: those pairs
    # are settled in the state, and their rows are written by the next run (once: below).
    settled_before = settled_in_state(tmp_path / "w.db")
    assert written <= settled_before < len(pairs)

    result = invoke(*watch_args(tmp_path, out))
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))  # a clean stop repeats nothing
    check_outcome(rows, pairs)
    assert f"{settled_before:,} before this run" in result.stderr
    # The look-ups are per pair still to settle when this run started, not per pair added.
    pending = len(pairs) - settled_before
    assert f" for {pending:,} pairs (" in result.stderr


def test_a_killed_watch_loses_nothing_and_repeats_at_most_the_row_in_hand(
    tmp_path: Path,
) -> None:
    pairs = write_pairs(tmp_path / "pairs.csv", 400)
    out = tmp_path / "changes.jsonl"
    process = start(tmp_path, "3600")
    wait_for_rows(out, 150, process)
    process.kill()
    process.communicate(timeout=30)
    result = invoke(*watch_args(tmp_path, out))
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    ids = [row["id"] for row in rows]
    assert len(ids) - len(set(ids)) <= 1
    unique = list({row["id"]: row for row in rows}.values())
    check_outcome(unique, pairs)


def test_rows_reach_a_terminal_as_they_come(tmp_path: Path) -> None:
    # On a terminal, `check` draws a table at the end; a watch must write each row at once,
    # since it is marked reported once written. A pty stands in for the terminal.
    import pty

    pairs = write_pairs(tmp_path / "pairs.csv", 30)
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "smspartner_async.cli", "watch", str(tmp_path / "pairs.csv")]
    command += ["--sandbox", "--speed", FAST, "--no-live"]
    process = subprocess.Popen(command, stdout=follower, stderr=subprocess.PIPE, text=True)
    os.close(follower)
    _, stderr = process.communicate(timeout=60)
    printed = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        printed += chunk
    os.close(leader)
    assert process.returncode == 0, stderr
    lines = printed.decode().replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("id,index,phone_number,message_id,status")
    rows = list(csv.DictReader(lines))
    check_outcome(rows, pairs)


# -- the view ------------------------------------------------------------------------------


def test_the_view_counts_pairs_by_last_status_and_settled_reason() -> None:
    view = WatchView(speed=None, output="out.csv", state="w.db")
    view.start(
        StoreCounts({None: 2, DeliveryStatus.WAITING: 1}, {DeliveryStatus.DELIVERED: 4}),
        clock=lambda: 0.0,
        started=0.0,
        new=2,
        first_check=5.0,
    )
    w, d = DeliveryStatus.WAITING, DeliveryStatus.DELIVERED
    view.change(StatusChange(0, "+33600000001", 1, w, None, False, None, 1, 0.0))
    view.change(StatusChange(1, "+33600000002", 1, d, w, True, SettleReason.FINAL, 2, 0.0))
    text = view.render().plain
    assert "watching 7 pairs, state in w.db" in text
    assert "Delivered 5  Waiting 1  not asked yet 1" in text
    assert "pending 2, settled 5 (1 final, 4 before this run)" in text
    assert "2 changes written to out.csv" in text
    assert "+336" not in text  # counts only


def test_a_change_delivered_again_after_a_kill_is_not_counted_twice() -> None:
    view = WatchView(speed=None, output="out.csv", state="w.db")
    d = DeliveryStatus.DELIVERED
    view.start(
        StoreCounts({}, {d: 1}), clock=lambda: 500.0, started=500.0
    )  # the store has it settled
    view.change(StatusChange(0, "+33600000001", 1, d, None, True, SettleReason.FINAL, 1, 400.0))
    assert (view.statuses[d], view.pending, view.written) == (1, 0, 1)
    assert "settled 1 (1 before this run)" in view.render().plain


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (-3, 12, 250, 3 * 3600 + 300)] == [
        "0 s",
        "12 s",
        "4 min 10 s",
        "3 h 05 min",
    ]


async def test_live_view_shows_pairs_asked_and_not_found_as_asked() -> None:
    """Asked and answered "not found" within the grace period is not "not asked yet"."""
    clock = FastClock(50.0)
    sandbox = Sandbox(api_key=None, clock=clock)
    mid = next(iter(DATA.sample_pairs(1)))[1]
    unknown = [f"+336{n:08d}" for n in range(300) if DATA.status_of(f"+336{n:08d}", mid) is None]
    pairs = [(phone, mid) for phone in unknown[:3]]
    schedule = Schedule(window=3600)
    view = WatchView(speed=50.0, output="-", state=None)
    lines: list[str] = []

    def on_round(report: WatchRound) -> None:
        view.round(report)
        lines.append(view.status_line())

    store = MemoryStore()
    async with sandbox_client(sandbox) as client:
        watcher = Watcher(
            client,
            store=store,
            schedule=schedule,
            clock=clock,
            sleep=clock.sleep,
            on_round=on_round,
        )
        started = clock()
        async with watcher:
            added = await watcher.add(pairs)
            view.start(
                StoreCounts({None: added}, {}),
                clock,
                started,
                new=added,
                first_check=schedule.first_check(started),
            )
            assert view.status_line() == "not asked yet 3"
            while len(lines) < 2:
                await clock.sleep(1.0)
    assert lines[0] == "no answer yet 3", lines
