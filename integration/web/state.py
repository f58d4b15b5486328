"""What the web layer builds once per app: the signature verifier, schemas and rate limiter."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flask import current_app

from integration.ratelimit import RateLimiter
from integration.runtime import Runtime
from integration.signatures import SignatureVerifier
from integration.web.schemas import CallbackFormSchema, ClickToCallSchema


@dataclass
class WebState:
    runtime: Runtime

    @cached_property
    def verifier(self) -> SignatureVerifier:
        return SignatureVerifier(self.runtime.settings.webhook_secrets)

    @cached_property
    def click_to_call_schema(self) -> ClickToCallSchema:
        return ClickToCallSchema(self.runtime.settings)

    @cached_property
    def form_schema(self) -> CallbackFormSchema:
        return CallbackFormSchema(self.runtime.settings)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.runtime.redis, prefix=self.runtime.key("vats:rate:"))

    @cached_property
    def _stored_recordings(self) -> dict[str, tuple[str, str]]:
        return {}

    def stored_recording(self, recording_id: str) -> tuple[str, str] | None:
        """(storage key, sha256) of a stored recording, remembered: both never change once
        stored, and a recording deleted later is gone from the store, which the caller checks."""
        known = self._stored_recordings.get(recording_id)
        if known is None:
            recording = self.runtime.recording_ledger.by_public_id(recording_id)
            if recording is None or recording.status != "stored" or not recording.storage_key or not recording.sha256:
                return None
            if len(self._stored_recordings) >= 10_000:
                self._stored_recordings.clear()
            known = self._stored_recordings[recording_id] = (recording.storage_key, recording.sha256)
        return known


def web() -> WebState:
    return current_app.extensions["vats.web"]
