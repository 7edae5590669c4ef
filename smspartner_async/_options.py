"""A client's options, declared once: name, type, default, validator and doc.

`ClientOptions` is the declaration. Each field is one option; its metadata
holds the option's doc and whether `with_options` may change it (`per_call`).
Everything else derives from it:

- `SMSPartnerClient.__init__` and `SMSPartnerSyncClient.__init__` take every
  option as a keyword; `with_options` of both takes the per-call ones. Their
  signatures are written out (so that type checkers and IDEs see them) and
  `tests/test_options.py` checks them against this declaration: names, kinds,
  annotations and defaults. At run time `options_from(locals())` reads every
  declared option from the signature's arguments, so an option missing from a
  signature fails at once, not silently with its default.
- Their `Args:` docs say what the fields' docs say: written out in the
  docstrings (static tools such as mkdocstrings read them), rendered by
  `document` and checked against the declaration by `tests/test_options.py`.
- Every value is validated here, wherever it comes from: `InvalidInputError`
  (a `ValueError`) naming the option.
"""

from __future__ import annotations

import inspect
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs
import httpx

from ._chunking import MAX_BATCH
from ._errors import AuthenticationError, InvalidInputError
from ._events import RequestEvent
from ._flow import FlowBackend
from ._retry import RetryPolicy
from ._transports import TRANSPORTS, TransportName
from ._validate import DEFAULT_REGION, REGIONS
from ._wire.endpoints import ResponseFormat

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "UNSET",
    "ClientOptions",
    "api_key_from",
    "changes_from",
    "document",
    "options_from",
    "per_call_options",
]

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
ENV_API_KEY = "SMSPARTNER_API_KEY"
ENV_BASE_URL = "SMSPARTNER_BASE_URL"
#: Room for a bulk-status answer listing several hundred thousand recipients.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: `with_options`' default: the option keeps the value it has.
UNSET: Final[Any] = object()
_SHARED_SCHEMES = ("redis://", "rediss://", "unix://")


def _doc(text: str, *, per_call: bool) -> dict[str, object]:
    return {"doc": " ".join(text.split()), "per_call": per_call}


# -- validators: (instance, attribute, value) as attrs calls them ------------------


def _check(ok: bool, attribute: attrs.Attribute[Any], expected: str, value: object) -> None:
    if not ok:
        raise InvalidInputError(f"{attribute.name} must be {expected}", value=value)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _url(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = isinstance(value, str) and value.startswith(("http://", "https://"))
    _check(ok, attribute, "an http:// or https:// URL", value)


def _one_of(choices: Iterable[str]) -> Callable[[object, attrs.Attribute[Any], object], None]:
    allowed = tuple(choices)

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _check(value in allowed, attribute, f"one of {', '.join(map(repr, allowed))}", value)

    return check


def _at_least(least: int, most: int | None = None) -> Callable[..., None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        ok = _whole(value, least) and (most is None or value <= most)  # type: ignore[operator]
        span = f"from {least} to {most}" if most is not None else f"of at least {least}"
        _check(ok, attribute, f"a whole number {span}", value)

    return check


def _optional_whole(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check(value is None or _whole(value, 0), attribute, "a whole number of at least 0", value)


def _seconds_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = value is None or (_number(value) and value > 0)  # type: ignore[operator]
    _check(ok, attribute, "a positive number of seconds, or None", value)


def _timeout(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = value is None or isinstance(value, httpx.Timeout) or (_number(value) and value > 0)  # type: ignore[operator]
    _check(ok, attribute, "a positive number of seconds, an httpx.Timeout, or None", value)


def _region(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = isinstance(value, str) and value in REGIONS
    _check(ok, attribute, "a region code phonenumbers knows, upper case, as 'FR' or 'JP'", value)


def _instance(cls: type, expected: str) -> Callable[..., None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _check(isinstance(value, cls), attribute, expected, value)

    return check


def _callable_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check(value is None or callable(value), attribute, "a callable, or None", value)


def _rate(options: ClientOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = value is None or (_number(value) and value > 0)  # type: ignore[operator]
    _check(ok, attribute, "a positive number, or None", value)
    if value is not None and isinstance(options.shared_limits, FlowBackend):
        # The backend object carries its own rate; one beside it would be ignored.
        raise InvalidInputError(
            "max_requests_per_second goes to the FlowBackend given as shared_limits, not beside it",
            value=value,
        )


def _shared_limits(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = value is None or isinstance(value, FlowBackend)
    ok = ok or (isinstance(value, str) and value.startswith(_SHARED_SCHEMES))
    _check(ok, attribute, "a redis:// URL or a FlowBackend", value)


# -- converters: what a signature accepts -> what is kept --------------------------


def _base_url(value: str | None) -> str:
    """None: `$SMSPARTNER_BASE_URL`, then the API's own; no trailing slash; a bare host
    gets the API's `/v1`.

    The endpoints live under /v1; a host alone (`http://127.0.0.1:8000`, the
    sandbox's address as one types it) can mean nothing else, and used to end in
    a 404. Any other path is kept as given (a gateway's own). (The #24 branch's
    hint, in the converter that replaced `_strip_slash`.)
    """
    if value is None:
        value = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not isinstance(value, str):  # callers are not all type-checked
        return value  # type: ignore[unreachable]  # the validator refuses it, by name
    url = value.rstrip("/")
    _, sep, rest = url.partition("://")
    if sep and rest and "/" not in rest:
        url += "/v1"
    return url


def _retry(value: RetryPolicy | None) -> RetryPolicy:
    return RetryPolicy() if value is None else value


@attrs.frozen(kw_only=True)
class ClientOptions:
    """The declaration of every client option, in the order the signatures list them."""

    base_url: str = attrs.field(
        default=None,
        converter=_base_url,
        validator=_url,
        metadata=_doc(
            """The API's root; falls back to `$SMSPARTNER_BASE_URL`, then
            `https://api.smspartner.fr/v1`. Point it at the sandbox to test.""",
            per_call=False,
        ),
    )
    transport: TransportName = attrs.field(
        default="httpx",
        validator=_one_of(TRANSPORTS),
        metadata=_doc(
            """The pool the client builds when it is not given one: `"httpx"`
            (httpx's own, which respx and pytest-httpx intercept) or `"aiohttp"`
            (extra `aiohttp`; faster for bulk jobs and high concurrency).""",
            per_call=False,
        ),
    )
    timeout: float | httpx.Timeout | None = attrs.field(
        default=None,
        validator=_timeout,
        metadata=_doc(
            """Seconds (or an `httpx.Timeout`) for each network operation; the
            client's own pool defaults to 30 s, a pool you give keeps its own.""",
            per_call=True,
        ),
    )
    response_format: ResponseFormat = attrs.field(
        default="json",
        validator=_one_of(("json", "xml")),
        metadata=_doc(
            """`"json"` or `"xml"` (`_format=xml`); the same models either way.""",
            per_call=True,
        ),
    )
    max_concurrency: int = attrs.field(
        default=8,
        validator=_at_least(1),
        metadata=_doc(
            """Requests in flight for the whole client, every thread of a sync
            client included (the pool is sized to match).""",
            per_call=False,
        ),
    )
    batch_size: int = attrs.field(
        default=MAX_BATCH,
        validator=_at_least(1, MAX_BATCH),
        metadata=_doc(
            """Pairs per multi-status call, at most 500 (the API's limit).""",
            per_call=True,
        ),
    )
    max_retries: int | None = attrs.field(
        default=None,
        validator=_optional_whole,
        metadata=_doc(
            """Attempts after the first one, overriding `retry`'s own
            `max_retries` (0 sends each request once); None keeps `retry`'s.""",
            per_call=True,
        ),
    )
    retry: RetryPolicy = attrs.field(
        default=None,
        converter=_retry,
        validator=_instance(RetryPolicy, "a RetryPolicy, or None"),
        metadata=_doc(
            """When and how long to wait before trying again (`RetryPolicy`);
            None for the default policy.""",
            per_call=True,
        ),
    )
    deadline: float | None = attrs.field(
        default=120.0,
        validator=_seconds_or_none,
        metadata=_doc(
            """Seconds for one API call from its first send, every retry
            included (`APITimeoutError`); None for no deadline.""",
            per_call=True,
        ),
    )
    max_requests_per_second: float | None = attrs.field(
        default=None,
        validator=_rate,
        metadata=_doc(
            """A rate limit for the whole client (for every process sharing
            `shared_limits`); None for none.""",
            per_call=False,
        ),
    )
    shared_limits: str | FlowBackend | None = attrs.field(
        default=None,
        validator=_shared_limits,
        metadata=_doc(
            """Share the rate limit and the 429 pause with every process using
            the same key: a `redis://` URL (extra `redis`), or a `FlowBackend`
            you built (it has its own rate: `max_requests_per_second` beside it
            is refused). None keeps them in this process.""",
            per_call=False,
        ),
    )
    default_region: str = attrs.field(
        default=DEFAULT_REGION,
        validator=_region,
        metadata=_doc(
            """The region national phone numbers are read in (`"FR"`).""",
            per_call=True,
        ),
    )
    fail_fast: bool = attrs.field(
        default=False,
        validator=_instance(bool, "True or False"),
        metadata=_doc(
            """Raise the first failed call of a batch instead of returning its
            pairs as failed results.""",
            per_call=True,
        ),
    )
    max_pages: int = attrs.field(
        default=10_000,
        validator=_at_least(1),
        metadata=_doc("""The most tag pages `iter_tag_pages` asks for.""", per_call=True),
    )
    max_response_bytes: int = attrs.field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        validator=_at_least(1),
        metadata=_doc(
            """The largest answer accepted, raw or inflated
            (`ResponseTooLargeError` beyond); message-status and multi-status
            answers have lower bounds of their own.""",
            per_call=True,
        ),
    )
    on_request: Callable[[RequestEvent], None] | None = attrs.field(
        default=None,
        validator=_callable_or_none,
        metadata=_doc(
            """Called with a `RequestEvent` after each HTTP attempt (metrics).
            It runs on the client's event loop (a sync client's background
            thread); one that raises is logged and ignored.""",
            per_call=False,
        ),
    )

    @property
    def policy(self) -> RetryPolicy:
        """`retry`, with `max_retries` when one is given."""
        if self.max_retries is None:
            return self.retry
        return attrs.evolve(self.retry, max_retries=self.max_retries)


def per_call_options() -> tuple[attrs.Attribute[Any], ...]:
    """The options `with_options` takes, in declaration order."""
    return tuple(field for field in attrs.fields(ClientOptions) if field.metadata["per_call"])


def options_from(arguments: Mapping[str, Any]) -> ClientOptions:
    """The options among a constructor's arguments (its `locals()`), validated.

    A declared option the signature lacks is a `KeyError` here, on the first
    construction: a forgotten parameter cannot fall back to its default unseen.
    """
    return ClientOptions(
        **{field.name: arguments[field.name] for field in attrs.fields(ClientOptions)}
    )


def changes_from(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The per-call options `with_options` was given (its `locals()`), the others left out."""
    changes = {field.name: arguments[field.name] for field in per_call_options()}
    return {name: value for name, value in changes.items() if value is not UNSET}


def api_key_from(api_key: object) -> str:
    """The key given, else `$SMSPARTNER_API_KEY`, stripped; none at all is code 1."""
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if key is not None and not isinstance(key, str):
        raise InvalidInputError("api_key must be a string", value=type(key).__name__)
    if not key or not key.strip():
        raise AuthenticationError(
            1, f"no API key: pass api_key= or set the {ENV_API_KEY} environment variable"
        )
    return key.strip()


def document(
    doc: str | None,
    *,
    own: Mapping[str, str] | None = None,
    per_call: bool = False,
    after: str = "",
) -> str:
    """`doc` with an `Args:` section: `own` (a signature's own parameters) then the options.

    What the clients' docstrings must say (`tests/test_options.py`): paste its
    output there when an option or its doc changes; `after` is what follows Args.
    """
    fields = per_call_options() if per_call else attrs.fields(ClientOptions)
    entries = {**(own or {}), **{field.name: field.metadata["doc"] for field in fields}}
    lines = ["Args:"]
    for name, text in entries.items():
        lines += textwrap.wrap(
            f"{name}: {' '.join(text.split())}",
            width=80,
            initial_indent="    ",
            subsequent_indent="        ",
        )
    parts = [inspect.cleandoc(doc or ""), "\n".join(lines), inspect.cleandoc(after)]
    return "\n\n".join(part for part in parts if part) + "\n"
