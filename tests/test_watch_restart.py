"""A watch killed with SIGKILL and started again on its SQLite file ends as if never killed.

The same file is the worker: `python tests/test_watch_restart.py DB OUT CLOCK KILL` runs
`watch()` over the sandbox's pairs in simulated time, appends each change it gets to
OUT as a JSON line (flushed before asking for the next one), and keeps the simulated
time in CLOCK, so that a restarted worker goes on at the time the last one had
reached. KILL says when it kills itself with SIGKILL: `call:K` (after the K-th API
answer of this process, mid-round, before the round's commit), `take:M` (holding its
M-th change, before writing it: that change must come again), `change:M` (after
writing its M-th change, before asking for the next: it comes again, a repeat), or
`never`. The test also kills a
worker from outside, at whatever point it has reached.

What a consumer sees across the kills, once it drops repeated ids (which the id is
for), must be exactly what an uninterrupted run sees; and a change is repeated only
when it was in the consumer's hands at the kill: at most one per kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PAIRS = 3_000
SEED = 21
T0 = 1_700_000_000.0
HERE = Path(__file__).resolve()


# -- the worker ------------------------------------------------------------------------------


def worker(db: str, out: str, clock_file: str, kill: str) -> None:
    import asyncio
    from contextlib import aclosing

    from smspartner_async.sandbox import Sandbox
    from smspartner_async.testing import sandbox_client
    from smspartner_async.watch import SQLiteStore, watch

    kind, _, count = kill.partition(":")
    limit = int(count) if count else 0
    path = Path(clock_file)

    class Clock:
        def __init__(self) -> None:
            self.now = float(path.read_text()) if path.exists() else T0

        def __call__(self) -> float:
            return self.now

        async def sleep(self, seconds: float) -> None:
            self.now += seconds
            path.with_suffix(".tmp").write_text(repr(self.now))
            os.replace(path.with_suffix(".tmp"), path)
            await asyncio.sleep(0)

    clock = Clock()
    resumed_at = clock.now
    clock.now = T0  # the sandbox's statuses settle on time counted from T0
    sandbox = Sandbox(seed=SEED, clock=clock)
    clock.now = resumed_at
    pairs = list(sandbox.data.sample_pairs(PAIRS))
    answers = 0

    def on_request(event: object) -> None:
        nonlocal answers
        answers += 1
        if kind == "call" and answers == limit:
            os.kill(os.getpid(), signal.SIGKILL)

    async def main() -> None:
        written = 0
        # Small calls and pages, so that a round spans pages and a kill can fall between.
        async with sandbox_client(
            sandbox, batch_size=100, max_concurrency=2, on_request=on_request
        ) as client:
            stream = watch(
                client,
                pairs,
                sent_at=T0,
                store=SQLiteStore(db),
                clock=clock,
                sleep=clock.sleep,
            )
            with open(out, "a", encoding="utf-8") as sink:  # noqa: ASYNC230 - a test worker
                async with aclosing(stream) as changes:
                    async for change in changes:
                        if kind == "take" and written + 1 == limit:
                            os.kill(os.getpid(), signal.SIGKILL)  # dies holding it
                        sink.write(json.dumps(_record(change)) + "\n")
                        sink.flush()
                        written += 1
                        if kind == "change" and written == limit:
                            os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())


def _record(change: object) -> dict[str, object]:
    from smspartner_async.watch import StatusChange

    assert isinstance(change, StatusChange)
    return {
        "id": change.id,
        "index": change.index,
        "status": change.status.value,
        "previous": None if change.previous is None else change.previous.value,
        "settled": change.settled,
        "reason": None if change.reason is None else change.reason.value,
        "checked_at": change.checked_at,
        "sequence": change.sequence,
        "code": change.code,
    }


# -- the test ----------------------------------------------------------------------------------


def run(tmp: Path, name: str, kill: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    args = [str(tmp / f"{name}.db"), str(tmp / f"{name}.jsonl"), str(tmp / f"{name}.clock"), kill]
    return subprocess.Popen([sys.executable, str(HERE), *args], env=env, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes]) -> int:
    _, err = process.communicate(timeout=300)
    assert process.returncode in (0, -signal.SIGKILL), err.decode()
    return process.returncode


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_and_restarted_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    assert finish(run(tmp_path, "calm", "never")) == 0
    expected = lines(tmp_path / "calm.jsonl")
    assert len({c["index"] for c in expected if c["settled"]}) == PAIRS  # every pair settled

    # Mid-round in the first round, mid-delivery, from outside, in later rounds, and on the
    # very first change taken after a restart.
    kills = 0
    for kill in ("call:11", "take:300", "change:500", "outside", "call:25", "change:1", "call:12"):
        if kill == "outside":
            process = run(tmp_path, "hurt", "never")
            out = tmp_path / "hurt.jsonl"
            seen = len(lines(out))
            # Kill it wherever it is once it has delivered 300 more changes.
            while process.poll() is None and len(lines(out)) < seen + 300:
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            kills += finish(process) == -signal.SIGKILL
        else:
            code = finish(run(tmp_path, "hurt", kill))
            # How far each earlier run got before its kill depends on scheduling (its poller
            # runs rounds ahead of its consumer): the last one may find fewer than 12 calls
            # left, and end the watch instead (main db7eaf2 did so too, 2 runs in 10 here).
            assert code == -signal.SIGKILL or kill == "call:12", kill
            kills += code == -signal.SIGKILL
    assert finish(run(tmp_path, "hurt", "never")) == 0
    assert kills >= 6

    got = lines(tmp_path / "hurt.jsonl")
    first: dict[object, dict[str, object]] = {}
    for change in got:
        if change["id"] in first:
            assert change == first[change["id"]]  # a repeat is the same change, whole
        else:
            first[change["id"]] = change
    assert list(first.values()) == expected  # nothing lost, nothing new, the same order
    assert len(got) - len(first) <= kills  # at most the change in hand, per kill


if __name__ == "__main__":
    worker(*sys.argv[1:])
