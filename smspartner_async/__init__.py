"""Asyncio client for the SMS Partner delivery-status API.

async with SMSPartnerClient(api_key) as client:
    results = await client.multi_status(pairs)   # any number of pairs

Every public name is here: the clients, the models, the whole exception tree,
and the types an extension or a hook is written against (`FlowBackend`,
`Pair`, `Pairs`, `Progress`, `ClientStats`, `RequestEvent`). The watch lives
in `smspartner_async.watch`, the Redis fleet in `smspartner_async.contrib.redis`.
"""

from ._batch import Progress
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
    SharedLimitsUnavailableError,
    SMSPartnerError,
    WatchStoreUnavailableError,
)
from ._events import ClientStats, RequestEvent
from ._flow import FlowBackend
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
from ._validate import Pair, Pairs
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
    "FlowBackend",
    "InvalidInputError",
    "InvalidRequestError",
    "MessageStatus",
    "MultiStatusResult",
    "NotFoundError",
    "Pair",
    "Pairs",
    "PermissionDeniedError",
    "Progress",
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
    "SharedLimitsUnavailableError",
    "TagPage",
    "WatchStoreUnavailableError",
    "__version__",
]
