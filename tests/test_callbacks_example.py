"""examples/fastapi_app.py with callbacks: the receiver mounted, fed into the app's watch."""

from __future__ import annotations

import asyncio

from smspartner_async.sandbox import SandboxData
from smspartner_async.watch import SettleReason

from .test_examples import fastapi_app, idle, pair_items, running, settled_as, watch_tasks

TOKEN = "example-token-0123456789abcdef"


async def test_sandbox_app_takes_the_emulators_pushed_reports_and_settles_the_same() -> None:
    app = fastapi_app.sandbox_app(speed=1_000_000)
    pairs = list(SandboxData(0).sample_pairs(300))
    async with running(app) as http:
        receiver = app.state.callbacks
        refused = await http.get(f"{fastapi_app.CALLBACK_PATH}/not-the-token?messageId=1")
        added = await http.post("/watch", json={"pairs": pair_items(pairs)})
        await idle(app.state.watcher)
        answers = [(await http.get(f"/watch/{p}/{m}")).json() for p, m in pairs]
    assert refused.status_code == 404
    assert added.json()["added"] == len(pairs)
    # The emulator pushed the reports of the pairs that have one; the watch took them.
    assert receiver.stats.delivered > 0.8 * len(pairs)
    assert receiver.stats.failed == 0
    data = SandboxData(0)
    for pair, change in zip(pairs, answers, strict=True):
        reason, status = settled_as(data, *pair)
        assert (change["settled"], change["reason"], change["status"]) == (
            True,
            reason.value,
            status.value,
        )
    assert {settled_as(data, *p)[0] for p in pairs} == set(SettleReason)
    assert not watch_tasks()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "smspartner-callbacks"]


async def test_without_a_token_there_is_no_receiver() -> None:
    app = fastapi_app.create_app()
    assert app.state.callbacks is None
    app = fastapi_app.create_app(callback_token=TOKEN)
    assert app.state.callbacks is not None
    assert TOKEN not in repr(app.state.callbacks)
