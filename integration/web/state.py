"""What the web layer builds once per account: the signature verifier, schemas, rate limiter and
widget token verifier; and which account a request is for (``/a/<account>/…``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from flask import Response, current_app, g, request

from integration.accounts import AccountError
from integration.crm.amocrm import settings_of as amocrm_settings
from integration.crm.amocrm.widget_tokens import WidgetTokens
from integration.keys import DEFAULT_ACCOUNT
from integration.ratelimit import RateLimiter
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.signatures import SignatureVerifier
from integration.web.errors import Problem, problem_response
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
    def widget_tokens(self) -> WidgetTokens | None:
        """The verifier of the amoCRM widget's one-time tokens (None: the endpoint is off)."""
        runtime = self.runtime
        settings = amocrm_settings(runtime.settings)
        if settings is None or not (settings.client_secret and settings.base_url):
            return None
        return WidgetTokens(
            settings.client_secret,
            settings.base_url,
            runtime.redis,
            account_id=settings.account_id,
            audience_url=settings.redirect_uri,
            prefix=runtime.key("vats:amocrm:jti:"),
        )

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


ACCOUNT_ENVIRON = "vats.account"
_PREFIXED = re.compile(r"/a/([^/]+)(/.*)\Z", re.DOTALL)


class AccountPrefix:
    """WSGI middleware: ``/a/<account>/rest`` is ``/rest`` for that account; the prefix moves to
    ``SCRIPT_NAME``, so links the app builds keep it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        found = _PREFIXED.match(environ.get("PATH_INFO", ""))
        if found:
            account, rest = found.groups()
            environ[ACCOUNT_ENVIRON] = account
            environ["SCRIPT_NAME"] = f"{environ.get('SCRIPT_NAME', '')}/a/{account}"
            environ["PATH_INFO"] = rest
        return self.app(environ, start_response)


class WebStates:
    """Each served account's ``WebState``, rebuilt with its runtime when the account changes."""

    def __init__(self, runtimes: AccountRuntimes):
        self.runtimes = runtimes
        self._states: dict[str, WebState] = {}

    def of(self, account: str) -> WebState:
        """``AccountError`` when the account is not served (none, disabled or deleted)."""
        runtime = self.runtimes.get(account)
        state = self._states.get(account)
        if state is None or state.runtime is not runtime:
            if len(self._states) >= self.runtimes.most:
                self._states.clear()
            state = self._states[account] = WebState(runtime)
        return state


def request_account() -> str:
    """The account the request is for: ``/a/<account>/…``, else the environment's."""
    return request.environ.get(ACCOUNT_ENVIRON, DEFAULT_ACCOUNT)


def web() -> WebState:
    """The request's account's state (looked up once a request); a 404 problem when that account
    is not served."""
    state = g.get("vats_web")
    if state is None:
        try:
            state = g.vats_web = current_app.extensions["vats.web"].of(request_account())
        except AccountError:
            raise Problem(404, "Not Found", NOT_SERVED) from None
    return state


def conceal_refusals(response: Response) -> Response:
    """``after_request``: under ``/a/<account>/``, a refused credential (401, 403) and anything
    not found are answered as an unknown account is (the same 404), so another account's token,
    secret, id or link does not reveal that the account exists. (The console answers the same
    way with a page of its own.)"""
    if (
        ACCOUNT_ENVIRON in request.environ
        and response.status_code in (401, 403, 404)
        and request.blueprint != "console"
    ):
        return problem_response(404, "Not Found", NOT_SERVED)
    return response


NOT_SERVED = "no such resource"
