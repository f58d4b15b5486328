"""``POST /webhooks/amocrm/<secret>``: amoCRM/Kommo webhooks (form-encoded, ``leads[status][0][…]``).

A lead moved to "won" (status 142) or "lost" (143) becomes a ``deal.closed`` event for the rules;
the deal's contact numbers and responsible user are looked up when the event is handled. The
secret path segment (``AMOCRM_WEBHOOK_SECRET``) is compared in constant time; a wrong one is 404.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from flask import Blueprint, jsonify, request

from integration.operator.auth import utc_now
from integration.queues import DEFAULT, enqueue_handle_event, make_queue
from integration.web.errors import Problem
from integration.web.state import web

amocrm = Blueprint("amocrm", __name__)
WON, LOST = 142, 143  # amoCRM's fixed ids of the closing stages
_PART = re.compile(r"\[([^\]]*)\]")


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


@amocrm.post("/webhooks/amocrm/<secret>")
def amocrm_webhook(secret: str):
    expected = web().runtime.settings.amocrm_webhook_secret
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise Problem(404, "Not Found", "no such page")
    body = php_form(request.form)
    runtime = web().runtime
    accepted = []
    changes = (body.get("leads") or {}).get("status") or {}
    for change in changes.values() if isinstance(changes, dict) else []:
        status = {str(WON): "won", str(LOST): "lost"}.get(str(change.get("status_id")))
        if status is None or not change.get("id"):
            continue
        data = {"deal_id": str(change["id"]), "status": status, "source": "amocrm"}
        if change.get("responsible_user_id"):
            data["responsible_user"] = str(change["responsible_user_id"])
        identity = (
            f"{change['id']}|{change.get('status_id')}|{change.get('old_status_id')}|{change.get('last_modified', '')}"
        )
        event_id = "amocrm:" + hashlib.sha256(identity.encode()).hexdigest()[:32]
        if runtime.event_ledger.add(event_id, "deal.closed", data, utc_now()):
            enqueue_handle_event(make_queue(DEFAULT, runtime.redis), event_id)
        accepted.append(event_id)
    return jsonify(accepted=len(accepted)), 200
