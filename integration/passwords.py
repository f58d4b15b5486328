"""Console passwords: hashed with scrypt (memory-hard: 32 MiB a hash), checked in constant time.

A hash is self-describing text, ``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>`` (url-safe base64), so
the cost can rise later without invalidating older hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

LOG2_N, R, P = 15, 8, 1  # 2**15 × 128 × 8 bytes = 32 MiB, ~0.1 s: OWASP's scrypt minimum and more
MIN_LENGTH = 12
_MAX_MEMORY = 64 * 1024 * 1024


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=32)


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${LOG2_N}${R}${P}${_text(salt)}${_text(_derive(password, salt, LOG2_N, R, P))}"


# Checked against when the user is unknown, so a sign-in takes as long either way.
_NOBODY = hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such user; the time spent is the same)."""
    try:
        scheme, log2_n, r, p, salt, expected = (stored or _NOBODY).split("$")
        derived = _derive(password, _raw(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return scheme == "scrypt" and stored is not None and hmac.compare_digest(derived, _raw(expected))


def password_problem(password: str) -> str | None:
    """Why ``password`` is too weak to keep (None: it will do)."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(set(password)) < 4:
        return "must not repeat the same few characters"
    return None
