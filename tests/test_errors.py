"""Error codes to exceptions, HTTP statuses when the body is not the API's, and the tree itself."""

from __future__ import annotations

import pickle

import httpx
import pytest

import smspartner_async as sms
from smspartner_async._errors import error_from_code

CODES = {
    1: sms.AuthenticationError,
    10: sms.AuthenticationError,
    2: sms.InvalidRequestError,
    3: sms.InvalidRequestError,
    5: sms.InvalidRequestError,
    6: sms.InvalidRequestError,
    9: sms.InvalidRequestError,
    50: sms.InvalidRequestError,
    90: sms.InvalidRequestError,
    4: sms.NotFoundError,
    96: sms.PermissionDeniedError,
    7: sms.APIError,
}


@pytest.mark.parametrize(("code", "cls"), CODES.items())
@pytest.mark.parametrize("http_status", [200, 400])
async def test_code_maps_to_exception(router, make_client, code, cls, http_status):
    route = router.get("/message-status").respond(
        http_status, json={"success": False, "code": code, "message": f"erreur {code}"}
    )
    with pytest.raises(cls) as caught:
        await make_client().message_status("+33612345678", 1)
    error = caught.value
    assert type(error) is cls
    assert error.code == code
    assert error.message == f"erreur {code}"
    assert error.status_code == http_status
    assert f"code {code}" in str(error)
    assert route.call_count == 1  # API errors are never retried


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (500, b'{"success": false, "code": 500, "message": "Internal"}', sms.ServerError),
        (503, b'{"success": false, "message": "busy"}', sms.ServerError),
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", sms.ServerError),
        (503, b"", sms.ServerError),
        (408, b"timeout", sms.ServerError),
        (200, b"<html><body>maintenance</body></html>", sms.ResponseFormatError),
        (200, b'{"success": true, "code": 200, "StatutResp', sms.ResponseFormatError),
        (200, b"[1, 2]", sms.ResponseFormatError),
        (200, b'{"code": 200}', sms.ResponseFormatError),
        (404, b"Not Found", sms.ResponseFormatError),
        (429, b"slow down", sms.RateLimitError),
    ],
)
async def test_http_status_when_the_body_is_not_the_apis(router, make_client, status, body, cls):
    route = router.get("/bulk-status").respond(status, content=body)
    with pytest.raises(cls) as caught:
        await make_client(max_retries=2).bulk_status(1)
    assert caught.value.retryable
    assert route.call_count == 3


async def test_response_format_error_carries_a_short_excerpt(router, make_client):
    page = b"<html><head><title>Oops</title></head><body>" + b"x" * 10_000 + b"</body></html>"
    router.get("/bulk-status").respond(200, content=page)
    with pytest.raises(sms.ResponseFormatError) as caught:
        await make_client(max_retries=0).bulk_status(1)
    assert caught.value.excerpt.startswith("<html><head><title>Oops")
    assert len(caught.value.excerpt) <= 200
    assert caught.value.status_code == 200
    assert caught.value.endpoint == "bulk-status"


async def test_wrong_value_types_are_a_format_error(router, make_client):
    router.get("/bulk-status").respond(
        json={"success": True, "code": 200, "message_id": 1, "StatutResponse_List": "nope"}
    )
    with pytest.raises(sms.ResponseFormatError, match="BulkStatus"):
        await make_client(max_retries=0).bulk_status(1)


def test_every_exception_derives_from_one_base():
    for name in sms.__all__:
        obj = getattr(sms, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, sms.SMSPartnerError), name


def test_input_errors_are_value_errors_and_state_errors_runtime_errors():
    assert issubclass(sms.InvalidInputError, ValueError)
    assert issubclass(sms.ClientStateError, RuntimeError)
    assert issubclass(sms.APITimeoutError, sms.APIConnectionError)


@pytest.mark.parametrize("code", [4, 10, 96, None])
def test_api_errors_pickle(code):
    error = error_from_code(code, "message", status_code=400, endpoint="multi-status")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert (again.code, again.message, again.status_code) == (code, "message", 400)
    limited = pickle.loads(pickle.dumps(sms.RateLimitError(retry_after=2.5)))
    assert limited.retry_after == 2.5


async def test_transport_errors_become_connection_errors(router, make_client):
    router.get("/bulk-status").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(sms.APIConnectionError) as caught:
        await make_client(max_retries=1).bulk_status(1)
    assert not isinstance(caught.value, sms.APITimeoutError)
    router.get("/message-status").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(sms.APITimeoutError):
        await make_client(max_retries=0).message_status("+33612345678", 1)


def test_server_error_keeps_retry_after_and_notes_through_pickling():
    exc = sms.ServerError(None, "bad gateway", status_code=503, endpoint="bulk-status")
    exc.retry_after = 7.0
    exc.add_note("not one of the batch's 2 calls got an answer")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is sms.ServerError
    assert back.retry_after == 7.0
    assert (back.status_code, back.endpoint, str(back)) == (503, "bulk-status", str(exc))
    assert back.__notes__ == exc.__notes__


ANSWERS = [
    # (HTTP status, body, the error, whether the API answered)
    (200, {"success": False, "code": 2, "message": "x"}, sms.InvalidRequestError, True),
    (400, {"success": False, "code": 7, "message": "x"}, sms.APIError, True),
    (503, {"success": False, "code": 7, "message": "x"}, sms.ServerError, False),
    (429, {"success": False, "code": 2, "message": "x"}, sms.RateLimitError, False),
    (502, "<html>bad gateway</html>", sms.ServerError, False),
    (200, "<html>portal</html>", sms.ResponseFormatError, False),
    (200, {"code": 200}, sms.ResponseFormatError, False),
]


@pytest.mark.parametrize(("status", "body", "cls", "answered"), ANSWERS)
async def test_whether_the_api_answered_is_a_property_of_the_error(
    router, make_client, status, body, cls, answered
):
    kwargs = {"json": body} if isinstance(body, dict) else {"text": body}
    router.get("/message-status").respond(status, **kwargs)
    with pytest.raises(cls) as caught:
        await make_client(max_retries=0).message_status("+33612345678", 1)
    assert type(caught.value) is cls
    assert caught.value.answered is answered


async def test_a_connection_that_fails_is_not_an_answer(router, make_client):
    router.get("/message-status").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(sms.APIConnectionError) as caught:
        await make_client(max_retries=0).message_status("+33612345678", 1)
    assert caught.value.answered is False


def test_only_the_api_s_own_errors_are_answers():
    answers = {
        cls
        for cls in vars(sms).values()
        if isinstance(cls, type) and getattr(cls, "answered", False)
    }
    assert answers == {
        sms.APIError,
        sms.AuthenticationError,
        sms.PermissionDeniedError,
        sms.NotFoundError,
        sms.InvalidRequestError,
    }
