"""``/api/*``: read-only views for CRMs and operators of the service, behind ``Bearer API_TOKEN``."""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, jsonify, request

from integration.callbacks import current_status, public_view
from integration.crm.base import BrowsesContacts
from integration.models import Call
from integration.phone import parse_phone
from integration.web.call_filters import call_conditions
from integration.web.errors import Problem
from integration.web.inputs import reading, whole_number
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


@api.get("/callbacks/<request_id>")
def callback_status(request_id: str):
    """``queued | placing | placed | failed | expired | unknown`` with times, numbers and reason."""
    runtime = web().runtime
    found = current_status(request_id, runtime.callback_ledger, runtime.intake)
    if found is None:
        raise Problem(404, "Not Found", f"no callback request {request_id}")
    return jsonify(public_view(found))


MAX_OFFSET = 10**9


def _page() -> tuple[int, int]:
    """``limit`` (1–500, default 100) and ``offset`` (default 0) of a listing."""
    with reading("limit"):
        limit = whole_number(request.args.get("limit", "100"), 1, 500)
    with reading("offset"):
        offset = whole_number(request.args.get("offset", "0"), 0, MAX_OFFSET)
    return limit, offset


def _paged(items: list, limit: int, offset: int):
    return jsonify(items=items, next_offset=offset + limit if len(items) == limit else None)


@api.get("/calls")
def list_calls():
    """The ledger of calls, newest first: ``line``, ``number``, ``direction``, ``status``,
    ``delivery``, ``since``, ``until`` (YYYY-MM-DD or ISO 8601), ``limit``, ``offset``."""
    runtime = web().runtime
    limit, offset = _page()
    conditions = call_conditions(request.args, runtime.settings)
    page = runtime.call_ledger.page(conditions, limit, offset, runtime.crm.name)
    return _paged([call_view(call, delivery) for call, delivery in page], limit, offset)


def call_view(call: Call, delivery: str | None) -> dict:
    return {
        "id": call.id,
        "line": call.line,
        "direction": call.direction.value,
        "status": call.status.value,
        "started_at": call.started_at.isoformat(),
        "duration": call.duration,
        "external": {"e164": call.ext_e164, "raw": call.ext_raw, "internal": call.ext_internal},
        "service": call.service,
        "record_file_id": call.record_file_id,
        "callback_request_id": call.callback_request_id,
        "delivery": delivery,
    }


def _local_crm() -> BrowsesContacts:
    crm = web().runtime.crm
    if not isinstance(crm, BrowsesContacts):
        raise Problem(404, "Not Found", "contacts and activities live in the local CRM; CRM_BACKEND is not local")
    return crm


@api.get("/contacts")
def list_contacts():
    """The local CRM's contacts: ``phone`` (any format), ``limit``, ``offset``."""
    crm = _local_crm()
    limit, offset = _page()
    phone = None
    if request.args.get("phone"):
        with reading("phone"):
            phone = parse_phone(request.args["phone"], web().runtime.settings.default_region)
    return _paged(crm.contacts_page(limit, offset, phone), limit, offset)


@api.get("/activities")
def list_activities():
    """The local CRM's call activities, newest first: ``contact_id``, ``limit``, ``offset``."""
    crm = _local_crm()
    limit, offset = _page()
    links, now = web().runtime.links, time.time()
    items = crm.activities_page(limit, offset, request.args.get("contact_id"))
    for item in items:
        recording_id = item.pop("recording_id")
        item["recording_url"] = links.url(recording_id, now) if recording_id else None
    return _paged(items, limit, offset)
