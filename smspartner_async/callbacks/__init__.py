"""Delivery-report callbacks (`urlDlr`) as hints to the watch: push and pull together.

SMS Partner pushes each delivery report to the `urlDlr` given at send time. Its
payload is not documented, so a callback is taken as a *hint*: it makes the pairs
it names due now, and the watch's next multi-status call, batched with every
other hinted pair, says what happened. A forged or stale callback costs a
look-up, never a wrong status; a lost one costs staleness, as the watch's
schedule still asks about every pair.

    receiver = CallbackReceiver(os.environ["SMSPARTNER_CALLBACK_TOKEN"])
    app.mount("/smspartner/dlr", receiver.asgi)        # FastAPI / Starlette

    schedule = PushSchedule()          # sparse checks while callbacks arrive
    async with (
        Watcher(client, schedule=schedule) as watcher,
        receiver.feeding(watcher.hint, on_hint=schedule.heard),
    ):
        ...   # send with urlDlr="https://example.com/smspartner/dlr/<token>"

`receiver.aiohttp_handler` serves aiohttp, and `await receiver.handle(...)` any
other framework. See docs/callbacks.md.
"""

from ._fields import MAX_ITEMS, Hint, hints_from
from ._receiver import CallbackReceiver, CallbackResponse, HintSink, ReceiverStats, new_token
from ._schedule import PUSH_INTERVALS, PushSchedule
from ._sinks import store_sink

__all__ = [
    "MAX_ITEMS",
    "PUSH_INTERVALS",
    "CallbackReceiver",
    "CallbackResponse",
    "Hint",
    "HintSink",
    "PushSchedule",
    "ReceiverStats",
    "hints_from",
    "new_token",
    "store_sink",
]
