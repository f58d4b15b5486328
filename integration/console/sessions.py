"""Console sessions: a random id in Flask's signed cookie, the session itself in Redis.

Redis keeps only a hash of the id, so a Redis dump signs nobody in. A session ends at sign-out,
after ``IDLE`` without a request, after ``LONGEST`` in any case, and when its user's password
changes or the user is deleted (checked on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from redis import Redis

IDLE = 8 * 3600
LONGEST = 7 * 86400
PREFIX = "vats:console:session:"


@dataclass(frozen=True)
class Session:
    email: str
    started_at: datetime


def session_signing_key(secret_keys: tuple[str, ...]) -> tuple[str, list[str]]:
    """Flask's ``secret_key`` and ``SECRET_KEY_FALLBACKS``, one per key of ``SECRET_KEYS`` (the
    first signs, every one verifies), derived so the cookie key is never a sealing key itself."""
    derived = [
        hmac.new(key.encode(), b"vats-bridge console session", hashlib.sha256).hexdigest() for key in secret_keys
    ]
    return derived[0], derived[1:]


class ConsoleSessions:
    def __init__(self, redis: Redis):
        self.redis = redis

    @staticmethod
    def _key(session_id: str) -> str:
        return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    def start(self, email: str, now: datetime) -> str:
        """A new session's id (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        with self.redis.pipeline() as pipe:  # MULTI: never a session without its expiry
            pipe.hset(self._key(session_id), mapping={"email": email, "started_at": now.isoformat()})
            pipe.expire(self._key(session_id), IDLE)
            pipe.execute()
        return session_id

    def get(self, session_id: str, now: datetime) -> Session | None:
        """The session, its idle time restarted; None when it has ended."""
        key = self._key(session_id)
        with self.redis.pipeline() as pipe:
            pipe.hgetall(key)
            pipe.expire(key, IDLE)  # a missing key stays missing
            found, _ = pipe.execute()
        if not found:
            return None
        started_at = datetime.fromisoformat(found[b"started_at"].decode())
        if (now - started_at).total_seconds() > LONGEST:
            self.end(session_id)
            return None
        return Session(found[b"email"].decode(), started_at)

    def end(self, session_id: str) -> None:
        self.redis.delete(self._key(session_id))
