"""OpenTelemetry spans and metrics for API calls, and the key kept out of every other tracer.

The call layer talks to one small interface and never to OpenTelemetry:

    with current().call(endpoint, pairs, response_format) as trace:  # one API call
        with trace.request(request, attempt) as exchange:              # one HTTP attempt
            exchange.response(response)
        trace.retry(attempt, error, wait, paused)
        trace.answered(result)

`current()` is the one check each API call makes (never one per pair). It
answers one of three implementations:

- `Telemetry` itself, which does nothing: OpenTelemetry's API is not imported
  by anyone, or no provider is set and no HTTP instrumentation is loaded;
- `_Suppressing`: no provider is set, but OpenTelemetry's instrumentation
  utilities are loaded, so a generic HTTP instrumentation (httpx's,
  aiohttp-client's) may be tracing with a provider of its own. It would record
  `url.full`/`http.url` with `apiKey=` in clear; every HTTP attempt runs under
  the utilities' `suppress_http_instrumentation()` and `suppress_instrumentation()`
  so that it records nothing of ours;
- `_OtelTelemetry`: a tracer or meter provider is set. One INTERNAL span per API
  call (`smspartner <endpoint>`), one CLIENT span per HTTP attempt after the
  stable HTTP semantic conventions, `http.client.request.duration` and the
  library's counters; the generic instrumentations suppressed as above.

"Set" means set globally (`trace.set_tracer_provider`, `metrics.set_meter_provider`,
or the `OTEL_PYTHON_*_PROVIDER` variables): a provider of the API's own (its proxy
before anything is set, its no-op ones) counts as none. The check reads the API's
globals without importing anything: nobody can have set a provider, nor loaded an
instrumentation, without importing OpenTelemetry first, so a process that never
does pays three dictionary look-ups per call.

Nothing exported holds the key or a full phone number: `url.full` is the
request URL with `apiKey` replaced by `***` and `phoneNumber` masked
(`_redact`), bodies are never recorded, exception messages neither (a span's
status says the error's class and API code), and attributes are endpoint
names, counts, codes and class names.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import httpx

from ._models import BulkStatus, DeliveryStatus, MessageStatus, MultiStatusResult, TagPage
from ._redact import mask_phone_params, redact
from ._version import __version__

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "ATTRIBUTES",
    "METRICS",
    "CallTrace",
    "RequestTrace",
    "Telemetry",
    "current",
    "safe_url",
]

#: The instrumentation scope of every span and instrument.
SCOPE = "smspartner_async"

# Stable HTTP semantic conventions (v1.23+), spelled out: the semconv package pins its
# version to the SDK's, which a library should not force on its users.
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
URL_FULL = "url.full"
ERROR_TYPE = "error.type"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"
HTTP_CLIENT_REQUEST_DURATION = "http.client.request.duration"
# The library's own, under its own namespace.
ENDPOINT = "smspartner.endpoint"
PAIRS_ASKED = "smspartner.pairs.asked"
PAIRS_ANSWERED = "smspartner.pairs.answered"
RESPONSE_FORMAT = "smspartner.response_format"
STATUS = "smspartner.status"
ATTEMPT = "smspartner.attempt"
WAIT = "smspartner.wait"
RATE_LIMITED = "smspartner.rate_limited"
RETRY_EVENT = "smspartner.retry"
RETRIES = "smspartner.retries"
PAUSES = "smspartner.rate_limit.pauses"

#: Every attribute name this module sets, for the docs and the tests.
ATTRIBUTES = (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_REQUEST_RESEND_COUNT,
    SERVER_ADDRESS,
    SERVER_PORT,
    URL_FULL,
    ERROR_TYPE,
    NETWORK_PROTOCOL_VERSION,
    ENDPOINT,
    PAIRS_ASKED,
    PAIRS_ANSWERED,
    RESPONSE_FORMAT,
    STATUS,
    ATTEMPT,
    WAIT,
    RATE_LIMITED,
)
#: Every instrument, by name: (kind, unit).
METRICS = {
    HTTP_CLIENT_REQUEST_DURATION: ("histogram", "s"),
    PAIRS_ANSWERED: ("counter", "{pair}"),
    RETRIES: ("counter", "{retry}"),
    PAUSES: ("counter", "{pause}"),
}
# The semantic conventions' advice for http.client.request.duration.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: `smspartner.status` of an item the API answered with an error code (4: number not found).
API_ERROR = "api_error"
_LABELS: dict[object, str] = {
    **{status: status.name.lower() for status in DeliveryStatus},
    API_ERROR: API_ERROR,
}


def safe_url(url: httpx.URL) -> str:
    """`url.full` for `url`: `apiKey=***`, `phoneNumber=***78`, credentials `REDACTED`."""
    if url.userinfo:  # the semantic conventions' own rule for user:password
        url = url.copy_with(username="REDACTED", password="REDACTED")  # noqa: S106
    return mask_phone_params(redact(str(url)))


# -- the interface, and its no-op implementation ----------------------------------------


class _Block:
    """A context manager that records nothing: what both traces do when tracing is off."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class RequestTrace(_Block):
    """One HTTP attempt. This base class records nothing."""

    __slots__ = ()

    def response(self, response: httpx.Response) -> None:
        """The response's head has arrived (its body is read inside the same block)."""


class CallTrace(_Block):
    """One API call, all its attempts. This base class records nothing."""

    __slots__ = ()

    def request(self, request: httpx.Request, attempt: int) -> RequestTrace:
        """A context manager around sending `request` and reading its body (attempt 0, 1...)."""
        return _NO_REQUEST

    def retry(self, attempt: int, error: BaseException, wait: float, paused: bool) -> None:
        """Attempt `attempt` failed with `error`; the next one goes out in `wait` seconds
        (`paused`: a 429 paused every request of the client)."""

    def answered(self, result: object) -> None:
        """The call's parsed result (pairs answered are counted from it)."""


class Telemetry:
    """Makes a `CallTrace` per API call. This base class is the no-op: tracing off."""

    __slots__ = ()

    def call(self, endpoint: str, pairs: int, response_format: str) -> CallTrace:
        return _NO_CALL


_NO_REQUEST = RequestTrace()
_NO_CALL = CallTrace()
NO_TELEMETRY = Telemetry()


# -- the one check per call ---------------------------------------------------------------

_TRACE_API = "opentelemetry.trace"
_METRICS_API = "opentelemetry.metrics._internal"
_INSTRUMENTATION = "opentelemetry.instrumentation.utils"
# A provider named by environment variable is loaded by the API's getter on first use.
_TRACER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_METER_FROM_ENV = "OTEL_PYTHON_METER_PROVIDER" in os.environ
_ASK = object()


def _global_provider(module: Any, name: str, getter: str, from_env: bool) -> object | None:
    """The API's global provider, or None when nothing has been set.

    Reads the API's module global (a dictionary look-up): its public getter
    reads the environment on every call while nothing is set, which costs
    more than the rest of this check. The getter answers whenever the global
    is set, named by the environment, or missing (another API version).
    """
    if module is None:  # nobody imported OpenTelemetry's API: nobody set a provider
        return None
    provider: object = module.__dict__.get(name, _ASK)
    if provider is _ASK or (provider is None and from_env):
        provider = getattr(module, getter)()
    return provider


_seen: tuple[object, object, object, Telemetry] = (None, None, None, NO_TELEMETRY)


def current() -> Telemetry:
    """The telemetry for the next API call: the one check each call makes."""
    global _seen
    modules = sys.modules
    tracer_provider = _global_provider(
        modules.get(_TRACE_API), "_TRACER_PROVIDER", "get_tracer_provider", _TRACER_FROM_ENV
    )
    meter_provider = _global_provider(
        modules.get(_METRICS_API), "_METER_PROVIDER", "get_meter_provider", _METER_FROM_ENV
    )
    utils = modules.get(_INSTRUMENTATION)
    seen = _seen
    if seen[0] is tracer_provider and seen[1] is meter_provider and seen[2] is utils:
        return seen[3]
    telemetry = _telemetry_for(tracer_provider, meter_provider, utils)
    _seen = (tracer_provider, meter_provider, utils, telemetry)
    return telemetry


def _telemetry_for(tracer_provider: object, meter_provider: object, utils: Any) -> Telemetry:
    """Built when the providers or the instrumentation utilities change: rarely."""
    suppress = _suppressor(utils)
    tracing = _configured(tracer_provider, ("ProxyTracerProvider", "NoOpTracerProvider"))
    metering = _configured(meter_provider, ("_ProxyMeterProvider", "NoOpMeterProvider"))
    if tracing or metering:
        return _OtelTelemetry(
            cast("TracerProvider", tracer_provider) if tracing else None,
            cast("MeterProvider", meter_provider) if metering else None,
            suppress,
        )
    return NO_TELEMETRY if suppress is None else _Suppressing(suppress)


def _configured(provider: object, placeholders: tuple[str, ...]) -> bool:
    """Whether `provider` is an SDK's (or a vendor's), not one of the API's placeholders."""
    if provider is None:
        return False
    cls = type(provider)
    return not (cls.__module__.startswith("opentelemetry.") and cls.__name__ in placeholders)


# -- suppression ----------------------------------------------------------------------------


def _suppressor(utils: Any) -> Callable[[], AbstractContextManager[None]] | None:
    """What silences the generic instrumentations around one request, from their utilities.

    Both of OpenTelemetry's suppressions: the HTTP one, which the instrumentations
    check today, and the general one, which aiohttp-client's checked alone before
    0.60b0 (and httpx's before 0.43b0). The library's own spans are not affected:
    the SDK's tracer and meters do not read either.
    """
    if utils is None:
        return None
    makers = tuple(
        maker
        for maker in (
            getattr(utils, "suppress_http_instrumentation", None),
            getattr(utils, "suppress_instrumentation", None),
        )
        if maker is not None
    )
    return functools.partial(_Suppression, makers) if makers else None


class _Suppression:
    __slots__ = ("_managers",)

    def __init__(self, makers: tuple[Callable[[], AbstractContextManager[None]], ...]) -> None:
        self._managers = [make() for make in makers]

    def __enter__(self) -> None:
        for manager in self._managers:
            manager.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for manager in reversed(self._managers):
            manager.__exit__(None, None, None)  # they have nothing to do with the error


class _Suppressing(Telemetry):
    """No provider of ours, but a generic HTTP instrumentation may be tracing: silence it."""

    __slots__ = ("_call",)

    def __init__(self, suppress: Callable[[], AbstractContextManager[None]]) -> None:
        self._call = _SuppressingCall(suppress)

    def call(self, endpoint: str, pairs: int, response_format: str) -> CallTrace:
        return self._call


class _SuppressingCall(CallTrace):
    __slots__ = ("_suppress",)

    def __init__(self, suppress: Callable[[], AbstractContextManager[None]]) -> None:
        self._suppress = suppress

    def request(self, request: httpx.Request, attempt: int) -> RequestTrace:
        return _Suppressed(self._suppress())


class _Suppressed(RequestTrace):
    __slots__ = ("_suppressed",)

    def __init__(self, suppressed: AbstractContextManager[None]) -> None:
        self._suppressed = suppressed

    def __enter__(self) -> Self:
        self._suppressed.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._suppressed.__exit__(None, None, None)


# -- OpenTelemetry ----------------------------------------------------------------------------


class _OtelTelemetry(Telemetry):
    """Spans and metrics through the global providers (either may be None: a no-op half)."""

    __slots__ = (
        "attach",
        "client_kind",
        "detach",
        "duration",
        "in_context",
        "internal_kind",
        "pairs",
        "pauses",
        "retries",
        "status",
        "status_error",
        "suppress",
        "tracer",
    )

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        suppress: Callable[[], AbstractContextManager[None]] | None,
    ) -> None:
        # Imported only once a provider is set, so the API is loaded already.
        from opentelemetry import context, metrics, trace

        self.tracer = (
            trace.NoOpTracer()
            if tracer_provider is None
            else tracer_provider.get_tracer(SCOPE, __version__)
        )
        meter = (
            metrics.NoOpMeter(SCOPE)
            if meter_provider is None
            else meter_provider.get_meter(SCOPE, __version__)
        )
        self.suppress = suppress
        self.attach, self.detach = context.attach, context.detach
        self.in_context = trace.set_span_in_context
        self.client_kind, self.internal_kind = trace.SpanKind.CLIENT, trace.SpanKind.INTERNAL
        self.status, self.status_error = trace.Status, trace.StatusCode.ERROR
        try:
            self.duration = meter.create_histogram(
                HTTP_CLIENT_REQUEST_DURATION,
                unit="s",
                description="Duration of HTTP client requests.",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )
        except TypeError:  # a meter older than the API's 1.23 (some vendors' wrappers)
            self.duration = meter.create_histogram(
                HTTP_CLIENT_REQUEST_DURATION,
                unit="s",
                description="Duration of HTTP client requests.",
            )
        self.pairs = meter.create_counter(
            PAIRS_ANSWERED, unit="{pair}", description="Pairs the API answered, by status."
        )
        self.retries = meter.create_counter(
            RETRIES, unit="{retry}", description="HTTP attempts retried, by the error."
        )
        self.pauses = meter.create_counter(
            PAUSES, unit="{pause}", description="Pauses of every request after a 429."
        )

    def call(self, endpoint: str, pairs: int, response_format: str) -> CallTrace:
        return _OtelCall(self, endpoint, pairs, response_format)

    def failed(self, span: Span, error_type: str, description: str) -> None:
        """Mark `span` failed: `error.type` and an ERROR status (never an error's message)."""
        if span.is_recording():
            span.set_attribute(ERROR_TYPE, error_type)
            span.set_status(self.status(self.status_error, description))


class _OtelCall(CallTrace):
    """The INTERNAL span of one API call, current while the call runs."""

    __slots__ = ("_endpoint", "_http", "_otel", "_span", "_token")

    def __init__(
        self, otel: _OtelTelemetry, endpoint: str, pairs: int, response_format: str
    ) -> None:
        self._otel = otel
        self._endpoint = endpoint
        # The attempts' attributes, the span's and the metric's, built by the first attempt.
        self._http: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._token: Token[Context] | None = None
        self._span = otel.tracer.start_span(
            f"smspartner {endpoint}",
            kind=otel.internal_kind,
            attributes={ENDPOINT: endpoint, PAIRS_ASKED: pairs, RESPONSE_FORMAT: response_format},
        )

    def __enter__(self) -> Self:
        if self._span.get_span_context().is_valid:
            # Attempts nest under it, and log records correlate with it.
            self._token = self._otel.attach(self._otel.in_context(self._span))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            self._otel.detach(self._token)
        if exc is not None:
            code = getattr(exc, "code", None)
            error_type = type(exc).__qualname__
            detail = error_type if code is None else f"{error_type} (code {code})"
            self._otel.failed(self._span, error_type, detail)
        self._span.end()

    def request(self, request: httpx.Request, attempt: int) -> RequestTrace:
        http = self._http
        if http is None:  # the same URL for every attempt of the call
            url = request.url
            common = {
                HTTP_REQUEST_METHOD: request.method,
                SERVER_ADDRESS: url.host,
                SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
            }
            http = self._http = (
                {**common, URL_FULL: safe_url(url)},
                {**common, ENDPOINT: self._endpoint},
            )
        return _OtelRequest(self._otel, http[0], http[1], attempt)

    def retry(self, attempt: int, error: BaseException, wait: float, paused: bool) -> None:
        otel, error_type = self._otel, type(error).__qualname__
        otel.retries.add(1, {ENDPOINT: self._endpoint, ERROR_TYPE: error_type})
        if paused:
            otel.pauses.add(1, {ENDPOINT: self._endpoint})
        if self._span.is_recording():
            self._span.add_event(
                RETRY_EVENT,
                {ATTEMPT: attempt, ERROR_TYPE: error_type, WAIT: wait, RATE_LIMITED: paused},
            )

    def answered(self, result: object) -> None:
        counts = count_statuses(result)
        add = self._otel.pairs.add
        for status, n in counts.items():
            add(n, {ENDPOINT: self._endpoint, STATUS: status})
        if self._span.is_recording():
            self._span.set_attribute(PAIRS_ANSWERED, sum(counts.values()))


class _OtelRequest(RequestTrace):
    """The CLIENT span of one HTTP attempt, and its `http.client.request.duration`."""

    __slots__ = ("_attributes", "_metric", "_otel", "_span", "_started", "_status", "_suppressed")

    def __init__(
        self,
        otel: _OtelTelemetry,
        attributes: dict[str, Any],
        metric: dict[str, Any],
        attempt: int,
    ) -> None:
        self._otel = otel
        self._attributes = (
            {**attributes, HTTP_REQUEST_RESEND_COUNT: attempt} if attempt else attributes
        )
        self._metric = metric
        self._status: int | None = None
        self._suppressed = otel.suppress() if otel.suppress is not None else None
        self._span: Span | None = None
        self._started = 0.0

    def __enter__(self) -> Self:
        otel = self._otel
        if self._suppressed is not None:
            self._suppressed.__enter__()
        # Not made current: nothing can record under it (the generic HTTP instrumentations
        # are suppressed); what the request logs correlates with the call's span.
        self._span = otel.tracer.start_span(
            self._attributes[HTTP_REQUEST_METHOD],
            kind=otel.client_kind,
            attributes=self._attributes,
        )
        self._started = time.perf_counter()
        return self

    def response(self, response: httpx.Response) -> None:
        self._status = response.status_code
        span = self._span
        if span is not None and span.is_recording():
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, response.status_code)
            span.set_attribute(
                NETWORK_PROTOCOL_VERSION, response.http_version.removeprefix("HTTP/")
            )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        if self._suppressed is not None:
            self._suppressed.__exit__(None, None, None)
        status, metric = self._status, self._metric
        # The conventions' error.type: the exception's class, else an error status code.
        error_type = None
        if exc is not None:
            error_type = type(exc).__qualname__
        elif status is not None and status >= 400:
            error_type = str(status)
        if status is not None or error_type is not None:
            metric = {**metric}
            if status is not None:
                metric[HTTP_RESPONSE_STATUS_CODE] = status
            if error_type is not None:
                metric[ERROR_TYPE] = error_type
        span = self._span
        if span is not None:
            if error_type is not None:
                self._otel.failed(span, error_type, error_type)
            span.end()
        self._otel.duration.record(elapsed, metric)


def count_statuses(result: object) -> dict[str, int]:
    """Pairs the API answered in `result`, by `smspartner.status`.

    An item the API answered with an error code (4: number not found) counts as
    `api_error`; a pair its answer left out, or a malformed item, is not answered.
    """
    counts: dict[object, int] = {}
    if isinstance(result, list):
        if result and not isinstance(result[0], MultiStatusResult):
            return {}
        for item in result:
            key = item.status if item.ok else API_ERROR if item.error is None else None
            counts[key] = counts.get(key, 0) + 1
    elif isinstance(result, MessageStatus):
        counts[result.status] = 1
    elif isinstance(result, BulkStatus | TagPage):
        for recipient in result.recipients:
            counts[recipient.status] = counts.get(recipient.status, 0) + 1
    return {_LABELS[key]: n for key, n in counts.items() if key is not None}
