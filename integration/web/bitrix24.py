"""``POST /webhooks/bitrix24``: Bitrix24 telephony events (form-encoded, ``data[…]``/``auth[…]``).

- ``ONEXTERNALCALLSTART`` (a user clicked a number): our click-to-call, with Bitrix24's
  ``CALL_ID`` as the idempotency key and kept as context, so the call is finished in Bitrix24
  with its real outcome.
- ``ONEXTERNALCALLBACKSTART`` (a Bitrix24 callback form): a callback request to the number.

Verified by ``auth[application_token]`` against ``BITRIX24_APP_TOKEN`` (constant time). Bitrix24
does not resend lost events, so the answer is quick and the handling safe to repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from integration.callbacks import ClickToCall, dialable_destination
from integration.crm.bitrix24 import settings_of
from integration.errors import InvalidPhoneNumber
from integration.web.errors import Problem
from integration.web.inputs import json_body
from integration.web.state import web

bitrix24 = Blueprint("bitrix24", __name__)
_KEY = re.compile(r"^(\w+)\[(\w+)\]$")


def nested_form(form) -> dict:
    """``data[USER_ID]=1`` → ``{"data": {"USER_ID": "1"}}`` (one level, as Bitrix24 sends).
    A name given both as a value and as a table (``a=1&a[b]=2``) is a 422 naming it."""
    result: dict = {}
    for key, value in form.items():
        match = _KEY.match(key)
        name = match.group(1) if match else key
        if match and isinstance(result.setdefault(name, {}), dict):
            result[name][match.group(2)] = value
        elif not match and name not in result:
            result[name] = value
        else:
            raise ValidationError({name: ["is given both as a value and as a table"]})
    return result


@bitrix24.post("/webhooks/bitrix24")
def bitrix24_event():
    # The token is checked before the rest of the body is read.
    body = json_body(request.get_data()) if request.is_json else None
    auth = body.get("auth") if body is not None else {"application_token": request.form.get("auth[application_token]")}
    token = auth.get("application_token") if isinstance(auth, dict) else None
    own = settings_of(web().runtime.settings)
    expected = own.app_token if own is not None else None
    if not expected or not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(401, "Unauthorized", "auth[application_token] does not match BITRIX24_APP_TOKEN")
    if body is None:
        body = nested_form(request.form)
    settings = web().runtime.settings
    event = str(body.get("event", "")).upper()
    data = body["data"] if isinstance(body.get("data"), dict) else {}
    if event == "ONEXTERNALCALLSTART":
        order = _click(data, settings)
    elif event == "ONEXTERNALCALLBACKSTART":
        order = _callback(data, body, settings)
    else:
        return jsonify(status="ignored", event=event), 200
    accepted, _ = web().runtime.intake.submit(order)
    return jsonify(id=accepted.id, status=accepted.status.value), 200


def _destination(data: dict, settings):
    raw = data.get("PHONE_NUMBER_INTERNATIONAL") or data.get("PHONE_NUMBER")
    try:
        return dialable_destination(raw, settings)
    except InvalidPhoneNumber as exc:
        raise Problem(
            422,
            "Invalid request",
            "check these fields: data[PHONE_NUMBER]",
            errors={"data[PHONE_NUMBER]": [exc.reason]},
        ) from None


def _click(data: dict, settings) -> ClickToCall:
    call_id, user = data.get("CALL_ID"), str(data.get("USER_ID", ""))
    errors = {}
    if not call_id:
        errors["data[CALL_ID]"] = ["missing"]
    if user not in settings.users:
        errors["data[USER_ID]"] = [f"Bitrix24 user {user!r} has no contract number in [users] of INTEGRATION_CONFIG"]
    if errors:
        raise Problem(422, "Invalid request", "check these fields: " + ", ".join(errors), errors=errors)
    return ClickToCall(
        phone_from=settings.users[user],
        destination=_destination(data, settings),
        source="bitrix24",
        idempotency_key=str(call_id),
        crm_user=user,
        crm_context={"bitrix_call_id": str(call_id), **_entity(data)},
    )


def _callback(data: dict, body: dict, settings) -> ClickToCall:
    destination = _destination(data, settings)
    # The event has no id of its own: the same form submission comes with the same values.
    identity = f"{body.get('ts')}|{destination.e164}|{data.get('CRM_ENTITY_TYPE')}|{data.get('CRM_ENTITY_ID')}"
    return ClickToCall(
        phone_from=settings.form_number,
        destination=destination,
        source="bitrix24-form",
        idempotency_key=hashlib.sha256(identity.encode()).hexdigest()[:32],
        crm_context={"callback": True, **_entity(data)},
    )


def _entity(data: dict) -> dict:
    if data.get("CRM_ENTITY_TYPE") and data.get("CRM_ENTITY_ID"):
        return {"entity_type": str(data["CRM_ENTITY_TYPE"]), "entity_id": str(data["CRM_ENTITY_ID"])}
    return {}
