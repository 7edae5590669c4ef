"""OpenTelemetry: our spans and metrics, and the key kept out of every exported item.

With OpenTelemetry's generic HTTP instrumentations on (httpx's, enabled globally, records
`url.full`/`http.url` with only `user:password` stripped; aiohttp-client's records the
query string), a GET of this API would export `apiKey=` in every span. The library
suppresses them around its own requests and records its own spans instead:

- one INTERNAL span per API call (`smspartner <endpoint>`), one CLIENT span per HTTP
  attempt under it (stable HTTP semantic conventions, `url.full` redacted);
- `http.client.request.duration`, pairs answered by status, retries, 429 pauses.

Everything runs against the sandbox over real sockets (the instrumentations only see real
transports), on both of the client's transports and an injected `httpx.AsyncClient`, and
every exported span and metric is then searched for the key and for full phone numbers.
Each test that claims the instrumentations stayed silent first proves they were live (a
control request of the test's own, outside the library, is recorded).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.instrumentation.httpx")
pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")

import aiohttp
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from smspartner_async import (
    APIConnectionError,
    NotFoundError,
    RetryPolicy,
    SMSPartnerClient,
)
from smspartner_async import _telemetry as telemetry
from smspartner_async.sandbox import Faults, Sandbox, serve
from smspartner_async.testing import sandbox_client

from .test_security import KEY, SECRETS, free_port, national_digits, run_everything

OURS = telemetry.SCOPE
CONTROL_KEY = "control-not-a-secret"


# -- fixtures ---------------------------------------------------------------------------------


@attrs.define
class Otel:
    """An SDK tracer and meter provider exporting to memory."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[tuple[str, str], Any]:
        """(scope, instrument name) -> metric, as the reader collects them now."""
        data = self.reader.get_metrics_data()
        found: dict[tuple[str, str], Any] = {}
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[(scope_metrics.scope.name, metric.name)] = metric
        return found

    def exported_json(self) -> Iterator[tuple[str, str]]:
        """Every exported item as the OTLP exporters' JSON shows it: (where, text)."""
        for span in self.finished():
            yield f"span {span.name}", span.to_json()
        data = self.reader.get_metrics_data()
        if data is not None:
            yield "metrics", data.to_json()


def reset_globals() -> None:
    # What opentelemetry-test-utils' reset_trace_globals / reset_metrics_globals do: the API
    # lets a process set its global providers once, and these tests need one each.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    trace._PROXY_TRACER_PROVIDER = trace.ProxyTracerProvider()
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()


@pytest.fixture
def providers() -> Iterator[Otel]:
    """SDK providers, not set globally (the instrumentations may be given them)."""
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(spans, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def otel(providers: Otel) -> Iterator[Otel]:
    """The providers set globally, as a service's telemetry setup does."""
    reset_globals()
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    yield providers
    reset_globals()


@pytest.fixture
def unset() -> Iterator[None]:
    """No global provider, whatever a failed test left."""
    reset_globals()
    yield
    reset_globals()


@pytest.fixture
def instrumented(providers: Otel) -> Iterator[Otel]:
    """httpx's and aiohttp-client's generic instrumentations on, exporting to `providers`."""
    options = {
        "tracer_provider": providers.tracer_provider,
        "meter_provider": providers.meter_provider,
    }
    HTTPXClientInstrumentor().instrument(**options)
    AioHttpClientInstrumentor().instrument(**options)
    yield providers
    HTTPXClientInstrumentor().uninstrument()
    AioHttpClientInstrumentor().uninstrument()


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(seed=2, api_key=KEY, faults=Faults())


async def control_requests(base_url: str) -> None:
    """One request of the test's own through each instrumented library, key in the URL."""
    url = f"{base_url}/bulk-status?apiKey={CONTROL_KEY}&messageId=1"
    async with httpx.AsyncClient() as http:
        await http.get(url)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        await response.read()


def assert_instrumentations_were_live(spans: list[ReadableSpan]) -> None:
    """The controls were recorded, URL and all: the instrumentations saw what they could."""
    theirs = [s for s in spans if s.instrumentation_scope.name != OURS]
    scopes = sorted(s.instrumentation_scope.name for s in theirs)
    assert scopes == [
        "opentelemetry.instrumentation.aiohttp_client",
        "opentelemetry.instrumentation.httpx",
    ], "only the two control requests may be recorded by the generic instrumentations"
    for span in theirs:
        assert CONTROL_KEY in json.dumps(dict(span.attributes or {}))


def assert_nothing_exported_holds_a_secret(otel: Otel, phones: set[str]) -> None:
    texts = list(otel.exported_json())
    assert texts
    for where, text in texts:
        for secret in SECRETS:
            assert secret not in text, f"the API key was exported in {where}"
        for phone in phones:
            assert national_digits(phone) not in text, f"a phone number was exported in {where}"
    # The same, item by item, for what the JSON might render differently.
    for span in otel.finished():
        items: list[Any] = [span.name, span.status.description, dict(span.resource.attributes)]
        items.append(dict(span.attributes or {}))
        items += [(event.name, dict(event.attributes or {})) for event in span.events]
        items += [dict(link.attributes or {}) for link in span.links]
        for item in items:
            for secret in SECRETS:
                assert secret not in repr(item), f"the API key in {span.name}: {item!r}"


def spans_of(otel: Otel) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """Our (call spans, attempt spans)."""
    ours = [s for s in otel.finished() if s.instrumentation_scope.name == OURS]
    calls = [s for s in ours if s.kind is SpanKind.INTERNAL]
    attempts = [s for s in ours if s.kind is SpanKind.CLIENT]
    assert len(calls) + len(attempts) == len(ours)
    return calls, attempts


def attr(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


# -- spans and metrics ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_spans_and_metrics_for_every_endpoint(
    otel: Otel, instrumented: Otel, sandbox: Sandbox, transport: str
) -> None:
    data = sandbox.data
    sample = list(data.sample_pairs(700))
    known = [p for p in sample if data.status_of(*p)]
    phone, mid = known[0]
    async with serve(sandbox) as base_url:
        async with SMSPartnerClient(
            KEY, base_url=base_url, transport=transport, retry=RetryPolicy.testing()
        ) as client:
            one = await client.message_status(phone, mid)
            many = await client.multi_status(sample)  # two calls: 500 pairs and 200
            bulk = await client.bulk_status(mid)
            tagged = await client.status_by_tag("tag-150")
            requests = dict(client.stats.by_endpoint)
        await control_requests(base_url)  # after ours: suppression did not outlive our calls
    port = httpx.URL(base_url).port

    spans = otel.finished()
    assert_instrumentations_were_live(spans)
    calls, attempts = spans_of(otel)
    assert Counter(attr(s, telemetry.ENDPOINT) for s in calls) == requests
    assert requests["multi-status"] == 2
    assert requests["bulk-status-by-tag"] >= 2, "the tag should span several pages"
    assert len(attempts) == len(calls), "no retries here: one attempt per call"

    by_id = {s.context.span_id: s for s in calls}
    for span in attempts:
        call = by_id[span.parent.span_id]  # every attempt is a child of its call's span
        endpoint = attr(call, telemetry.ENDPOINT)
        method = "POST" if endpoint == "multi-status" else "GET"
        assert span.name == method
        assert span.context.trace_id == call.context.trace_id
        assert attr(span, "http.request.method") == method
        assert attr(span, "server.address") == "127.0.0.1"
        assert attr(span, "server.port") == port
        assert attr(span, "http.response.status_code") == 200
        assert attr(span, "network.protocol.version") == "1.1"
        assert attr(span, "http.request.resend_count") is None
        assert attr(span, "error.type") is None
        url = attr(span, "url.full")
        assert url.startswith(f"{base_url}/{endpoint}")
        if method == "GET":
            assert "apiKey=***&" in url
        else:
            assert "?" not in url  # the key travels in the body, never recorded
        if endpoint == "message-status":
            assert f"phoneNumber=***{phone[-2:]}" in url
        assert span.status.status_code is StatusCode.UNSET

    answered_items = [r for r in many if r.ok or r.error is None]
    expected_pairs = {
        "message-status": 1,
        "multi-status": len(answered_items),
        "bulk-status": len(bulk.recipients),
        "bulk-status-by-tag": len(tagged),
    }
    answered: Counter[str] = Counter()
    for call in calls:
        endpoint = attr(call, telemetry.ENDPOINT)
        assert call.name == f"smspartner {endpoint}"
        assert call.parent is None
        assert attr(call, "smspartner.response_format") == "json"
        assert call.status.status_code is StatusCode.UNSET
        if endpoint != "multi-status":
            assert attr(call, "smspartner.pairs.asked") == (endpoint == "message-status")
        answered[endpoint] += attr(call, "smspartner.pairs.answered")
    chunks = [attr(c, "smspartner.pairs.asked") for c in calls if c.name.endswith("multi-status")]
    assert sorted(chunks) == [200, 500]
    assert answered == expected_pairs

    found = otel.metrics()
    duration = found[(OURS, "http.client.request.duration")]
    assert duration.unit == "s"
    points = duration.data.data_points
    assert sum(p.count for p in points) == len(attempts)
    for point in points:
        assert set(point.attributes) == {
            "http.request.method",
            "server.address",
            "server.port",
            "http.response.status_code",
            "smspartner.endpoint",
        }
    by_status: Counter[str] = Counter()
    for point in found[(OURS, "smspartner.pairs.answered")].data.data_points:
        assert set(point.attributes) == {"smspartner.endpoint", "smspartner.status"}
        by_status[point.attributes["smspartner.status"]] += point.value
    expected_statuses: Counter[str] = Counter()
    expected_statuses[one.status.name.lower()] += 1
    for r in answered_items:
        expected_statuses[r.status.name.lower() if r.ok else "api_error"] += 1
    for r in [*bulk.recipients, *tagged]:
        expected_statuses[r.status.name.lower()] += 1
    assert by_status == expected_statuses
    assert "api_error" in by_status, "the sample has numbers the API does not know"
    assert (OURS, "smspartner.retries") not in found
    assert_nothing_exported_holds_a_secret(otel, {p for p, _ in sample})


async def test_xml_calls_say_so(otel: Otel, sandbox: Sandbox) -> None:
    async with sandbox_client(sandbox, api_key=KEY, response_format="xml") as client:
        await client.bulk_status(next(iter(sandbox.data.sample_pairs(1)))[1])
    (call,), (attempt,) = spans_of(otel)
    assert attr(call, "smspartner.response_format") == "xml"
    assert attr(attempt, "url.full").endswith("&_format=xml")
    assert "apiKey=***" in attr(attempt, "url.full")


async def test_retries_and_429_pauses(otel: Otel, instrumented: Otel, sandbox: Sandbox) -> None:
    phone, mid = next(p for p in sandbox.data.sample_pairs(50) if sandbox.data.status_of(*p))
    sandbox.faults.script(["429", "500"])
    async with (
        serve(sandbox) as base_url,
        SMSPartnerClient(KEY, base_url=base_url, retry=RetryPolicy.testing()) as client,
    ):
        await client.message_status(phone, mid)
        await control_requests(base_url)

    assert_instrumentations_were_live(otel.finished())
    (call,), attempts = spans_of(otel)
    attempts.sort(key=lambda s: s.start_time or 0)
    assert [attr(s, "http.request.resend_count") for s in attempts] == [None, 1, 2]
    assert [attr(s, "http.response.status_code") for s in attempts] == [429, 500, 200]
    assert [attr(s, "error.type") for s in attempts] == ["429", "500", None]
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    retries = [e for e in call.events if e.name == "smspartner.retry"]
    assert [dict(e.attributes or {}) for e in retries] == [
        {
            "smspartner.attempt": 0,
            "error.type": "RateLimitError",
            "smspartner.wait": 0.0,
            "smspartner.rate_limited": True,
        },
        {
            "smspartner.attempt": 1,
            "error.type": "ServerError",
            "smspartner.wait": 0.0,
            "smspartner.rate_limited": False,
        },
    ]
    assert call.status.status_code is StatusCode.UNSET  # the call succeeded in the end

    found = otel.metrics()
    retried = {
        p.attributes["error.type"]: p.value
        for p in found[(OURS, "smspartner.retries")].data.data_points
    }
    assert retried == {"RateLimitError": 1, "ServerError": 1}
    (pause,) = found[(OURS, "smspartner.rate_limit.pauses")].data.data_points
    assert pause.value == 1
    assert dict(pause.attributes) == {"smspartner.endpoint": "message-status"}
    codes = Counter(
        p.attributes.get("error.type")
        for p in found[(OURS, "http.client.request.duration")].data.data_points
        for _ in range(p.count)
    )
    assert codes == {"429": 1, "500": 1, None: 1}
    assert_nothing_exported_holds_a_secret(otel, {phone})


async def test_failed_calls(otel: Otel, sandbox: Sandbox) -> None:
    unknown = next(p for p in sandbox.data.sample_pairs(400) if not sandbox.data.status_of(*p))
    async with sandbox_client(sandbox, api_key=KEY) as client:
        with pytest.raises(NotFoundError):
            await client.message_status(*unknown)
    refused = SMSPartnerClient(KEY, base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    async with refused:
        with pytest.raises(APIConnectionError):
            await refused.bulk_status(1)

    calls, attempts = spans_of(otel)
    not_found, no_answer = sorted(calls, key=lambda s: s.start_time or 0)
    assert attr(not_found, "error.type") == "NotFoundError"
    assert not_found.status.status_code is StatusCode.ERROR
    assert not_found.status.description == "NotFoundError (code 4)"
    assert attr(not_found, "smspartner.pairs.answered") is None
    assert attr(no_answer, "error.type") == "APIConnectionError"
    assert no_answer.status.description == "APIConnectionError"
    (refused_attempt,) = [s for s in attempts if s.parent.span_id == no_answer.context.span_id]
    assert attr(refused_attempt, "error.type") == "ConnectError"
    assert attr(refused_attempt, "http.response.status_code") is None
    assert refused_attempt.status.status_code is StatusCode.ERROR
    assert_nothing_exported_holds_a_secret(otel, {unknown[0]})


# -- the key, whatever is enabled -------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "fmt"), [("httpx", "json"), ("aiohttp", "xml"), ("injected", "json")]
)
async def test_no_exported_item_holds_the_key(
    otel: Otel, instrumented: Otel, transport: str, fmt: str
) -> None:
    """Every endpoint and every kind of failure (tests.test_security's scenario), traced."""
    got = await run_everything(transport, fmt)
    calls, attempts = spans_of(otel)
    assert len(calls) > 50 and len(attempts) >= len(calls) - 5  # a few calls never send
    assert {attr(s, telemetry.ENDPOINT) for s in calls} == {
        "message-status",
        "multi-status",
        "bulk-status",
        "bulk-status-by-tag",
    }
    assert any(attr(s, "http.request.resend_count") for s in attempts)
    assert any(s.events for s in calls)
    # Only ours: no span of the generic instrumentations for any request of the library.
    assert all(s.instrumentation_scope.name == OURS for s in otel.finished())
    assert_nothing_exported_holds_a_secret(otel, got.phones)


@pytest.mark.parametrize("pool", ["httpx", "aiohttp"])
async def test_a_client_instrumented_one_by_one_records_nothing_of_ours(
    otel: Otel, instrumented: Otel, sandbox: Sandbox, pool: str
) -> None:
    """`HTTPXClientInstrumentor.instrument_client` on an injected client, on either transport."""
    from smspartner_async._transports.aiohttp import AiohttpTransport

    phone, mid = next(p for p in sandbox.data.sample_pairs(50) if sandbox.data.status_of(*p))
    HTTPXClientInstrumentor().uninstrument()  # only the client itself, then
    transport = AiohttpTransport() if pool == "aiohttp" else None
    async with serve(sandbox) as base_url, httpx.AsyncClient(transport=transport) as http:
        HTTPXClientInstrumentor.instrument_client(http, tracer_provider=otel.tracer_provider)
        async with SMSPartnerClient(KEY, base_url=base_url, http_client=http) as client:
            await client.message_status(phone, mid)
            await client.multi_status([(phone, mid)])
        await http.get(f"{base_url}/bulk-status?apiKey={CONTROL_KEY}&messageId=1")

    theirs = [s for s in otel.finished() if s.instrumentation_scope.name != OURS]
    expected = {"opentelemetry.instrumentation.httpx"}
    if pool == "aiohttp":
        expected.add("opentelemetry.instrumentation.aiohttp_client")
    assert {s.instrumentation_scope.name for s in theirs} == expected  # the control, live
    assert all(CONTROL_KEY in json.dumps(dict(s.attributes or {})) for s in theirs)
    calls, attempts = spans_of(otel)
    assert len(calls) == len(attempts) == 2
    assert_nothing_exported_holds_a_secret(otel, {phone})


@pytest.mark.usefixtures("unset")
@pytest.mark.parametrize("transport", ["httpx", "aiohttp", "injected"])
async def test_generic_instrumentations_see_nothing_when_our_tracing_is_off(
    instrumented: Otel, transport: str
) -> None:
    """A service that enables httpx/aiohttp tracing and sets no global provider of ours."""
    assert trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider"
    got = await run_everything(transport, "json")
    assert got.events, "the scenario should have sent requests"
    assert not [s for s in instrumented.finished() if s.instrumentation_scope.name == OURS]
    async with serve(Sandbox(seed=1)) as base_url:
        await control_requests(base_url)
    assert_instrumentations_were_live(instrumented.finished())
    assert_nothing_exported_holds_a_secret(instrumented, got.phones)


@pytest.mark.usefixtures("unset")
async def test_both_suppressions_hold_inside_requests_only(sandbox: Sandbox) -> None:
    """Inside each request, both flags are off: aiohttp-client's instrumentation checked only
    the general one before 0.60b0 (its spans held the key under HTTP suppression alone)."""
    from opentelemetry.instrumentation.utils import (
        is_http_instrumentation_enabled,
        is_instrumentation_enabled,
    )

    seen: list[tuple[bool, bool]] = []

    async def hook(request: httpx.Request) -> None:  # runs inside the library's request
        seen.append((is_instrumentation_enabled(), is_http_instrumentation_enabled()))

    transport = httpx.ASGITransport(app=sandbox.app)
    async with (
        httpx.AsyncClient(transport=transport, event_hooks={"request": [hook]}) as http,
        SMSPartnerClient(KEY, base_url="http://sandbox.invalid/v1", http_client=http) as client,
    ):
        assert type(telemetry.current()).__name__ == "_Suppressing"
        await client.bulk_status(1)
        await http.get("http://sandbox.invalid/")  # the caller's own request, after ours
    assert seen == [(False, False), (True, True)]
    assert is_instrumentation_enabled() and is_http_instrumentation_enabled()


@pytest.mark.usefixtures("unset")
def test_the_check_answers_by_what_is_loaded_and_set(
    providers: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "opentelemetry.instrumentation.utils", raising=False)
    assert telemetry.current() is telemetry.NO_TELEMETRY  # nothing set, nothing to silence
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    monkeypatch.delitem(sys.modules, "opentelemetry.metrics._internal")
    assert telemetry.current() is telemetry.NO_TELEMETRY  # the API not even imported
    monkeypatch.undo()
    import opentelemetry.instrumentation.utils  # noqa: F401

    assert type(telemetry.current()).__name__ == "_Suppressing"
    assert telemetry.current() is telemetry.current(), "built once, not per call"
    trace.set_tracer_provider(trace.NoOpTracerProvider())
    assert type(telemetry.current()).__name__ == "_Suppressing"  # the API's no-op is no provider
    metrics.set_meter_provider(providers.meter_provider)
    assert type(telemetry.current()).__name__ == "_OtelTelemetry"  # metrics alone turn it on


def test_without_opentelemetry_installed() -> None:
    """The package absent: calls work, and nothing tries to import it."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # `import opentelemetry...` raises ImportError
        from smspartner_async import _telemetry
        from smspartner_async.testing import sandbox_client

        async def main():
            async with sandbox_client() as client:
                await client.bulk_status(1)
                print(_telemetry.current() is _telemetry.NO_TELEMETRY)

        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry.")))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["True", "[]"]


def test_attribute_and_metric_names_are_the_stable_conventions() -> None:
    semconv = pytest.importorskip("opentelemetry.semconv.attributes.http_attributes")
    from opentelemetry.semconv.attributes import (
        error_attributes,
        network_attributes,
        server_attributes,
        url_attributes,
    )
    from opentelemetry.semconv.metrics import http_metrics

    assert telemetry.HTTP_REQUEST_METHOD == semconv.HTTP_REQUEST_METHOD
    assert telemetry.HTTP_RESPONSE_STATUS_CODE == semconv.HTTP_RESPONSE_STATUS_CODE
    assert telemetry.HTTP_REQUEST_RESEND_COUNT == semconv.HTTP_REQUEST_RESEND_COUNT
    assert telemetry.SERVER_ADDRESS == server_attributes.SERVER_ADDRESS
    assert telemetry.SERVER_PORT == server_attributes.SERVER_PORT
    assert telemetry.URL_FULL == url_attributes.URL_FULL
    assert telemetry.ERROR_TYPE == error_attributes.ERROR_TYPE
    assert telemetry.NETWORK_PROTOCOL_VERSION == network_attributes.NETWORK_PROTOCOL_VERSION
    assert telemetry.HTTP_CLIENT_REQUEST_DURATION == http_metrics.HTTP_CLIENT_REQUEST_DURATION


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"https://api.smspartner.fr/v1/message-status?apiKey={KEY}&phoneNumber=%2B33612345678"
            "&messageId=1",
            "https://api.smspartner.fr/v1/message-status?apiKey=***&phoneNumber=***78&messageId=1",
        ),
        (
            f"https://api.smspartner.fr/v1/bulk-status?messageId=1&apiKey={KEY}&_format=xml",
            "https://api.smspartner.fr/v1/bulk-status?messageId=1&apiKey=***&_format=xml",
        ),
        (
            "https://user:pass@api.smspartner.fr/v1/multi-status",
            "https://REDACTED:REDACTED@api.smspartner.fr/v1/multi-status",
        ),
    ],
    ids=["message-status", "bulk-status", "credentials"],
)
def test_url_full_is_redacted(url: str, expected: str) -> None:
    assert telemetry.safe_url(httpx.URL(url)) == expected


def test_url_full_redacts_a_key_that_needs_escaping() -> None:
    key = "k+ey/with=odd&chars"
    url = httpx.URL("https://api.smspartner.fr/v1/bulk-status", params={"apiKey": key})
    assert "k%2Bey" in str(url)
    assert telemetry.safe_url(url) == "https://api.smspartner.fr/v1/bulk-status?apiKey=***"


async def test_a_fastapi_service_traces_through(otel: Otel, sandbox: Sandbox) -> None:
    """The docs' recipe: FastAPI's own telemetry, our spans under its server span."""
    fastapi = pytest.importorskip("fastapi")
    phone, mid = next(p for p in sandbox.data.sample_pairs(50) if sandbox.data.status_of(*p))

    async with sandbox_client(sandbox, api_key=KEY) as client:
        app = fastapi.FastAPI()

        @app.get("/status")
        async def status() -> dict[str, str]:
            return {"status": str((await client.message_status(phone, mid)).status)}

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            assert (await http.get("/status")).status_code == 200

    (call,), (attempt,) = spans_of(otel)
    server = [s for s in otel.finished() if s.kind is SpanKind.SERVER]
    if not server:
        pytest.skip("this FastAPI has no native telemetry")
    assert call.parent is not None
    assert call.context.trace_id == server[0].context.trace_id
    assert attempt.parent.span_id == call.context.span_id
    assert_nothing_exported_holds_a_secret(otel, {phone})


# -- log records ------------------------------------------------------------------------------


FIELDS = {
    "smspartner_endpoint",
    "smspartner_attempt",
    "smspartner_http_status",
    "smspartner_pairs",
}


async def test_log_records_carry_structured_fields(
    caplog: pytest.LogCaptureFixture, sandbox: Sandbox
) -> None:
    caplog.set_level(logging.DEBUG, logger="smspartner_async")
    pairs = [p for p in sandbox.data.sample_pairs(20)]
    sandbox.faults.script(["503"])
    async with sandbox_client(sandbox, api_key=KEY, on_request=_broken_hook) as client:
        await client.multi_status(pairs)

    records = [r for r in caplog.records if r.name == "smspartner_async"]
    retry = next(r for r in records if "retry" in r.getMessage())
    assert retry.levelno == logging.INFO
    assert {
        name: getattr(retry, name) for name in (*FIELDS, "smspartner_error", "smspartner_wait")
    } == {
        "smspartner_endpoint": "multi-status",
        "smspartner_attempt": 0,
        "smspartner_http_status": 503,
        "smspartner_pairs": 20,
        "smspartner_error": "ServerError",
        "smspartner_wait": 0.0,
    }
    attempts = [r for r in records if r.levelno == logging.DEBUG and "attempt" in r.getMessage()]
    assert [(r.smspartner_attempt, r.smspartner_http_status) for r in attempts] == [
        (0, 503),
        (1, 200),
    ]
    assert all(isinstance(r.smspartner_elapsed, float) for r in attempts)
    hook = [r for r in records if "on_request hook raised" in r.getMessage()]
    assert hook and all(set(vars(r)) >= FIELDS for r in hook)

    for record in records:
        fields = {k: v for k, v in vars(record).items() if k.startswith("smspartner_")}
        assert set(fields) >= FIELDS, record.getMessage()
        text = json.dumps(fields)  # a JSON formatter can take them as they are
        for secret in SECRETS:
            assert secret not in text
            assert secret not in repr(vars(record))
        for phone, _ in pairs:
            assert national_digits(phone) not in text


def _broken_hook(event: object) -> None:
    raise RuntimeError("a metrics hook that fails")
