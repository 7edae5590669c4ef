"""Asyncio client for the SMS Partner delivery-status API.

async with SMSPartnerClient(api_key) as client:
    results = await client.multi_status(pairs)   # any number of pairs
"""

from ._client import DEFAULT_BASE_URL, SMSPartnerClient
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientStateError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    SMSPartnerError,
)
from ._models import (
    BulkStatus,
    DeliveryStatus,
    MessageStatus,
    MultiStatusResult,
    RecipientStatus,
    TagPage,
)
from ._retry import RetryPolicy
from ._transport import ClientStats, RequestEvent
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BulkStatus",
    "ClientStateError",
    "ClientStats",
    "DeliveryStatus",
    "InvalidInputError",
    "InvalidRequestError",
    "MessageStatus",
    "MultiStatusResult",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RecipientStatus",
    "RequestEvent",
    "ResponseFormatError",
    "RetryPolicy",
    "SMSPartnerClient",
    "SMSPartnerError",
    "ServerError",
    "TagPage",
    "__version__",
]
