"""Signed recording links: ``/recordings/<id>.mp3?sig=…`` (and ``exp=…`` when links expire).

A stored account's links are ``/a/<account>/recordings/…`` and their signature covers the
account too, so one account's link never opens under another's prefix (the keys are the
deployment's). The signature is HMAC-SHA256 over the id and the expiry with the first of
``RECORDING_LINK_KEYS``;
every key in the list is accepted, so a key can be rotated without breaking links already in the
CRM. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from urllib.parse import urlencode

from integration.keys import DEFAULT_ACCOUNT

_EXPIRY = re.compile(r"[0-9]{1,12}")  # Unix seconds; ASCII only
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")  # unpadded base64url of an HMAC-SHA256


class LinkSigner:
    def __init__(self, keys: Sequence[str], public_url: str, ttl: int = 0, account: str = DEFAULT_ACCOUNT):
        self.keys = [key.encode() for key in keys]
        self.public_url = public_url.rstrip("/") + ("" if account == DEFAULT_ACCOUNT else f"/a/{account}")
        self.ttl = ttl
        self.scope = "" if account == DEFAULT_ACCOUNT else f"{account}/"  # signed with the id

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def url(self, recording_id: str, now: float) -> str | None:
        """The link to hand out (None when no key is configured)."""
        if not self.keys:
            return None
        params = {}
        if self.ttl:
            params["exp"] = str(int(now) + self.ttl)
        params["sig"] = _signature(self.keys[0], self.scope + recording_id, params.get("exp", ""))
        return f"{self.public_url}/recordings/{recording_id}.mp3?{urlencode(params)}"

    def verify(self, recording_id: str, signature: str | None, expires: str | None, now: float) -> bool:
        """True when some key signed exactly this id and expiry, and the link has not expired."""
        if not self.keys or not signature or not _SIGNATURE.fullmatch(signature):
            return False
        if expires and (not _EXPIRY.fullmatch(expires) or int(expires) < now):
            return False
        good = False
        for key in self.keys:  # no early exit: every key costs the same
            good |= hmac.compare_digest(_signature(key, self.scope + recording_id, expires or ""), signature)
        return good


def _signature(key: bytes, recording_id: str, expires: str) -> str:
    digest = hmac.new(key, f"{recording_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
