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
        return RateLimiter(self.runtime.redis)


def web() -> WebState:
    return current_app.extensions["vats.web"]
