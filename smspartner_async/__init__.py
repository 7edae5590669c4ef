"""Asyncio client for the SMS Partner delivery-status API.

async with SMSPartnerClient(api_key) as client:
    results = await client.multi_status(pairs)   # any number of pairs
"""

from ._call import ClientStats, RequestEvent
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
    ResponseTooLargeError,
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
from ._sync import SMSPartnerSyncClient
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
    "ResponseTooLargeError",
    "RetryPolicy",
    "SMSPartnerClient",
    "SMSPartnerError",
    "SMSPartnerSyncClient",
    "ServerError",
    "TagPage",
    "__version__",
]
