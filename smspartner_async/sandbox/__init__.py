"""A faithful, deterministic emulator of the SMS Partner delivery-status API.

Use it in-process::

    sandbox = Sandbox(seed=1)
    transport = httpx.ASGITransport(app=sandbox.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox/v1") as http:
        ...

or over TCP with ``async with serve(sandbox) as base_url:`` (needs uvicorn), or from a shell
with ``python -m smspartner_async.sandbox --port 8000``. A `CallbackPusher` pushes its
delivery reports to a callback URL, as `urlDlr` makes the platform do. Expected answers come from
``sandbox.data`` (a `SandboxData`), the same pure function of the seed the server uses.
"""

from ._app import MAX_PAIRS, Sandbox
from ._data import (
    DELIVERED,
    NOT_DELIVERED,
    WAITING,
    SandboxData,
    StatusRecord,
    TagItems,
    normalize_phone,
    paris_local_time,
)
from ._faults import DEFAULT_KINDS, FAULT_KINDS, DroppedConnection, Faults
from ._push import CallbackPusher, PushStats
from ._server import serve
from ._stats import Stats

__all__ = [
    "DEFAULT_KINDS",
    "DELIVERED",
    "FAULT_KINDS",
    "MAX_PAIRS",
    "NOT_DELIVERED",
    "WAITING",
    "CallbackPusher",
    "DroppedConnection",
    "Faults",
    "PushStats",
    "Sandbox",
    "SandboxData",
    "Stats",
    "StatusRecord",
    "TagItems",
    "normalize_phone",
    "paris_local_time",
    "serve",
]
