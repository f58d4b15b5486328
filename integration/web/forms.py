"""``POST /callback-requests``: the public website "call me back" form (JSON or form-encoded)."""

from __future__ import annotations

import ipaddress
import uuid

from flask import Blueprint, jsonify, request

from integration.callbacks import ClickToCall
from integration.web.cors import allowed_origin, browser_endpoint, preflight
from integration.web.errors import Problem
from integration.web.inputs import json_body
from integration.web.state import web

forms = Blueprint("forms", __name__)


@forms.route("/callback-requests", methods=["POST", "OPTIONS"])
@browser_endpoint
def callback_request():
    """A visitor asks to be called back: the form's contract number rings, then the visitor."""
    if request.method == "OPTIONS":
        return preflight("Content-Type")
    if request.headers.get("Origin") and not allowed_origin():
        raise Problem(403, "Forbidden", "this website may not post callback requests (CORS_ORIGINS)")
    data = json_body(request.get_data()) if request.is_json else request.form.to_dict()
    form = web().form_schema.load(data)
    metrics = web().runtime.metrics
    if form["website"]:
        # A bot filled the hidden field: answer as usual so it learns nothing, do nothing.
        metrics.inc("vats_callback_requests_total", outcome="honeypot")
        return jsonify(id=uuid.uuid4().hex, status="queued"), 202
    settings = web().runtime.settings
    destination = form["destination"]
    wait, limit = web().rate_limiter.attempt(
        [
            ("total", settings.callback_request_limit_total),
            (f"ip:{client_key()}", settings.callback_request_limit_per_ip),
            (f"number:{destination.e164}", settings.callback_request_limit_per_number),
        ]
    )
    if limit:
        metrics.inc("vats_callback_requests_total", outcome="limited_" + limit.partition(":")[0])
        raise Problem(
            429,
            "Too Many Requests",
            f"too many callback requests; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    metrics.inc("vats_callback_requests_total", outcome="accepted")
    context = {key: form[key] for key in ("name", "comment", "page_url") if form[key]}
    order = ClickToCall(
        phone_from=settings.form_number, destination=destination, source="form", crm_context=context or None
    )
    accepted, _ = web().runtime.intake.submit(order)
    return jsonify(id=accepted.id, status=accepted.status.value), 202


def client_key() -> str:
    """The client's address as a rate-limit key: an IPv6 client by its /64 (one subscriber's
    whole network). A forwarded "address" that is not one falls back to the direct peer."""
    proxied = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
    for candidate in (request.remote_addr, proxied):
        try:
            address = ipaddress.ip_address(candidate or "")
        except ValueError:
            continue
        if address.version == 6 and address.ipv4_mapped:
            return str(address.ipv4_mapped)
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)
    return "unknown"
