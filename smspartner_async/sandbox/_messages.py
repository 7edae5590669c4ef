"""Error codes, their texts (French as published, English as an option) and HTTP statuses."""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "API_KEY_INVALID",
    "API_KEY_MISSING",
    "BAD_FORMAT",
    "EMPTY_LIST",
    "MALFORMED_JSON",
    "MESSAGE_ID_MISSING",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "PHONE_MISSING",
    "TAG_MISSING",
    "TOO_MANY_PAIRS",
    "UNKNOWN_PATH",
    "Language",
    "http_status",
    "item_not_found",
    "text",
    "wire_code",
]

Language = Literal["fr", "en"]

API_KEY_MISSING: Final = 1
PHONE_MISSING: Final = 2
MESSAGE_ID_MISSING: Final = 3
NOT_FOUND: Final = 4
EMPTY_LIST: Final = 5
BAD_FORMAT: Final = 6
API_KEY_INVALID: Final = 10
TOO_MANY_PAIRS: Final = 50
MALFORMED_JSON: Final = 90
UNKNOWN_PATH: Final = 404
METHOD_NOT_ALLOWED: Final = 405
# The by-tag page lists code 3 as its "required parameter" error; the text names the tag.
TAG_MISSING: Final = -3

_TEXTS: Final[dict[int, tuple[str, str]]] = {
    API_KEY_MISSING: ("La Clé API est requise", "API key is required"),
    PHONE_MISSING: ("Le numéro de téléphone est requis", "Phone number is required"),
    MESSAGE_ID_MISSING: ("L’ID du message est requis", "Message ID is required"),
    TAG_MISSING: ("Le tag est requis", "Tag is required"),
    NOT_FOUND: ("Message introuvable", "Message not found"),
    EMPTY_LIST: ("La liste des numéros est vide", "The number list is empty"),
    BAD_FORMAT: ("Format de requête invalide", "Invalid request format"),
    API_KEY_INVALID: ("Clé API incorrecte", "Invalid API key"),
    TOO_MANY_PAIRS: ("500 numéros maximum par requête", "500 numbers at most per request"),
    MALFORMED_JSON: ("JSON invalide", "Malformed JSON"),
    UNKNOWN_PATH: ("Ressource introuvable", "Resource not found"),
    METHOD_NOT_ALLOWED: ("Méthode non autorisée", "Method not allowed"),
}

_HTTP: Final = {API_KEY_MISSING: 401, API_KEY_INVALID: 401, NOT_FOUND: 404, UNKNOWN_PATH: 404}


def text(code: int, language: Language) -> str:
    fr, en = _TEXTS[code]
    return fr if language == "fr" else en


def wire_code(code: int) -> int:
    """The code sent in the body (TAG_MISSING is code 3 on the wire)."""
    return MESSAGE_ID_MISSING if code == TAG_MISSING else code


def http_status(code: int) -> int:
    return _HTTP.get(code, code if code == METHOD_NOT_ALLOWED else 400)


def item_not_found(language: Language) -> str:
    """The per-item failure text inside a multi-status answer."""
    return "Numéro introuvable" if language == "fr" else "Message not found"
