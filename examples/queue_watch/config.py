"""The recipe's settings, read from the environment by the workers and the service alike.

Every process of the fleet must agree on `redis_url`, `queue` and `namespace`: they name
the shared queue and the shared watch state. The rest tunes one worker.

    SMSPARTNER_REDIS_URL       redis://127.0.0.1:6379/0
    SMSPARTNER_WATCH_QUEUE     smspartner-watch        (SAQ queue name)
    SMSPARTNER_WATCH_NAMESPACE smspartner:watch        (RedisWatchStore's keys)
    SMSPARTNER_CHANGES_KEY     smspartner:changes      (the demo sink: a Redis hash)
    SMSPARTNER_WATCH_SCHEDULE  {"intervals": [5, 10], "window": 172800, ...}  (JSON; Schedule)
    SMSPARTNER_WATCH_LEASE     600     seconds a crashed worker's pairs stay held
    SMSPARTNER_MAX_REQUESTS_PER_SECOND  (none)  one rate limit for the whole fleet
    SMSPARTNER_JOB_TIMEOUT     30      seconds before a job is cancelled, or swept once its
                                       worker died, and retried
    SMSPARTNER_SWEEP_EVERY     15      seconds between SAQ's sweeps for such jobs
    SMSPARTNER_WORKER_CONCURRENCY  10  jobs one worker runs at once

`SMSPARTNER_API_KEY` and `SMSPARTNER_BASE_URL` are read by `SMSPartnerClient` itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from smspartner_async.watch import Schedule

__all__ = ["Config"]


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    return max(1, round(_number(environ, name, default)))


def _schedule(raw: str) -> Schedule:
    """`Schedule(**json)`: e.g. {"intervals": [0.5, 1], "window": 10, "not_found_grace": 2}."""
    if not raw.strip():
        return Schedule()
    options: Any = json.loads(raw)
    if not isinstance(options, dict):
        raise ValueError("SMSPARTNER_WATCH_SCHEDULE must be a JSON object of Schedule options")
    return Schedule(**options)


@attrs.frozen
class Config:
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "smspartner-watch"
    namespace: str = "smspartner:watch"
    changes_key: str = "smspartner:changes"
    schedule: Schedule = attrs.field(factory=Schedule)
    lease: float = 600.0
    max_requests_per_second: float | None = None
    job_timeout: int = 30
    sweep_every: int = 15
    concurrency: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        default = cls()
        rate = env.get("SMSPARTNER_MAX_REQUESTS_PER_SECOND", "").strip()
        return cls(
            redis_url=env.get("SMSPARTNER_REDIS_URL") or default.redis_url,
            queue=env.get("SMSPARTNER_WATCH_QUEUE") or default.queue,
            namespace=env.get("SMSPARTNER_WATCH_NAMESPACE") or default.namespace,
            changes_key=env.get("SMSPARTNER_CHANGES_KEY") or default.changes_key,
            schedule=_schedule(env.get("SMSPARTNER_WATCH_SCHEDULE", "")),
            lease=_number(env, "SMSPARTNER_WATCH_LEASE", default.lease),
            max_requests_per_second=float(rate) if rate else None,
            job_timeout=_whole(env, "SMSPARTNER_JOB_TIMEOUT", default.job_timeout),
            sweep_every=_whole(env, "SMSPARTNER_SWEEP_EVERY", default.sweep_every),
            concurrency=_whole(env, "SMSPARTNER_WORKER_CONCURRENCY", default.concurrency),
        )
