"""SMSPartnerSyncClient: the async client on one background loop, for synchronous code.

Every test drives the sandbox in-process; the sync client builds the sandbox's
`httpx.AsyncClient` on its own loop through `http_client_factory`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from smspartner_async import (
    AuthenticationError,
    ClientStateError,
    InvalidInputError,
    NotFoundError,
    RequestEvent,
    RetryPolicy,
    SMSPartnerClient,
)
from smspartner_async._sync import SMSPartnerSyncClient
from smspartner_async.sandbox import Sandbox, serve
from smspartner_async.testing import SANDBOX_BASE_URL, sandbox_client, sandbox_http_client

TAG = "demo"
THREAD_NAME = "smspartner-sync"


def frozen_sandbox(**options: Any) -> Sandbox:
    """Seed 0, any key, and a stopped clock: Waiting records do not settle between two runs."""
    options.setdefault("api_key", None)
    return Sandbox(seed=0, clock=lambda: 0.0, **options)


def portal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def sandbox() -> Sandbox:
    return frozen_sandbox()


@pytest.fixture
def make_sync() -> Iterator[Callable[..., SMSPartnerSyncClient]]:
    """Sync clients wired to a sandbox in-process, closed at teardown."""
    made: list[SMSPartnerSyncClient] = []

    def make(
        sandbox: Sandbox, api_key: str = "sandbox-key", **options: Any
    ) -> SMSPartnerSyncClient:
        options.setdefault("retry", RetryPolicy.testing())
        client = SMSPartnerSyncClient(
            api_key,
            http_client_factory=lambda: sandbox_http_client(sandbox),
            base_url=SANDBOX_BASE_URL,
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
    assert not any(c._core.thread.is_alive() for c in made)


def unknown_pair(sandbox: Sandbox) -> tuple[str, int]:
    """A pair the sandbox answers "not found" (code 4) for."""
    return "+33612345678", next(m for m in range(1, 10_000) if not sandbox.data.message_known(m))


def inputs(sandbox: Sandbox) -> dict[str, Any]:
    pairs: list[Any] = list(sandbox.data.sample_pairs(60, national_share=0.3))
    pairs += [pairs[3], unknown_pair(sandbox), {"phone_number": pairs[5][0], "message_id": 7}]
    message_id = next(m for m in range(1, 1000) if sandbox.data.recipients(m))
    return {"pairs": pairs, "message_id": message_id}


async def async_answers(sandbox: Sandbox, **options: Any) -> dict[str, Any]:
    given = inputs(sandbox)
    pairs = given["pairs"]
    async with sandbox_client(sandbox, **options) as client:
        return {
            "message_status": await client.message_status(*pairs[0]),
            "multi_status": await client.multi_status(pairs),
            "iter_multi_status": [r async for r in client.iter_multi_status(pairs)],
            "bulk_status": await client.bulk_status(given["message_id"]),
            "status_by_tag": await client.status_by_tag(TAG),
            "iter_status_by_tag": [r async for r in client.iter_status_by_tag(TAG)],
            "iter_tag_pages": [p async for p in client.iter_tag_pages(TAG)],
        }


def sync_answers(client: SMSPartnerSyncClient, sandbox: Sandbox) -> dict[str, Any]:
    given = inputs(sandbox)
    pairs = given["pairs"]
    return {
        "message_status": client.message_status(*pairs[0]),
        "multi_status": client.multi_status(pairs),
        "iter_multi_status": list(client.iter_multi_status(pairs)),
        "bulk_status": client.bulk_status(given["message_id"]),
        "status_by_tag": client.status_by_tag(TAG),
        "iter_status_by_tag": list(client.iter_status_by_tag(TAG)),
        "iter_tag_pages": list(client.iter_tag_pages(TAG)),
    }


# -- same results -------------------------------------------------------------------


def by_index(results: list[Any]) -> list[Any]:
    return sorted(results, key=lambda r: r.index)


def test_every_method_gives_the_async_clients_results_in_the_same_order(make_sync):
    options = {"batch_size": 7}
    sandbox = frozen_sandbox(page_size=10)
    expected = asyncio.run(async_answers(sandbox, **options))
    client = make_sync(sandbox, **options)
    got = sync_answers(client, sandbox)
    # A result stream yields in completion order, in either client: the same items.
    assert by_index(got.pop("iter_multi_status")) == by_index(expected.pop("iter_multi_status"))
    # Everything else in the same order: input order, page order.
    assert got == expected
    assert len(got["iter_tag_pages"]) > 2  # the paging was exercised
    assert [r.index for r in got["multi_status"]] == list(range(len(inputs(sandbox)["pairs"])))
    assert not all(r.ok for r in got["multi_status"])  # a failed item came through too


def test_default_concurrency_and_with_options_views(make_sync):
    sandbox = frozen_sandbox(page_size=10)
    expected = asyncio.run(async_answers(sandbox, batch_size=5))
    client = make_sync(sandbox)
    view = client.with_options(batch_size=5, response_format="xml")
    sandbox.stats.reset()
    got = sync_answers(view, sandbox)
    assert max(sandbox.stats.pairs_per_call) == 5  # the view's options were applied
    assert by_index(got.pop("iter_multi_status")) == by_index(expected.pop("iter_multi_status"))
    assert got == expected
    # The view shares the thread, the stats and the state.
    assert view._core is client._core
    assert view.stats is client.stats
    assert client.stats.requests == sandbox.stats.total
    view.close()
    assert client.is_closed
    with pytest.raises(ClientStateError):
        client.message_status(*inputs(sandbox)["pairs"][0])


def test_multi_status_reads_a_generator_in_the_calling_thread(make_sync, sandbox):
    client = make_sync(sandbox)
    pairs = list(sandbox.data.sample_pairs(20))
    readers: set[int] = set()

    def read() -> Iterator[tuple[str, int]]:
        for pair in pairs:
            readers.add(threading.get_ident())
            yield pair

    results = client.multi_status(read())
    assert [(r.phone_number, r.message_id) for r in results] == pairs
    assert readers == {threading.get_ident()}
    readers.clear()
    assert len(list(client.iter_multi_status(read()))) == len(pairs)
    assert readers == {client._core.thread.ident}  # lazily, on the loop (documented)


# -- iterators: closing early cancels -----------------------------------------------


@pytest.mark.parametrize("how", ["break", "close", "drop"])
def test_leaving_a_result_stream_early_cancels_its_calls(make_sync, how):
    sandbox = frozen_sandbox(latency=0.3)
    client = make_sync(sandbox, batch_size=10, max_concurrency=4)
    pairs = list(sandbox.data.sample_pairs(400))  # 40 calls
    if how == "break":
        for result in client.iter_multi_status(pairs):  # nothing else holds the iterator
            assert result.message_id in {mid for _, mid in pairs}
            break
    else:
        results = client.iter_multi_status(pairs)
        first = next(results)
        assert first.message_id in {mid for _, mid in pairs}
        if how == "close":
            results.close()
        else:
            del results
            gc.collect()
    # Cancelled before the next line runs: nothing in flight, nothing queued sent later.
    assert sandbox.stats.in_flight == 0
    sent = sandbox.stats.total
    assert 4 <= sent < 40
    time.sleep(0.4)
    assert sandbox.stats.total == sent
    # The client is still fine afterwards.
    assert client.message_status(*pairs[0]).message_id == pairs[0][1]


def test_leaving_tag_pages_early_cancels_the_page_requests(make_sync):
    sandbox = frozen_sandbox(page_size=5)
    # Page 1 and page 2 answer at once; pages 3 and 4, fetched with page 2, take 30 s.
    sandbox.faults.script([None, None, "slow", "slow"])
    client = make_sync(sandbox, max_concurrency=3)
    with contextlib.closing(client.iter_tag_pages(TAG)) as pages:
        assert [next(pages).current_page, next(pages).current_page] == [1, 2]
        wait_until(lambda: sandbox.stats.in_flight == 2)
    assert sandbox.stats.in_flight == 0  # cancelled, not left to run for 30 s
    assert sandbox.stats.total == 4
    time.sleep(0.2)
    assert sandbox.stats.total == 4
    # The same through the flat iterator, dropped after its first page's items.
    sandbox.faults.script([None, None, "slow", "slow"])
    recipients = client.iter_status_by_tag(TAG)
    assert len([next(recipients) for _ in range(6)]) == 6  # into page 2
    wait_until(lambda: sandbox.stats.in_flight == 2)
    del recipients
    assert sandbox.stats.in_flight == 0
    assert sandbox.stats.total == 8


# -- threads --------------------------------------------------------------------------


def test_eight_threads_at_once_share_one_loop(make_sync):
    sandbox = frozen_sandbox(latency=0.05)
    seen: list[tuple[int, int]] = []

    def on_request(event: RequestEvent) -> None:
        seen.append((threading.get_ident(), id(asyncio.get_running_loop())))

    client = make_sync(sandbox, on_request=on_request)
    pairs = list(sandbox.data.sample_pairs(80))
    barrier = threading.Barrier(8)
    outcomes: dict[int, Any] = {}

    def work(n: int) -> None:
        barrier.wait()
        try:
            mine = pairs[n * 10 : (n + 1) * 10]
            outcomes[n] = (client.message_status(*mine[0]), client.multi_status(mine))
        except BaseException as exc:
            outcomes[n] = exc

    threads_before = len(portal_threads())
    workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(outcomes) == 8
    for n, outcome in outcomes.items():
        assert not isinstance(outcome, BaseException), outcome
        one, many = outcome
        mine = pairs[n * 10 : (n + 1) * 10]
        assert one.message_id == mine[0][1]
        assert [(r.phone_number, r.message_id) for r in many] == mine
        assert all(r.ok for r in many)
    assert len(seen) == 16  # one request per call, no retries
    assert {thread for thread, _ in seen} == {client._core.thread.ident}
    assert len({loop for _, loop in seen}) == 1
    assert len(portal_threads()) == threads_before  # no thread per call
    assert sandbox.stats.max_in_flight > 1  # the threads' calls overlapped on the loop


# -- errors ---------------------------------------------------------------------------


def test_an_exception_raised_on_the_loop_reaches_the_caller_as_itself(make_sync):
    sandbox = frozen_sandbox(api_key="good")
    client = make_sync(sandbox, api_key="another")
    pair = ("+33612345678", 300)
    calls: dict[str, Callable[[Any], Any]] = {
        "message_status": lambda c: c.message_status(*pair),
        "multi_status": lambda c: c.multi_status([pair]),
        "bulk_status": lambda c: c.bulk_status(300),
        "status_by_tag": lambda c: c.status_by_tag(TAG),
        "iter_multi_status": lambda c: c.iter_multi_status([pair]),
        "iter_tag_pages": lambda c: c.iter_tag_pages(TAG),
    }

    async def first_async(name: str, async_client: SMSPartnerClient) -> object:
        result = calls[name](async_client)
        return await (anext(result) if name.startswith("iter_") else result)

    def first_sync(name: str) -> object:
        result = calls[name](client)
        return next(result) if name.startswith("iter_") else result

    async def async_errors() -> dict[str, AuthenticationError]:
        errors: dict[str, AuthenticationError] = {}
        async with sandbox_client(sandbox, api_key="another") as async_client:
            for name in calls:
                with pytest.raises(AuthenticationError) as caught:
                    await first_async(name, async_client)
                errors[name] = caught.value
        return errors

    expected = asyncio.run(async_errors())
    for name in calls:
        with pytest.raises(AuthenticationError) as caught:
            first_sync(name)
        error = caught.value
        assert type(error) is type(expected[name])
        assert (error.code, str(error)) == (expected[name].code, str(expected[name]))
        assert error.__cause__ is None
        # The very object raised on the loop: its traceback runs through the client there.
        frames = traceback.extract_tb(error.__traceback__)
        assert any(frame.filename.endswith("_call.py") for frame in frames)
    good = make_sync(sandbox, api_key="good")
    with pytest.raises(NotFoundError) as not_found:
        good.message_status(*unknown_pair(sandbox))
    assert not_found.value.code == 4
    with pytest.raises(InvalidInputError) as bad:
        good.multi_status([("not a number", 1)])
    assert bad.value.index == 0
    assert sandbox.stats.errors[4] == 1


async def test_calling_it_from_a_running_event_loop_is_a_clear_error(sandbox):
    client = await asyncio.to_thread(
        SMSPartnerSyncClient,
        "key",
        http_client_factory=lambda: sandbox_http_client(sandbox),
        base_url=SANDBOX_BASE_URL,
    )
    try:
        pair = next(sandbox.data.sample_pairs(1))
        with pytest.raises(ClientStateError, match="event loop running") as caught:
            client.message_status(*pair)
        assert "SMSPartnerClient" in str(caught.value)
        with pytest.raises(ClientStateError):
            client.multi_status([pair])
        with pytest.raises(ClientStateError):
            next(client.iter_tag_pages(TAG))
        assert sandbox.stats.total == 0
        # From a worker thread it works.
        result = await asyncio.to_thread(client.message_status, *pair)
        assert result.message_id == pair[1]
    finally:
        client.close()  # allowed here: it blocks only briefly
    assert not client._core.thread.is_alive()


def test_a_hook_calling_the_client_on_its_own_loop_gets_an_error_not_a_deadlock(make_sync, sandbox):
    client = make_sync(sandbox)
    pairs = list(sandbox.data.sample_pairs(3))
    errors: list[BaseException] = []

    def progress(done: int, total: int | None) -> None:
        for call in (lambda: client.message_status(*pairs[0]), client.close):
            try:
                call()
            except BaseException as exc:
                errors.append(exc)

    results = client.multi_status(pairs, progress=progress)
    assert len(results) == 3
    assert [type(e) for e in errors] == [ClientStateError, ClientStateError]
    assert not client.is_closed


# -- lifecycle ------------------------------------------------------------------------


def test_after_close_calls_raise_and_the_thread_has_ended(sandbox, caplog):
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(sandbox_http_client(sandbox))
        return made[-1]

    pair = next(sandbox.data.sample_pairs(1))
    with SMSPartnerSyncClient(
        "key", http_client_factory=factory, base_url=SANDBOX_BASE_URL
    ) as client:
        thread = client._core.thread
        assert thread.is_alive()
        assert thread in portal_threads()
        assert client.message_status(*pair).message_id == pair[1]
        stream = client.iter_multi_status([pair, pair])  # left open: closing ends it too
        next(stream)
    assert client.is_closed
    assert not thread.is_alive()
    assert thread not in portal_threads()
    # The open stream was closed in order (no asyncio complaint about nested generators).
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert made[0].is_closed  # the factory's client belongs to the sync client
    for call in (
        lambda: client.message_status(*pair),
        lambda: client.multi_status([pair]),
        lambda: client.bulk_status(300),
        lambda: client.status_by_tag(TAG),
        lambda: list(client.iter_tag_pages(TAG)),
        lambda: next(stream),
        lambda: client.with_options(timeout=1).message_status(*pair),
    ):
        with pytest.raises(ClientStateError):
            call()
    with pytest.raises(ClientStateError):
        client.__enter__()
    client.close()  # twice is fine
    stream.close()  # and so is closing a stream after the client


def test_close_cancels_calls_in_flight_in_other_threads(make_sync):
    sandbox = frozen_sandbox(latency=30)
    client = make_sync(sandbox)
    pair = next(sandbox.data.sample_pairs(1))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.message_status(*pair)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    wait_until(lambda: sandbox.stats.in_flight == 1)
    started = time.monotonic()
    client.close()
    worker.join(5)
    assert time.monotonic() - started < 5
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientStateError)
    assert "in flight" in str(outcome[0])
    assert sandbox.stats.in_flight == 0
    assert not client._core.thread.is_alive()


def test_close_cancels_and_closes_a_stream_left_open(make_sync, caplog):
    sandbox = frozen_sandbox()
    sandbox.faults.script([None, "slow", "slow"])  # the 2nd and 3rd calls take 30 s
    client = make_sync(sandbox, batch_size=10, max_concurrency=3)
    stream = client.iter_multi_status(list(sandbox.data.sample_pairs(30)))
    assert next(stream).index == 0  # the first call's first pair
    wait_until(lambda: sandbox.stats.in_flight == 2)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 5
    assert sandbox.stats.in_flight == 0
    assert not client._core.thread.is_alive()
    # Closed from the outside in, before the loop's shutdown (which closes nested async
    # generators all at once and logs "aclose(): asynchronous generator is already running").
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(ClientStateError):
        next(stream)


def test_close_while_another_thread_waits_on_a_stream(make_sync, caplog):
    sandbox = frozen_sandbox(latency=30)
    client = make_sync(sandbox, batch_size=10, max_concurrency=3)
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            for _ in client.iter_multi_status(list(sandbox.data.sample_pairs(30))):
                pass
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    wait_until(lambda: sandbox.stats.in_flight == 3)
    client.close()
    worker.join(5)
    assert [type(e) for e in outcome] == [ClientStateError]
    assert sandbox.stats.in_flight == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")
def test_an_interrupted_wait_cancels_the_call_on_the_loop(make_sync):
    sandbox = frozen_sandbox(latency=30)
    client = make_sync(sandbox)
    pair = next(sandbox.data.sample_pairs(1))

    class SoftTimeLimit(Exception):  # as Celery's SoftTimeLimitExceeded, or Ctrl-C
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise SoftTimeLimit

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(SoftTimeLimit):
            client.message_status(*pair)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert sandbox.stats.total == 1
    wait_until(lambda: sandbox.stats.in_flight == 0, timeout=2)  # not 30 s later


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_clear_error_not_a_hang(make_sync, sandbox):
    client = make_sync(sandbox)
    pair = next(sandbox.data.sample_pairs(1))
    client.message_status(*pair)
    with pytest.warns() if sys.version_info >= (3, 12) else contextlib.nullcontext():
        pid = os.fork()  # a parent with threads: 3.12+ warns
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            signal.alarm(10)  # a hang kills the child
            try:
                client.message_status(*pair)
            except ClientStateError as exc:
                if "fork" in str(exc) and client.is_closed:
                    client.close()  # returns: nothing to stop in the child
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not client.is_closed
    assert client.message_status(*pair).message_id == pair[1]  # the parent's is unharmed


def test_a_failed_construction_leaves_no_thread(monkeypatch, sandbox):
    monkeypatch.delenv("SMSPARTNER_API_KEY", raising=False)
    before = len(portal_threads())
    with pytest.raises(AuthenticationError):
        SMSPartnerSyncClient()
    with pytest.raises(InvalidInputError, match="max_concurrency"):
        SMSPartnerSyncClient("key", max_concurrency=0)
    closed: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        closed.append(sandbox_http_client(sandbox))
        return closed[-1]

    with pytest.raises(InvalidInputError, match="batch_size"):
        SMSPartnerSyncClient("key", http_client_factory=factory, batch_size=501)
    assert closed == []  # options are refused in the calling thread, before anything is built
    with pytest.raises(InvalidInputError, match="http_client_factory"):
        SMSPartnerSyncClient("key", http_client_factory=lambda: object())  # type: ignore[arg-type, return-value]
    assert len(portal_threads()) == before


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_the_pool_it_builds_itself_is_built_on_its_loop(transport):
    sandbox = frozen_sandbox()
    pair = next(sandbox.data.sample_pairs(1))
    with (
        start_blocking_portal() as server_portal,
        server_portal.wrap_async_context_manager(serve(sandbox)) as base_url,
        SMSPartnerSyncClient("key", base_url=base_url, transport=transport) as client,
    ):
        assert client.message_status(*pair).message_id == pair[1]
        assert len(client.multi_status([pair] * 3)) == 3
    assert sandbox.stats.total == 2


def test_repr_hides_the_key(make_sync, sandbox):
    client = make_sync(sandbox, api_key="secret-key-123")
    text = repr(client)
    assert text.startswith("SMSPartnerSyncClient(")
    assert "secret-key-123" not in text
    assert isinstance(client._client, SMSPartnerClient)


def test_both_clients_have_the_same_methods_with_the_same_parameters() -> None:
    import inspect

    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_") and name not in ("aclose", "close")
        }

    assert public(SMSPartnerSyncClient) == public(SMSPartnerClient)


def test_watch_follows_pairs_until_they_settle(
    make_sync: Callable[..., SMSPartnerSyncClient],
) -> None:
    from smspartner_async.testing import FastClock
    from smspartner_async.watch import SettleReason

    clock = FastClock(200_000)
    sandbox = Sandbox(seed=0, api_key=None, clock=clock)
    pairs = list(sandbox.data.sample_pairs(200))
    client = make_sync(sandbox)
    changes = list(client.watch(pairs, clock=clock, sleep=clock.sleep))
    last = {c.index: c for c in changes}
    assert sorted(last) == list(range(200))
    assert [c for c in changes if c.settled] == sorted(last.values(), key=changes.index)
    for index, change in last.items():
        record = sandbox.data.status_of(*pairs[index], elapsed=1e9)
        if record is None:
            assert change.reason is SettleReason.API_ERROR
        elif record.status == "Waiting":
            assert change.reason is SettleReason.EXPIRED
        else:
            assert (change.reason, change.status.value) == (SettleReason.FINAL, record.status)
