"""`watch --listen`: the receiver beside the watch; with --sandbox, the emulator pushes to it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from smspartner_async.cli._commands import cli
from smspartner_async.sandbox import SandboxData


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.csv"
    rows = [f"{p},{m}" for p, m in SandboxData(0).sample_pairs(300)]
    path.write_text("phone_number,message_id\n" + "\n".join(rows) + "\n")
    return path


def lookups(stderr: str) -> float:
    found = re.search(r"look-ups: [\d,]+ for [\d,]+ pairs \(([\d.]+) per pair\)", stderr)
    assert found is not None, stderr
    return float(found.group(1))


def test_listen_with_the_sandbox_pushing_asks_less_for_the_same_rows(
    pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSPARTNER_CALLBACK_TOKEN", "cli-token-0123456789abcdef")
    runner = CliRunner()
    common = ["watch", "--sandbox", "--window", "2", "--no-live"]  # 2 hours in 2 s
    polled = runner.invoke(cli, [*common, "-o", str(tmp_path / "poll.csv"), str(pairs_file)])
    assert polled.exit_code == 0, polled.stderr
    pushed = runner.invoke(
        cli,
        [*common, "--listen", "127.0.0.1:0", "-o", str(tmp_path / "push.csv"), str(pairs_file)],
    )
    assert pushed.exit_code == 0, pushed.stderr
    # The token is not shown when it came from the environment.
    assert "cli-token-0123456789abcdef" not in pushed.stderr
    assert "listening for delivery reports on http://127.0.0.1:" in pushed.stderr
    assert re.search(r"callbacks: [1-9][\d,]* received", pushed.stderr)
    assert lookups(pushed.stderr) < lookups(polled.stderr)

    def settled(path: Path) -> set[tuple[str, ...]]:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        names = ("phone_number", "message_id", "status", "reason")
        return {tuple(row[n] for n in names) for row in rows if row["settled"] == "true"}

    assert settled(tmp_path / "push.csv") == settled(tmp_path / "poll.csv")


def test_listen_shows_a_new_token_when_none_is_set(
    pairs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The help: the token comes from $SMSPARTNER_CALLBACK_TOKEN, else a new one is shown.
    With --sandbox too: not the variable's name, which is unset."""
    monkeypatch.delenv("SMSPARTNER_CALLBACK_TOKEN", raising=False)
    args = ["watch", "--sandbox", "--window", "1", "--no-live", "--listen", "127.0.0.1:0"]
    result = CliRunner().invoke(cli, [*args, str(pairs_file)])
    assert result.exit_code == 0, result.stderr
    assert "$SMSPARTNER_CALLBACK_TOKEN" not in result.stderr
    assert re.search(r"on http://127\.0\.0\.1:\d+/dlr/[\w-]{20,}", result.stderr), result.stderr


def test_listen_refuses_a_bad_address(pairs_file: Path) -> None:
    result = CliRunner().invoke(cli, ["watch", "--sandbox", "--listen", "nowhere", str(pairs_file)])
    assert result.exit_code == 2
    assert "HOST:PORT" in result.stderr
