"""Standard Webhooks signatures: verifying inbound webhooks and signing outgoing ones.

The signing scheme comes from the ``standardwebhooks`` reference package; this module keeps only
our rules around it: several secrets for rotation, the ±5 minute timestamp tolerance with an
injectable clock, constant-time comparison, and errors that never contain a secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from integration.errors import IntegrationError

TOLERANCE = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only


class InvalidSignature(IntegrationError):
    """The webhook cannot be trusted; the message says what a sender needs to fix."""


class SignatureVerifier:
    def __init__(self, secrets: Sequence[str], *, tolerance: int = TOLERANCE, clock: Callable[[], float] = time.time):
        self._signers = [Webhook(secret) for secret in secrets]
        self.tolerance = tolerance
        self.clock = clock

    def __repr__(self) -> str:
        return f"SignatureVerifier({len(self._signers)} secret(s))"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Check the ``webhook-*`` headers against ``body``; return the webhook id."""
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not (msg_id and stamp and signatures):
            raise InvalidSignature("webhook-id, webhook-timestamp and webhook-signature headers are required")
        if not self._signers:
            raise InvalidSignature("this endpoint has no webhook secret configured (WEBHOOK_SECRET)")
        if not _TIMESTAMP.fullmatch(stamp):
            raise InvalidSignature("webhook-timestamp must be whole seconds since the epoch (1–12 digits)")
        timestamp = int(stamp)
        if abs(self.clock() - timestamp) > self.tolerance:
            raise InvalidSignature("webhook-timestamp is more than 5 minutes away from our clock")
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSignature("the body must be UTF-8") from None
        offered = []
        for item in signatures.split():
            version, _, value = item.partition(",")
            if version == "v1":
                try:
                    offered.append(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    continue
        moment = datetime.fromtimestamp(timestamp, UTC)
        for signer in self._signers:
            expected = base64.b64decode(signer.sign(msg_id, moment, data).split(",", 1)[1])
            if any(hmac.compare_digest(expected, candidate) for candidate in offered):
                return msg_id
        raise InvalidSignature("no valid signature")


def sign_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The ``webhook-*`` headers for ``body`` signed with ``secret``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body.decode("utf-8"))
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
