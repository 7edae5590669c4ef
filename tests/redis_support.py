"""What the Redis tests share: the server's URL, skipping outside CI, and a server of one's own.

Tests that need Redis read its URL from SMSPARTNER_TEST_REDIS_URL and skip without it,
saying how to run them; with CI=true they fail instead (`.ci/run` starts a server and
sets both). `own_redis` starts and stops a `redis-server` of the test's own on another
port, for the outage tests. `redis` is imported where used, so that a test module can
still skip cleanly, at import, when the extra is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "HOW_TO_RUN",
    "REDIS_URL_ENV",
    "ROOT",
    "RedisServer",
    "free_port",
    "in_ci",
    "own_redis",
    "redis_missing",
    "redis_url",
]

REDIS_URL_ENV = "SMSPARTNER_TEST_REDIS_URL"
HOW_TO_RUN = (
    "start a Redis (redis-server --port 6390 --save '' --daemonize yes) and set "
    f"{REDIS_URL_ENV}=redis://127.0.0.1:6390/0, or run .ci/run"
)
ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def redis_missing(reason: str) -> None:
    """Skip (fail in CI, where these tests must run)."""
    if in_ci():
        pytest.fail(f"{reason}: CI=true, so the Redis tests must run", pytrace=False)
    pytest.skip(f"{reason}; to run: {HOW_TO_RUN}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        redis_missing(f"{REDIS_URL_ENV} is not set")
        raise AssertionError("unreachable")
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as probe:
            probe.ping()
    except redis.RedisError as exc:
        redis_missing(f"no Redis answers at {url} ({exc})")
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server of the test's own on 127.0.0.1, that it can stop and start again."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.5) as probe:
                    probe.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the test's redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        redis_missing("redis-server is not on PATH")
        raise AssertionError("unreachable")
    server = RedisServer(binary, tmp_path)
    try:
        yield server
    finally:
        server.stop()
