"""``/api/*``: read-only views for CRMs and operators of the service, behind ``Bearer API_TOKEN``."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request

from integration.callbacks import current_status
from integration.models import CallbackRequest
from integration.web.errors import Problem
from integration.web.state import web

api = Blueprint("api", __name__, url_prefix="/api")


@api.before_request
def require_token() -> None:
    expected = web().runtime.settings.api_token
    if not expected:
        raise Problem(403, "Forbidden", "the API is disabled: set API_TOKEN on the server")
    header = request.headers.get("Authorization", "")
    scheme, _, offered = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), expected.encode()):
        raise Problem(
            401, "Unauthorized", "send Authorization: Bearer <API_TOKEN>", headers={"WWW-Authenticate": "Bearer"}
        )


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def callback_view(request_: CallbackRequest) -> dict:
    return {
        "id": request_.id,
        "status": request_.status.value,
        "source": request_.source,
        "from": request_.phone_from,
        "to": request_.phone_to,
        "to_raw": request_.phone_to_raw,
        "created_at": _iso(request_.created_at),
        "placing_at": _iso(request_.placing_at),
        "finished_at": _iso(request_.finished_at),
        "reason": request_.reason,
        "request_hash": request_.request_hash,
        "crm_user": request_.crm_user,
        "crm": request_.crm_context,
    }


@api.get("/callbacks/<request_id>")
def callback_status(request_id: str):
    """``queued | placing | placed | failed | expired | unknown`` with times, numbers and reason."""
    runtime = web().runtime
    found = current_status(request_id, runtime.callback_ledger, runtime.intake)
    if found is None:
        raise Problem(404, "Not Found", f"no callback request {request_id}")
    return jsonify(callback_view(found))
