"""``POST /callback-requests``: the public website "call me back" form (JSON or form-encoded)."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify, request

from integration.callbacks import ClickToCall
from integration.web.cors import allowed_origin, preflight, with_cors
from integration.web.errors import Problem
from integration.web.state import web

forms = Blueprint("forms", __name__)


@forms.route("/callback-requests", methods=["POST", "OPTIONS"])
def callback_request():
    """A visitor asks to be called back: the form's contract number rings, then the visitor."""
    allowed = allowed_origin()
    if request.method == "OPTIONS":
        return preflight(allowed, "Content-Type")
    if request.headers.get("Origin") and not allowed:
        raise Problem(403, "Forbidden", "this website may not post callback requests (CORS_ORIGINS)")
    data = request.get_json() if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise Problem(422, "Invalid request", "the body must be a JSON object")
    form = web().form_schema.load(data)
    if form["website"]:
        # A bot filled the hidden field: answer as usual so it learns nothing, do nothing.
        web().runtime.metrics.inc("vats_callback_requests_total", outcome="honeypot")
        return with_cors(jsonify(id=uuid.uuid4().hex, status="queued"), allowed), 202
    settings = web().runtime.settings
    destination = form["destination"]
    wait = web().rate_limiter.hit(
        [
            (f"number:{destination.e164}", settings.callback_request_limit_per_number),
            (f"ip:{request.remote_addr}", settings.callback_request_limit_per_ip),
        ]
    )
    if wait:
        raise Problem(
            429,
            "Too Many Requests",
            f"too many callback requests; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    context = {key: form[key] for key in ("name", "comment", "page_url") if form[key]}
    order = ClickToCall(
        phone_from=settings.form_number, destination=destination, source="form", crm_context=context or None
    )
    accepted, _ = web().runtime.intake.submit(order)
    return with_cors(jsonify(id=accepted.id, status=accepted.status.value), allowed), 202
