"""Options are declared once (`_options.ClientOptions`): every signature that takes them
agrees with the declaration, passes every one of them on, and documents them from it."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest

from smspartner_async import (
    InvalidInputError,
    RetryPolicy,
    SMSPartnerClient,
    SMSPartnerSyncClient,
)
from smspartner_async._options import UNSET, ClientOptions, per_call_options

# Parameters that are a signature's own, not options.
OWN = {"self", "api_key", "http_client", "http_client_factory"}

# A value other than the default for every option (a new option must be added here).
SAMPLES: dict[str, Any] = {
    "base_url": "http://sandbox.test/v1",
    "transport": "aiohttp",
    "timeout": 7.0,
    "response_format": "xml",
    "max_concurrency": 3,
    "batch_size": 100,
    "max_retries": 1,
    "retry": RetryPolicy(max_retries=5, initial_backoff=0.1),
    "deadline": 9.0,
    "max_requests_per_second": 4.0,
    "shared_limits": "redis://127.0.0.1:1/0",
    "default_region": "BE",
    "fail_fast": True,
    "max_pages": 12,
    "max_response_bytes": 1024,
    "on_request": print,
}


def declared(*, per_call: bool = False) -> list[inspect.Parameter]:
    """The options as keyword-only parameters, as the declaration states them."""
    hints = typing.get_type_hints(ClientOptions)
    fields = per_call_options() if per_call else attrs.fields(ClientOptions)
    parameters = []
    for field in fields:
        annotation = hints[field.name]
        if field.converter is not None:  # the signature takes what the converter takes
            annotation = typing.get_type_hints(field.converter)["value"]
        default = UNSET if per_call else field.default
        parameters.append(
            inspect.Parameter(
                field.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return parameters


def options_in(func: Callable[..., Any]) -> list[inspect.Parameter]:
    signature = inspect.signature(func, eval_str=True)
    return [p for name, p in signature.parameters.items() if name not in OWN]


def test_samples_cover_every_option_with_a_value_that_is_not_the_default() -> None:
    fields = attrs.fields(ClientOptions)
    assert list(SAMPLES) == [field.name for field in fields]
    defaults = ClientOptions()
    for field in fields:
        assert getattr(defaults, field.name) != SAMPLES[field.name], field.name


@pytest.mark.parametrize("cls", [SMSPartnerClient, SMSPartnerSyncClient])
def test_constructors_take_every_option_as_declared(cls: type) -> None:
    assert options_in(cls.__init__) == declared()  # names, order, kinds, annotations, defaults
    api_key = inspect.signature(cls.__init__, eval_str=True).parameters["api_key"]
    assert (api_key.kind, api_key.default, api_key.annotation) == (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        None,
        str | None,
    )


@pytest.mark.parametrize("cls", [SMSPartnerClient, SMSPartnerSyncClient])
def test_with_options_takes_every_per_call_option_as_declared(cls: type) -> None:
    assert options_in(cls.with_options) == declared(per_call=True)
    assert inspect.signature(SMSPartnerClient.with_options, eval_str=True).return_annotation


def test_the_only_own_parameters_are_the_key_and_the_pool() -> None:
    def own(func: Callable[..., Any]) -> set[str]:
        return set(inspect.signature(func).parameters) - {p.name for p in options_in(func)}

    assert own(SMSPartnerClient.__init__) == {"self", "api_key", "http_client"}
    assert own(SMSPartnerSyncClient.__init__) == {"self", "api_key", "http_client_factory"}


@pytest.mark.parametrize("given", ["x", object(), httpx.Client()])
async def test_a_pool_that_is_not_an_async_httpx_client_is_invalid_input(given: Any) -> None:
    with pytest.raises(InvalidInputError, match="http_client"):
        SMSPartnerClient("k", http_client=given)


async def test_a_transport_beside_a_given_pool_is_invalid_input() -> None:
    """`transport` names the pool the client builds; given one, it builds none, so an
    aiohttp transport asked for as well would be silently ignored."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidInputError, match="transport"):
            SMSPartnerClient("k", http_client=http, transport="aiohttp")
        SMSPartnerClient("k", http_client=http, transport="httpx")  # the default: fine


def test_the_sync_client_refuses_a_transport_beside_a_factory_before_its_thread() -> None:
    with pytest.raises(InvalidInputError, match="transport"):
        SMSPartnerSyncClient("k", http_client_factory=httpx.AsyncClient, transport="aiohttp")
    with pytest.raises(InvalidInputError, match="http_client_factory"):
        SMSPartnerSyncClient("k", http_client_factory="not callable")  # type: ignore[arg-type]


# With a pool of one's own, `transport` (which names the pool the client builds) is refused.
OWN_POOL_SAMPLES = {**SAMPLES, "transport": "httpx"}


async def test_the_async_client_passes_every_option_on() -> None:
    async with httpx.AsyncClient() as http:
        client = SMSPartnerClient("key", http_client=http, **OWN_POOL_SAMPLES)
        assert client._caller.options == ClientOptions(**OWN_POOL_SAMPLES)
        await client.aclose()
    client = SMSPartnerClient("key", **SAMPLES)  # builds its own pool: the aiohttp one
    assert client._caller.options == ClientOptions(**SAMPLES)
    await client.aclose()


def test_the_sync_client_passes_every_option_on() -> None:
    factory = httpx.AsyncClient
    with SMSPartnerSyncClient("key", http_client_factory=factory, **OWN_POOL_SAMPLES) as client:
        assert client._client._caller.options == ClientOptions(**OWN_POOL_SAMPLES)
    with SMSPartnerSyncClient("key", **SAMPLES) as client:
        assert client._client._caller.options == ClientOptions(**SAMPLES)


@pytest.mark.parametrize("cls", [SMSPartnerClient, SMSPartnerSyncClient])
def test_with_options_changes_what_it_is_given_and_keeps_the_rest(cls: type) -> None:
    per_call = {field.name: SAMPLES[field.name] for field in per_call_options()}
    if cls is SMSPartnerClient:
        client: Any = cls("key", max_concurrency=3)
        before = client._caller.options
        view = client.with_options(**per_call)._caller.options
        assert client.with_options()._caller.options == before
    else:
        with cls("key", max_concurrency=3) as client:
            before = client._client._caller.options
            view = client.with_options(**per_call)._client._caller.options
    assert view == attrs.evolve(before, **per_call)
    assert view.max_concurrency == 3


def test_max_retries_overrides_the_policy_s_own_until_cleared() -> None:
    client = SMSPartnerClient("key", max_retries=0)
    assert client._caller.options.policy.max_retries == 0
    view = client.with_options(retry=RetryPolicy(max_retries=5))
    assert view._caller.options.policy.max_retries == 0
    assert view.with_options(max_retries=None)._caller.options.policy.max_retries == 5


@pytest.mark.parametrize("option", [field.name for field in attrs.fields(ClientOptions)])
def test_every_option_is_validated_by_its_declaration(option: str) -> None:
    with pytest.raises(InvalidInputError, match=option):
        ClientOptions(**{option: object()})


def args_of(doc: str | None) -> dict[str, str]:
    """A Google-style docstring's `Args:` entries, in order, each as one line of text."""
    entries: dict[str, str] = {}
    lines = inspect.cleandoc(doc or "").splitlines()
    start = lines.index("Args:") + 1
    name = ""
    for line in lines[start:]:
        if not line.strip():
            break
        if line.startswith("    ") and not line.startswith("        "):
            name, _, text = line.strip().partition(": ")
            entries[name] = text
        else:
            entries[name] += " " + line.strip()
    return entries


DOCUMENTED = [
    (SMSPartnerClient, {"api_key", "http_client"}, False),
    (SMSPartnerClient.with_options, set(), True),
    (SMSPartnerSyncClient, {"api_key", "http_client_factory"}, False),
    (SMSPartnerSyncClient.with_options, set(), True),
]


@pytest.mark.parametrize(("documented", "own", "per_call"), DOCUMENTED)
def test_docs_say_what_the_declaration_says(documented: Any, own: set[str], per_call: bool) -> None:
    """The Args sections are written out (static tools read them) and must be the
    declaration's docs, in its order: `_options.document` renders them afresh."""
    entries = args_of(documented.__doc__)
    fields = per_call_options() if per_call else attrs.fields(ClientOptions)
    assert list(entries)[: len(own)] == [n for n in entries if n in own]
    assert set(list(entries)[: len(own)]) == own
    options = {name: text for name, text in entries.items() if name not in own}
    assert list(options) == [field.name for field in fields]
    for field in fields:
        assert options[field.name] == field.metadata["doc"], field.name
