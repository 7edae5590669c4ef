"""The library's private names the command line uses, imported here and nowhere else.

The CLI otherwise sticks to the package's public names. These have no public
spelling yet; when the library's internals move, this is the one file to edit.
"""

from __future__ import annotations

from .._client import ENV_API_KEY, ENV_BASE_URL
from .._redact import redact
from .._validate import DEFAULT_REGION, REGIONS, normalize_message_id, normalize_phone

__all__ = [
    "DEFAULT_REGION",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "REGIONS",
    "normalize_message_id",
    "normalize_phone",
    "redact",
]
