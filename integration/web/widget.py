"""``POST /widget/amocrm/click-to-call``: the amoCRM/Kommo widget rings its own user first.

The widget posts with ``$authorizedAjax``, so amoCRM adds ``X-Auth-Token``: a one-time token
naming the account and the signed-in user. The caller is always that user's number in
``[users]``; the body only says whom to call. Every answer carries CORS headers for the
account's origin (``CORS_ORIGINS``), so the widget can read the problem's ``detail``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request
from marshmallow import RAISE, ValidationError, fields, post_load

from integration.callbacks import ClickToCall
from integration.crm.amocrm import AmoCrmSettings, settings_of
from integration.crm.amocrm.widget_tokens import TokenRefused, WidgetUser
from integration.web.cors import browser_endpoint, preflight
from integration.web.errors import Problem
from integration.web.inputs import json_body
from integration.web.schemas import NumberField, SettingsSchema, destination
from integration.web.state import web

log = logging.getLogger(__name__)

widget = Blueprint("widget", __name__)
TOKEN_HEADERS = "Content-Type, X-Auth-Token"
CHALLENGE = {"WWW-Authenticate": 'X-Auth-Token realm="amocrm-widget"'}


class WidgetCallSchema(SettingsSchema):
    """``{"to": any format, "crm": {...}?}``; anything else (``from``, ``user``) is refused."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "not accepted here: the caller is always the signed-in amoCRM user's own number"}

    to = NumberField(required=True)
    crm = fields.Dict(load_default=None, allow_none=True)

    @post_load
    def make(self, data: dict, **kwargs) -> dict:
        try:
            data["destination"] = destination(data["to"], self.settings)
        except ValidationError as exc:
            raise ValidationError({"to": exc.messages}) from None
        return data


@widget.route("/widget/amocrm/click-to-call", methods=["POST", "OPTIONS"])
@browser_endpoint
def click_to_call():
    """Ring the token's user's number, then connect ``to``: 202 ``{"id", "status"}``."""
    if request.method == "OPTIONS":
        return preflight(TOKEN_HEADERS)
    user = token_user()
    state = web()
    settings = state.runtime.settings
    limit = (settings_of(settings) or AmoCrmSettings()).widget_call_limit_per_user
    wait = state.rate_limiter.hit([(f"widget-user:{user.account_id}:{user.user_id}", limit)])
    if wait:
        raise Problem(
            429,
            "Too Many Requests",
            f"too many calls from this amoCRM user; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    phone_from = settings.users.get(user.user_id)
    if phone_from is None:
        raise Problem(
            403,
            "Forbidden",
            f"amoCRM user {user.user_id} has no contract number in INTEGRATION_CONFIG [users]; ask an administrator to add one",
        )
    body = WidgetCallSchema(settings).load(json_body(request.get_data()))
    context: dict[str, Any] = {"amocrm": {"account_id": user.account_id, "user_id": user.user_id}}
    if body["crm"]:
        context["crm"] = body["crm"]
    order = ClickToCall(
        phone_from=phone_from,
        destination=body["destination"],
        source="amocrm-widget",
        idempotency_key=user.jti,
        crm_user=user.user_id,
        crm_context=context,
    )
    accepted, _ = state.runtime.intake.submit(order)
    return jsonify(id=accepted.id, status=accepted.status.value), 202


def token_user() -> WidgetUser:
    """The user the request's one-time token speaks for, or a 401/403 problem."""
    tokens = web().widget_tokens
    if tokens is None:
        raise Problem(
            403, "Forbidden", "the amoCRM widget endpoint is disabled: set AMOCRM_CLIENT_SECRET and AMOCRM_BASE_URL"
        )
    token = request.headers.get("X-Auth-Token", "").strip()
    if not token:
        raise Problem(
            401,
            "Unauthorized",
            "the X-Auth-Token header is missing: the widget must call this endpoint with $authorizedAjax",
            headers=CHALLENGE,
        )
    try:
        return tokens.verify(token)
    except TokenRefused as exc:
        log.info("amoCRM widget token refused: %s", exc)
        raise Problem(401, "Unauthorized", str(exc), headers=CHALLENGE) from None
