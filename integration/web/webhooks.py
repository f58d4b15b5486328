"""Signed inbound webhooks: ``POST /webhooks/click-to-call`` and ``POST /webhooks/events``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

from flask import Blueprint, jsonify, request

from integration.ledger.events import qualified
from integration.ledger.work import WorkKind
from integration.signatures import InvalidSignature
from integration.timeutil import utc_now
from integration.web.cors import browser_endpoint, preflight
from integration.web.errors import Problem
from integration.web.inputs import json_body
from integration.web.schemas import CrmEventSchema
from integration.web.state import web

webhooks = Blueprint("webhooks", __name__)
SIGNED_HEADERS = "Content-Type, webhook-id, webhook-timestamp, webhook-signature"


def signed_json() -> tuple[str, dict[str, Any]]:
    """Verify the Standard Webhooks signature, then parse the body; returns (webhook id, body)."""
    body = request.get_data(cache=True)
    try:
        webhook_id = web().verifier.verify(body, cast(Mapping[str, str], request.headers))
    except InvalidSignature as exc:
        raise Problem(401, "Unauthorized", str(exc)) from None
    return webhook_id, json_body(body)


@webhooks.route("/webhooks/click-to-call", methods=["POST", "OPTIONS"])
@browser_endpoint
def click_to_call():
    """Ring the caller's own phone, then connect the customer: 202 ``{"id", "status"}``.

    Browsers (the amoCRM widget) may call it from the origins in ``CORS_ORIGINS``.
    """
    if request.method == "OPTIONS":
        return preflight(SIGNED_HEADERS)
    webhook_id, data = signed_json()
    order = replace(web().click_to_call_schema.load(data), idempotency_key=webhook_id)
    accepted, _ = web().runtime.intake.submit(order)
    return jsonify(id=accepted.id, status=accepted.status.value), 202


@webhooks.post("/webhooks/events")
def crm_event():
    """A CRM event for the rules: 202 ``{"id", "status": "accepted"}``, once per ``webhook-id``."""
    webhook_id, data = signed_json()
    event = CrmEventSchema().load(data)
    runtime = web().runtime
    event_id = qualified(runtime.account, f"webhook:{webhook_id}")
    if runtime.event_ledger.add(event_id, event["type"], event["data"], utc_now()):
        runtime.queue_work(WorkKind.HANDLE_EVENT, event_id)
    return jsonify(id=webhook_id, status="accepted"), 202
