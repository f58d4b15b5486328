"""Secrets out of text that is about to be logged.

Two kinds: secrets recognisable by their place in a URL (the amoCRM webhook's path secret, the
value of ``sig``, ``token``, ``secret``, ``key``, ``code`` and similar query parameters), and the
secret settings themselves (``Settings`` fields hidden from ``repr``), recognised by value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REDACTED = "[redacted]"

# Query parameters whose value is a secret (case-insensitive): recording links' ``sig``, OAuth's
# ``code``, ``access_token`` and the like.
SECRET_PARAMS = (
    "sig",
    "signature",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "code",
    "password",
)
# Path segments that are secrets: what follows the prefix up to the next "/", "?", "#" or space.
SECRET_PATH_PREFIXES = ("/webhooks/amocrm/",)

_QUERY = re.compile(r"((?:^|[?&;])(?:" + "|".join(SECRET_PARAMS) + r")=)[^&#;\s\"]*", re.IGNORECASE)
_PATH = re.compile("(" + "|".join(re.escape(p) for p in SECRET_PATH_PREFIXES) + r')[^/?#\s"]+')
# Names (fields, headers) whose value is a secret as a whole: a word of the name is one of these.
_SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:token|secret|password|passwd|sig|signature|authorization|cookie|key|keys)s?(?:$|[_\-.])",
    re.IGNORECASE,
)
SHORTEST_KNOWN_SECRET = 8  # shorter setting values are not searched for (they would hit everything)


def redact_url(text: str) -> str:
    """``text`` (a URL, a path, a query string, a request line or a whole log line) with the
    secrets of URLs replaced by ``[redacted]``; the shape of the URL stays readable."""
    if any(prefix in text for prefix in SECRET_PATH_PREFIXES):
        text = _PATH.sub(r"\1" + REDACTED, text)
    if "=" in text:
        text = _QUERY.sub(r"\1" + REDACTED, text)
    return text


def is_secret_name(name: str) -> bool:
    """Whether a field or header called ``name`` holds a secret (``token``, ``api_key``,
    ``Authorization``, ``Cookie``, ``webhook-signature``, …)."""
    return _SECRET_NAME.search(name) is not None


class KnownSecrets:
    """Replaces known secret values wherever they appear in a text."""

    def __init__(self, values: Iterable[str] = ()):
        found: set[str] = set()
        for value in values:
            found.add(value)
            found.add(value.removeprefix("whsec_"))  # the key inside a Standard Webhooks secret
            if "://" in value:  # a URL holding a secret: its path travels alone in error messages
                found.add(urlsplit(value).path)
        kept = [value for value in found if len(value) >= SHORTEST_KNOWN_SECRET]
        self.values = tuple(sorted(kept, key=len, reverse=True))  # longest first: no partial leftovers

    @classmethod
    def of(cls, settings: DataclassInstance) -> KnownSecrets:
        """The values of a settings dataclass's secret fields (those hidden from its ``repr``)."""
        return cls(_secret_values(settings))

    def redact(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def _secret_values(settings: DataclassInstance) -> list[str]:
    """The secret fields' values, and those of the settings objects it holds (each CRM plugin's,
    in ``crm_settings``)."""
    values: list[str] = []
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        nested = value.values() if isinstance(value, Mapping) else (value,)
        for item in nested:
            if dataclasses.is_dataclass(item) and not isinstance(item, type):
                values.extend(_secret_values(item))
        if field.repr:
            continue
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, (tuple, list)):
            values.extend(item for item in value if isinstance(item, str))
    return values
