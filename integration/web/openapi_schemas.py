"""Marshmallow schemas that only describe HTTP answers and inputs the views read by hand.

The request bodies the views validate with marshmallow (``integration.web.schemas``) are
documented from those schemas themselves; these cover the rest for ``/openapi.json``: the answers
(``{"id", "status"}``, the callback status view, the pages of ``/api/*``), the query filters the
views parse by hand, and the Bitrix24 and amoCRM forms. Nothing here validates a request.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

from integration.ledger.calls import DELIVERY_STATES
from integration.models import CallbackStatus, CallStatus, Direction

CALLBACK_STATUSES = [status.value for status in CallbackStatus]
DIRECTIONS = [direction.value for direction in Direction]
CALL_STATUSES = [status.value for status in CallStatus]
E164 = validate.Regexp(r"^\+[0-9]+$")  # what phonenumbers writes: ASCII digits only
CONTRACT_NUMBER = validate.Regexp(r"^[0-9]{10}$")


def _text(description: str, **kwargs: Any) -> fields.Str:
    return fields.Str(metadata={"description": description}, **kwargs)


def _nullable(field: type[fields.Field], description: str, **kwargs: Any) -> fields.Field:
    return field(required=True, allow_none=True, metadata={"description": description}, **kwargs)


# --- answers ------------------------------------------------------------------------------------


class AcceptedSchema(Schema):
    """202 of a click-to-call or a callback request: the request's id and its state."""

    id = _text("the click-to-call request id (for GET /api/callbacks/{request_id})", required=True)
    status = fields.Str(required=True, validate=validate.OneOf(CALLBACK_STATUSES))


class EventAcceptedSchema(Schema):
    """202 of a CRM event: its ``webhook-id``; a redelivery gets the same answer."""

    id = _text("the webhook-id the event came with", required=True)
    status = fields.Str(required=True, validate=validate.OneOf(["accepted"]))


class Bitrix24AnswerSchema(Schema):
    """200 of a Bitrix24 event: a click-to-call (``id``, ``status``) or ``ignored`` with the event."""

    id = _text("the click-to-call request id (events that place a call)")
    status = fields.Str(required=True, validate=validate.OneOf([*CALLBACK_STATUSES, "ignored"]))
    event = _text("the event's name, upper-cased (ignored events)")


class AmocrmAnswerSchema(Schema):
    accepted = fields.Int(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "how many won/lost lead changes became deal.closed events"},
    )


class CallbackViewSchema(Schema):
    """A click-to-call request as ``GET /api/callbacks/{request_id}`` shows it."""

    id = fields.Str(required=True)
    status = fields.Str(required=True, validate=validate.OneOf(CALLBACK_STATUSES))
    source = _text("webhook, form, rule, bitrix24, bitrix24-form, …", required=True)
    from_ = _text("the contract number that rings first", data_key="from", required=True, validate=CONTRACT_NUMBER)
    to = _text("the number dialled, E.164", required=True, validate=E164)
    to_raw = _text("the number as it was given", required=True)
    created_at = fields.DateTime(required=True)
    placing_at = _nullable(fields.DateTime, "when the operator was called")
    finished_at = _nullable(fields.DateTime, "when the outcome was known")
    reason = _nullable(fields.Str, "why it failed, expired or is unknown")
    request_hash = _nullable(fields.Str, "the operator's hash of the request")
    crm_user = _nullable(fields.Str, "the CRM user who clicked")
    crm = _nullable(fields.Dict, "the context the click-to-call came with")


class ExternalNumberSchema(Schema):
    e164 = _nullable(fields.Str, "E.164 whenever it parses; null for internal numbers", validate=E164)
    raw = _text("as the operator wrote it", required=True)


class CallExternalSchema(ExternalNumberSchema):
    internal = fields.Bool(required=True)


class CallSchema(Schema):
    """A call of the ledger with its delivery state."""

    id = _text("stable id of the call", required=True)
    line = _text("the contract number, 10 digits", required=True, validate=CONTRACT_NUMBER)
    direction = fields.Str(required=True, validate=validate.OneOf(DIRECTIONS))
    status = fields.Str(required=True, validate=validate.OneOf(CALL_STATUSES))
    started_at = fields.DateTime(required=True, metadata={"description": "UTC"})
    duration = fields.Int(required=True, validate=validate.Range(min=0), metadata={"description": "talk time, s"})
    external = fields.Nested(CallExternalSchema, required=True)
    service = _nullable(fields.Str, "the operator's service name")
    record_file_id = _nullable(fields.Str, "the operator's recording id")
    callback_request_id = _nullable(fields.Str, "the click-to-call that made this call")
    delivery = _nullable(fields.Str, "pending, delivered or failed for the CRM backend; null before the first try")


class ContactSchema(Schema):
    id = fields.Str(required=True)
    name = fields.Str(required=True)
    phone = _text("E.164", required=True, validate=E164)
    phone_raw = fields.Str(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ActivitySchema(Schema):
    id = fields.Str(required=True)
    call_id = fields.Str(required=True)
    contact_ids = fields.List(fields.Str(), required=True)
    direction = fields.Str(required=True, validate=validate.OneOf(DIRECTIONS))
    status = fields.Str(required=True, validate=validate.OneOf(CALL_STATUSES))
    started_at = fields.DateTime(required=True)
    duration = fields.Int(required=True, validate=validate.Range(min=0))
    line = fields.Str(required=True, validate=CONTRACT_NUMBER)
    external = fields.Nested(ExternalNumberSchema, required=True)
    responsible_user = _nullable(fields.Str, "CRM user of the line ([users])")
    callback_request_id = _nullable(fields.Str, "the click-to-call that made this call")
    recording_url = _nullable(fields.Str, "the signed link of its stored recording")


def _page(item: type[Schema], name: str) -> type[Schema]:
    """``{"items": [...], "next_offset": n | null}`` of ``item``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_offset": _nullable(fields.Int, "the offset of the next page; null on the last page"),
        },
        name=name,
    )


CallsPageSchema = _page(CallSchema, "CallsPage")
ContactsPageSchema = _page(ContactSchema, "ContactsPage")
ActivitiesPageSchema = _page(ActivitySchema, "ActivitiesPage")


class VatsSettingsViewSchema(Schema):
    num = fields.Str(required=True)
    base = _text("fingerprint of the live settings (send it back with plan/apply)", required=True)
    settings = fields.Dict(
        required=True, metadata={"description": "the editable document, as `flask --app wsgi vats export` writes it"}
    )
    week = fields.List(fields.Str(), required=True, metadata={"description": "the weekly view's lines"})


class ChangeSchema(Schema):
    where = fields.Str(required=True)
    before = fields.Raw(required=True, allow_none=True)
    after = fields.Raw(required=True, allow_none=True)
    text = fields.Str(required=True)


class PlanSchema(Schema):
    num = fields.Str(required=True)
    base = fields.Str(required=True)
    live_base = fields.Str(required=True)
    stale = fields.Bool(required=True)
    problems = fields.List(fields.Str(), required=True)
    changes = fields.List(fields.Nested(ChangeSchema), required=True)


class AppliedSchema(PlanSchema):
    applied = fields.Int(required=True, metadata={"description": "how many changes were written"})
    verified = fields.Bool(required=True, metadata={"description": "read back and equal to what was sent"})


class HealthSchema(Schema):
    status = fields.Str(required=True, validate=validate.OneOf(["ok"]))


class ReadySchema(Schema):
    status = fields.Str(required=True, validate=validate.OneOf(["ready"]))
    checks = fields.Dict(
        keys=fields.Str(), values=fields.Str(), required=True, metadata={"description": "redis, database, operator"}
    )


# --- inputs the views read by hand --------------------------------------------------------------


class PageQuerySchema(Schema):
    limit = fields.Int(load_default=100, validate=validate.Range(1, 500))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0))


class CallsQuerySchema(PageQuerySchema):
    line = _text("a contract number (OPERATOR_NUMBERS)")
    number = _text("any format; matched on the last 10 digits")
    direction = fields.Str(validate=validate.OneOf(["inbound", "outbound"]))
    status = fields.Str(validate=validate.OneOf(CALL_STATUSES))
    delivery = fields.Str(
        validate=validate.OneOf(DELIVERY_STATES), metadata={"description": "the call's delivery to the CRM"}
    )
    since = _text("YYYY-MM-DD (a whole day in OPERATOR_TIMEZONE) or ISO 8601 with an offset")
    until = _text("YYYY-MM-DD (inclusive) or ISO 8601 with an offset")


class ContactsQuerySchema(PageQuerySchema):
    phone = _text("any format")


class ActivitiesQuerySchema(PageQuerySchema):
    contact_id = fields.Str()


class WidgetClickToCallSchema(Schema):
    """``POST /widget/amocrm/click-to-call``: only the number; the caller comes from the token."""

    class Meta:
        unknown = RAISE

    to = fields.Str(required=True, metadata={"description": "the number to connect, any format"})


class Bitrix24EventSchema(Schema):
    """A Bitrix24 telephony event as Bitrix24 posts it (``data[…]``, ``auth[…]``)."""

    class Meta:
        unknown = INCLUDE

    event = _text("ONEXTERNALCALLSTART or ONEXTERNALCALLBACKSTART; others are ignored", required=True)
    call_id = fields.Str(data_key="data[CALL_ID]")
    user_id = fields.Str(data_key="data[USER_ID]")
    phone = fields.Str(data_key="data[PHONE_NUMBER]")
    phone_international = fields.Str(data_key="data[PHONE_NUMBER_INTERNATIONAL]")
    entity_type = fields.Str(data_key="data[CRM_ENTITY_TYPE]")
    entity_id = fields.Str(data_key="data[CRM_ENTITY_ID]")
    ts = fields.Str()
    application_token = _text("must equal BITRIX24_APP_TOKEN", data_key="auth[application_token]", required=True)


class AmocrmWebhookSchema(Schema):
    """An amoCRM "lead stage changed" webhook (PHP-style nested form keys)."""

    class Meta:
        unknown = INCLUDE

    lead_id = fields.Str(data_key="leads[status][0][id]")
    status_id = _text("142 won, 143 lost; other stages are ignored", data_key="leads[status][0][status_id]")
    old_status_id = fields.Str(data_key="leads[status][0][old_status_id]")
    pipeline_id = fields.Str(data_key="leads[status][0][pipeline_id]")
    responsible_user_id = fields.Str(data_key="leads[status][0][responsible_user_id]")
    last_modified = fields.Str(data_key="leads[status][0][last_modified]")
    account_id = fields.Str(data_key="account[id]")
    subdomain = fields.Str(data_key="account[subdomain]")


# --- errors (plain JSON Schema: the field messages nest, which marshmallow cannot say) -------------

PROBLEM_ERRORS: dict[str, Any] = {
    "type": "object",
    "description": "messages per field; a nested object for the fields of a nested object",
    "additionalProperties": {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"$ref": "#/components/schemas/ProblemErrors"}]
    },
}

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; some answers add members (checks, base, live_base, leftovers)",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "default": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {"$ref": "#/components/schemas/ProblemErrors"},
    },
    "additionalProperties": True,
}
