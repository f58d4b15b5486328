"""Secrets at rest: sealed with ``SECRET_KEYS`` before they reach Redis or the database (the
token pairs in Redis, stored accounts' secrets).

``cryptography``'s Fernet (AES-128-CBC with HMAC-SHA256, a timestamp, url-safe text) under
MultiFernet: the first key seals, every key opens, so keys rotate without downtime (add a new
key first, ``flask --app wsgi secrets rotate``, then drop the old one). A sealed value is text
that starts with ``fernet:``; a value that does not is read as written before sealing existed
(and sealed the next time it is written).

Nothing here ever puts a secret or a key into an exception's text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from integration.errors import IntegrationError

PREFIX = "fernet:"


class SecretKeyError(IntegrationError):
    """A sealed value that no key of ``SECRET_KEYS`` opens (a key was dropped too early, or the
    value was altered)."""

    retryable = False


def new_key() -> str:
    """A fresh key for ``SECRET_KEYS`` (32 random bytes, url-safe base64)."""
    return Fernet.generate_key().decode()


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a usable key (None: it is), without repeating the key."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return "is not url-safe base64"
    if len(raw) != 32:
        return f"decodes to {len(raw)} bytes, not 32 (make one with `python -m integration.secretbox`)"
    return None


class SecretBox:
    """Seals and opens secrets with ``SECRET_KEYS`` (at least one key)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("SECRET_KEYS is empty")
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])

    def __repr__(self) -> str:
        return "SecretBox(keys=[redacted])"

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, stored: str | bytes) -> str:
        """The secret of a sealed value; a value written before sealing existed is returned as it is."""
        text = stored.decode() if isinstance(stored, bytes) else stored
        if not text.startswith(PREFIX):
            return text
        try:
            return self._fernet.decrypt(text[len(PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretKeyError("a stored secret cannot be opened with any key of SECRET_KEYS") from None

    def reseal(self, stored: str | bytes) -> str:
        """The value sealed with the first key (rotation); a value in clear gets sealed."""
        text = stored.decode() if isinstance(stored, bytes) else stored
        if not text.startswith(PREFIX):
            return self.seal(text)
        try:
            return PREFIX + self._fernet.rotate(text[len(PREFIX) :].encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError("a stored secret cannot be opened with any key of SECRET_KEYS") from None


if __name__ == "__main__":
    print(new_key())
