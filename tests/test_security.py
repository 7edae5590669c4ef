"""The API key never leaks; phone numbers stay out of logs above DEBUG.

One scenario drives a client through every kind of failure against the sandbox over real
sockets (good answers, per-item failures, bad key, 429, 500, 502, 503, HTML pages, dropped and
truncated bodies, timeouts, a deadline, connection refused, bad input, a closed client), in JSON
and XML, on both of the client's own transports and with an injected `httpx.AsyncClient`. Every
request goes through httpx, whose logger prints every URL, `apiKey=` included, at INFO.
Everything it produced is then searched for the key: every log record at every level, every
exception (message, repr, args, attributes, causes, contexts, pickle), every result, every
`RequestEvent`, the client's repr.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest

from smspartner_async import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ClientStateError,
    InvalidInputError,
    RateLimitError,
    RequestEvent,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    SMSPartnerClient,
    SMSPartnerError,
)
from smspartner_async._redact import REDACTED, SecretStr, redact
from smspartner_async.sandbox import Faults, Sandbox, serve

KEY = "sk-live-SECRET-4c1d9e7a2b"
WRONG_KEY = "sk-wrong-SECRET-8f2e6a0c3d"
SECRETS = (KEY, WRONG_KEY)
LOGGERS = ("", "httpx", "httpcore", "aiohttp", "smspartner_async", "asyncio")

# fault kind -> the exception it ends in when retries are off
FINAL_FAULTS: dict[str, type[SMSPartnerError]] = {
    "429": RateLimitError,
    "500": ServerError,
    "502": ServerError,
    "503": ServerError,
    "html": ServerError,
    "html200": ResponseFormatError,
    "drop": APIConnectionError,
    "truncate": ResponseFormatError,
}


def frozen_clock() -> float:
    return 0.0


@attrs.define
class Collected:
    """Everything a run produced that a user could print, log or keep."""

    exceptions: list[BaseException] = attrs.Factory(list)
    results: list[Any] = attrs.Factory(list)
    events: list[RequestEvent] = attrs.Factory(list)
    clients: list[SMSPartnerClient] = attrs.Factory(list)
    phones: set[str] = attrs.Factory(set)

    async def expect(self, error: type[BaseException], call: Any) -> None:
        with pytest.raises(error) as info:
            await call
        self.exceptions.append(info.value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_everything(transport: str, fmt: str) -> Collected:
    """Drive clients through every kind of answer and failure; collect what they produced."""
    got = Collected()
    faults = Faults(slow_seconds=0.4)
    sandbox = Sandbox(seed=2, api_key=KEY, clock=frozen_clock, faults=faults)
    data = sandbox.data
    sample = list(data.sample_pairs(400))
    known = [p for p in sample if data.status_of(*p)][:40]
    unknown = [p for p in sample if data.status_of(*p) is None][:5]
    national = [("0" + phone[3:], mid) for phone, mid in known[:5]]  # 06... forms
    got.phones.update(phone for phone, _ in known + unknown)
    phone, mid = known[0]

    async with serve(sandbox) as base_url, contextlib.AsyncExitStack() as stack:

        def client(key: str = KEY, url: str = base_url, **options: Any) -> SMSPartnerClient:
            options.setdefault("retry", RetryPolicy.testing())
            if transport == "injected":
                http = httpx.AsyncClient(timeout=options.pop("timeout", 5.0))
                stack.push_async_callback(http.aclose)
                options["http_client"] = http
            else:
                options["transport"] = transport
            made = SMSPartnerClient(
                key, base_url=url, response_format=fmt, on_request=got.events.append, **options
            )
            got.clients.append(made)
            stack.push_async_callback(made.aclose)
            return made

        good = client()
        # Answers that succeed, with per-item failures (code 4) in the batch.
        got.results.append(await good.message_status(phone, mid))
        got.results.append(await good.message_status(*national[0]))
        got.results.extend(await good.multi_status(known + unknown + national))
        got.results.append(await good.bulk_status(mid))
        got.results.extend(await good.status_by_tag("tag-150"))
        async for item in good.iter_multi_status(known[:10]):
            got.results.append(item)

        # Every fault, retried until it succeeds (retry warnings get logged).
        patient = client(retry=RetryPolicy.testing(max_retries=len(FINAL_FAULTS)))
        faults.script(list(FINAL_FAULTS))
        got.results.append(await patient.message_status(phone, mid))
        faults.script(list(FINAL_FAULTS))
        got.results.extend(await patient.multi_status(known, fail_fast=True))
        faults.script(list(FINAL_FAULTS))
        got.results.append(await patient.bulk_status(mid))

        # Every fault, final: retries off.
        final = client(max_retries=0, batch_size=2)
        for kind, error in FINAL_FAULTS.items():
            faults.script([kind])
            await got.expect(error, final.message_status(phone, mid))
            faults.script([kind])
            await got.expect(error, final.bulk_status(mid))
            faults.script([kind])
            got.results.extend(await final.multi_status(known[:3]))  # one failed call, kept
            faults.script([kind, kind])
            await got.expect(error, final.multi_status(known[:3]))  # no call answered
        assert all(isinstance(r, object) for r in got.results)

        # A bad key, on every endpoint.
        bad = client(WRONG_KEY)
        await got.expect(AuthenticationError, bad.message_status(phone, mid))
        await got.expect(AuthenticationError, bad.bulk_status(mid))
        await got.expect(AuthenticationError, bad.multi_status(known[:3]))
        await got.expect(AuthenticationError, bad.status_by_tag("tag-5"))

        # Timeouts: per operation, and the whole call's deadline.
        slow = client(timeout=0.15, max_retries=0, batch_size=2)
        faults.script(["slow"])
        await got.expect(APITimeoutError, slow.message_status(phone, mid))
        faults.script(["slow"])
        got.results.extend(await slow.multi_status(known[:3]))
        hurried = client(deadline=0.1)
        faults.script(["slow"])
        await got.expect(APITimeoutError, hurried.bulk_status(mid))

        # Bad input, refused before sending; a closed client.
        await got.expect(InvalidInputError, good.message_status("not a phone", mid))
        await got.expect(InvalidInputError, good.multi_status([(phone, mid), ("+33", -1)]))
        closed = client()
        await closed.aclose()
        await got.expect(ClientStateError, closed.message_status(phone, mid))

        # Nobody listening.
        refused = client(url=f"http://127.0.0.1:{free_port()}/v1")
        await got.expect(APIConnectionError, refused.message_status(phone, mid))
        await got.expect(APIConnectionError, refused.multi_status(known[:3]))

    failed = [r for r in got.results if getattr(r, "error", None) is not None]
    assert failed, "the scenario should produce failed items"
    got.exceptions.extend(r.error for r in failed)
    return got


def exception_texts(exc: BaseException, seen: set[int] | None = None) -> Iterator[str]:
    """Every text an exception shows: str, repr, args, attributes, notes, chain, traceback."""
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return
    seen.add(id(exc))
    yield str(exc)
    yield repr(exc)
    yield repr(exc.args)
    yield from (repr(note) for note in getattr(exc, "__notes__", ()))
    for name, value in vars(exc).items():
        yield f"{name}={value!r}"
        yield str(value)
        if isinstance(value, BaseException):
            yield from exception_texts(value, seen)
    yield "".join(traceback.format_exception(exc))
    with contextlib.suppress(Exception):  # an unpicklable exception shows nothing there
        yield pickle.dumps(exc).decode("latin-1")
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            yield from exception_texts(linked, seen)


def record_texts(record: logging.LogRecord) -> Iterator[str]:
    yield record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        yield "".join(traceback.format_exception(record.exc_info[1]))
        yield from exception_texts(record.exc_info[1])
    if record.stack_info:
        yield record.stack_info


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"the API key leaked in {where}: {text[:300]!r}"


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


TRANSPORTS = ["httpx", "aiohttp", "injected"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_key_never_leaks(
    caplog: pytest.LogCaptureFixture, transport: str, fmt: str
) -> None:
    capture_everything(caplog)
    got = await run_everything(transport, fmt)

    records = caplog.records
    assert records, "the scenario should log something"
    for record in records:
        for text in record_texts(record):
            assert_no_secret(text, f"log record {record.name}:{record.levelname}")
    assert any(r.name == "smspartner_async" and "retry" in r.getMessage() for r in records)
    # httpx really logged the request URLs: the filter, not luck, kept the key out.
    urls = [r.getMessage() for r in records if r.name == "httpx" and "HTTP Request" in r.msg]
    assert any(f"apiKey={REDACTED}" in url for url in urls)

    kinds = {type(exc) for exc in got.exceptions}
    assert {
        AuthenticationError,
        RateLimitError,
        ServerError,
        ResponseFormatError,
        APIConnectionError,
        APITimeoutError,
        InvalidInputError,
        ClientStateError,
    } <= kinds
    for exc in got.exceptions:
        for text in exception_texts(exc):
            assert_no_secret(text, f"{type(exc).__name__}")

    assert len(got.results) > 100
    for result in got.results:
        assert_no_secret(repr(result), "a result's repr")
        assert_no_secret(str(result), "a result's str")
    assert len(got.events) > 50
    # No full phone number in the package's own log above DEBUG.
    assert len(got.phones) > 30
    assert phone_leaks(caplog, got.phones, "smspartner_async") == []
    for event in got.events:
        assert_no_secret(repr(event), "a RequestEvent")
    for client in got.clients:
        for text in (repr(client), str(client), repr(client.stats)):
            assert_no_secret(text, "the client's repr")
        for owner in (client, client._caller, client._shared):
            state = (
                vars(owner) if hasattr(owner, "__dict__") else attrs.asdict(owner, recurse=False)
            )
            for name, value in state.items():
                assert_no_secret(f"{name}={value!r}", f"{type(owner).__name__}.{name}")
                assert_no_secret(str(value), f"{type(owner).__name__}.{name}")


def national_digits(phone: str) -> str:
    return phone[-9:]  # the subscriber number, whatever prefix or escaping is around it


def phone_leaks(caplog: pytest.LogCaptureFixture, phones: set[str], logger: str | None) -> list:
    leaks = []
    for record in caplog.records:
        if record.levelno < logging.INFO:
            continue
        if logger is not None and not record.name.startswith(logger):
            continue
        message = "\n".join(record_texts(record))
        leaks.extend((record.name, message[:200]) for p in phones if national_digits(p) in message)
    return leaks


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_phone_number_in_any_log_above_debug(
    caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    """httpx logs each URL at INFO, whatever the transport; phoneNumber= must come out masked."""
    capture_everything(caplog)
    got = await run_everything(transport, "json")
    urls = [r.getMessage() for r in caplog.records if "phoneNumber=" in r.getMessage()]
    assert urls, "httpx should have logged message-status URLs"
    assert phone_leaks(caplog, got.phones, None) == []


# -- the pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://api.smspartner.fr/v1/message-status?apiKey={KEY}&messageId=1",
        f"GET /v1/bulk-status?messageId=1&apiKey={KEY}",
        f'{{"apiKey": "{KEY}", "SMSStatut_List": []}}',
        f"{{'apiKey': '{KEY}'}}",
        f"apikey={KEY}",
        f"APIKEY: {KEY}",
        f"api_key={KEY}",
        f"api-key = {KEY};",
        f"<apiKey>{KEY}</apiKey>",
        f"the key {KEY} said bare",
        f"url-encoded apiKey%3D{KEY}",
    ],
)
def test_redact_removes_the_key(text: str) -> None:
    SecretStr(KEY)  # a client registers its key like this
    assert KEY not in redact(text)


def test_secret_str_hides_itself() -> None:
    secret = SecretStr(KEY)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert KEY not in text
    assert secret.reveal() == KEY
    assert secret == SecretStr(KEY)
    assert secret != KEY  # never equal to the bare string, so it cannot be looked up by it


def test_repr_of_a_fresh_client_hides_the_key() -> None:
    client = SMSPartnerClient(KEY)
    assert KEY not in repr(client)
    assert KEY not in str(vars(client))


def test_key_from_the_environment_is_hidden_too(monkeypatch: pytest.MonkeyPatch) -> None:
    env_key = "sk-env-SECRET-77aa88bb99"
    monkeypatch.setenv("SMSPARTNER_API_KEY", env_key)
    client = SMSPartnerClient()
    assert env_key not in repr(client)
    assert env_key not in redact(f"something about {env_key}")


async def test_log_filter_redacts_httpx_records_with_any_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record built by httpx's own call is redacted before a handler formats it."""
    SMSPartnerClient(KEY)  # installs the filter
    capture_everything(caplog)
    url = f"https://api.smspartner.fr/v1/message-status?apiKey={KEY}&messageId=1"
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK"
    )
    logging.getLogger("httpcore.http11").debug("request url=%s", url)
    (first, second) = caplog.records
    for record in (first, second):
        assert KEY not in record.getMessage()
        assert KEY not in str(record.msg)
        assert KEY not in repr(record.args)
    assert "apiKey=***" in first.getMessage()
