"""``POST /webhooks/amocrm/<secret>``: amoCRM/Kommo webhooks (form-encoded, ``leads[status][0][…]``).

A lead moved to "won" (status 142) or "lost" (143) becomes a ``deal.closed`` event for the rules;
the deal's contact numbers and responsible user are looked up when the event is handled. The
secret path segment (``AMOCRM_WEBHOOK_SECRET``) is compared in constant time; a wrong one is 404.
A webhook from another account (``account[subdomain]`` not ``AMOCRM_BASE_URL``'s, or
``account[id]`` not ``AMOCRM_ACCOUNT_ID``) is 403; fields of an unexpected shape are 422.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from integration.crm.amocrm import AmoCrmSettings, settings_of
from integration.ledger.events import qualified
from integration.ledger.work import WorkKind
from integration.timeutil import utc_now
from integration.web.errors import Problem
from integration.web.state import web

amocrm = Blueprint("amocrm", __name__)
WON, LOST = 142, 143  # amoCRM's fixed ids of the closing stages
_PART = re.compile(r"\[([^\]]*)\]")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
SINGLE = ("id", "status_id", "old_status_id", "responsible_user_id", "last_modified")  # read as text
IDS = ("id", "responsible_user_id")


def php_form(form) -> dict:
    """``leads[status][0][id]=7`` → ``{"leads": {"status": {"0": {"id": "7"}}}}``."""
    result: dict = {}
    for key, value in form.items():
        head, _, rest = key.partition("[")
        path = [head, *_PART.findall("[" + rest)] if rest else [head]
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return result


def check_account(body: dict, settings: AmoCrmSettings) -> None:
    """Refuse (403) a webhook of another amoCRM account than the configured one."""
    account = body.get("account", {})
    if not isinstance(account, dict):
        raise ValidationError({"account": ["must be fields such as account[subdomain], not one value"]})
    host = (urlsplit(settings.base_url).hostname or "") if settings.base_url else None
    subdomain = host.split(".")[0] if host is not None else None
    for key, expected, setting in (
        ("subdomain", subdomain, "AMOCRM_BASE_URL"),
        ("id", settings.account_id, "AMOCRM_ACCOUNT_ID"),
    ):
        if expected is None:
            continue
        value = account.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError({f"account[{key}]": ["must be one value, not nested fields"]})
        if not value or not value.strip():
            raise ValidationError({f"account[{key}]": ["missing: amoCRM sends it with every webhook"]})
        given = value.strip().lower()
        if key == "id" and _DIGITS.match(given):
            given = str(int(given))
        if given != expected.lower():
            raise Problem(
                403, "Forbidden", f"this webhook is from another amoCRM account (account[{key}] is not {setting}'s)"
            )


def status_changes(body: dict) -> list[dict]:
    """``leads[status][…]`` as a list of changes; any other shape is a 422 naming the field."""
    leads = body.get("leads", {})
    if not isinstance(leads, dict):
        raise ValidationError({"leads": ["must be fields such as leads[status][0][id], not one value"]})
    changes = leads.get("status", {})
    if not isinstance(changes, dict):
        raise ValidationError({"leads[status]": ["must be fields such as leads[status][0][id], not one value"]})
    errors: dict[str, list[str]] = {}
    for index, change in changes.items():
        where = f"leads[status][{index}]"
        if not isinstance(change, dict):
            errors[where] = ["must be fields such as leads[status][0][id], not one value"]
            continue
        for key in SINGLE:
            value = change.get(key)
            if value is not None and not isinstance(value, str):
                errors[f"{where}[{key}]"] = ["must be one value, not nested fields"]
            elif key in IDS and value and not _DIGITS.match(value):
                errors[f"{where}[{key}]"] = ["must be an amoCRM id (digits)"]
    if errors:
        raise ValidationError(errors)
    return list(changes.values())


@amocrm.post("/webhooks/amocrm/<secret>")
def amocrm_webhook(secret: str):
    """Won and lost leads → ``deal.closed`` events: 200 ``{"accepted": n}``."""
    runtime = web().runtime
    own = settings_of(runtime.settings)
    expected = own.webhook_secret if own is not None else None
    if own is None or not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise Problem(404, "Not Found", "no such page")
    body = php_form(request.form)
    check_account(body, own)
    accepted = []
    for change in status_changes(body):
        status = {str(WON): "won", str(LOST): "lost"}.get(str(change.get("status_id")))
        if status is None or not change.get("id"):
            continue
        data = {"deal_id": str(change["id"]), "status": status, "source": "amocrm"}
        if change.get("responsible_user_id"):
            data["responsible_user"] = str(change["responsible_user_id"])
        identity = (
            f"{change['id']}|{change.get('status_id')}|{change.get('old_status_id')}|{change.get('last_modified', '')}"
        )
        event_id = qualified(runtime.account, "amocrm:" + hashlib.sha256(identity.encode()).hexdigest()[:32])
        if runtime.event_ledger.add(event_id, "deal.closed", data, utc_now()):
            runtime.queue_work(WorkKind.HANDLE_EVENT, event_id)
        accepted.append(event_id)
    return jsonify(accepted=len(accepted)), 200
