"""``/api/vats/<num>``: the PBX routing settings over HTTP (get, plan, apply), behind ``API_TOKEN``.

The body of ``plan`` and ``apply`` is the editable document ``GET`` returns (``settings``), with
its ``base``: a plan against live settings that changed since is ``409``, broken rules ``422``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from integration.errors import InvalidPhoneNumber, OperatorError, OutcomeUnknown
from integration.vats.files import export_document
from integration.vats.plan import NotVerified, Plan, PlanRefused, apply, make_plan, read_live
from integration.vats.view import weekly_view
from integration.web.api import require_token
from integration.web.errors import Problem
from integration.web.inputs import json_body
from integration.web.state import web

vats_api = Blueprint("vats_api", __name__, url_prefix="/api/vats")
vats_api.before_request(require_token)


@vats_api.get("/<num>")
def get_settings(num: str):
    live = _live(_number(num))
    document = export_document(live)
    response = jsonify(
        {"num": document["num"], "base": document["base"], "settings": document, "week": weekly_view(live)}
    )
    response.headers["ETag"] = f'"{document["base"]}"'
    return response


@vats_api.post("/<num>/plan")
def plan_settings(num: str):
    number = _number(num)
    plan = _checked(make_plan(_edited(number), _live(number)))
    return jsonify(plan.as_dict())


@vats_api.post("/<num>/apply")
def apply_settings(num: str):
    number = _number(num)
    runtime = web().runtime
    try:
        plan = apply(runtime.operator, runtime.redis, _edited(number), number)
    except PlanRefused as exc:
        _checked(exc.plan)
        raise
    except NotVerified as exc:
        raise Problem(502, "Not verified", str(exc), leftovers=[change.as_dict() for change in exc.leftovers]) from None
    except OutcomeUnknown as exc:
        raise Problem(504, "Outcome unknown", f"{exc}; plan again to see whether it was applied") from None
    except OperatorError as exc:
        raise Problem(502, "Operator error", str(exc)) from None
    return jsonify(plan.as_dict() | {"applied": len(plan.changes), "verified": True})


def _number(raw: str) -> str:
    try:
        return web().runtime.settings.own_number(raw)
    except InvalidPhoneNumber as exc:
        raise Problem(404, "Not Found", f"{raw!r} is not a contract number here: {exc.reason}") from None


def _live(num: str) -> dict:
    try:
        return read_live(web().runtime.operator, num)
    except OperatorError as exc:
        raise Problem(502, "Operator error", str(exc)) from None


def _edited(num: str) -> dict:
    body = json_body(request.get_data())
    errors = {}
    if not isinstance(body.get("base"), str):
        errors["base"] = ["required: the base of the settings this document was made from (GET's base)"]
    if str(body.get("num", num)) != num:
        errors["num"] = [f"the document is for {body.get('num')}, not {num}"]
    if errors:
        raise Problem(422, "Invalid request", f"check these fields: {', '.join(errors)}", errors=errors)
    return body


def _checked(plan: Plan) -> Plan:
    """The plan, or the problem that stops it: 409 for stale live settings, 422 for broken rules."""
    if plan.stale:
        raise Problem(409, "Conflict", str(PlanRefused(plan)), extra={"base": plan.base, "live_base": plan.live_base})
    if plan.problems:
        errors: dict[str, list[str]] = {}
        for problem in plan.problems:
            where, _, why = problem.partition(": ")
            errors.setdefault(where, []).append(why)
        raise Problem(422, "Invalid settings", f"{len(plan.problems)} problem(s)", errors=errors)
    return plan
