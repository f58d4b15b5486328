"""Outgoing payloads (marshmallow): what CRMs receive about calls."""

from __future__ import annotations

from marshmallow import Schema, fields


class ExternalNumberSchema(Schema):
    e164 = fields.Str(attribute="ext_e164", allow_none=True)
    raw = fields.Str(attribute="ext_raw")


class CallCompletedDataSchema(Schema):
    """``data`` of the ``call.completed`` event."""

    call_id = fields.Str()
    direction = fields.Function(lambda a: a.direction.value)
    status = fields.Function(lambda a: a.status.value)
    started_at = fields.DateTime(format="iso")
    duration = fields.Int()
    line = fields.Str()
    external = fields.Function(lambda a: ExternalNumberSchema().dump(a))
    responsible_user = fields.Str(allow_none=True)
    contact_ids = fields.List(fields.Str())
    recording_url = fields.Str(allow_none=True)
    callback = fields.Function(
        lambda a: {"id": a.callback_request_id, "crm": a.callback_crm} if a.callback_request_id else None
    )


def event_schema(event_type: str, data: dict) -> dict:
    """The JSON Schema of an outgoing event: the envelope every event shares, around ``data``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": event_type,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": event_type},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": data,
        },
    }


CALL_COMPLETED_SCHEMA = event_schema(
    "call.completed",
    {
        "type": "object",
        "required": ["call_id", "direction", "status", "started_at", "duration", "line", "external"],
        "properties": {
            "call_id": {"type": "string", "description": "stable id of the call in vats-bridge"},
            "direction": {"enum": ["inbound", "outbound", "unknown"]},
            "status": {"enum": ["answered", "missed", "voicemail"]},
            "started_at": {"type": "string", "format": "date-time", "description": "UTC"},
            "duration": {"type": "integer", "minimum": 0, "description": "talk time, seconds"},
            "line": {"type": "string", "description": "our contract number, 10 digits"},
            "external": {
                "type": "object",
                "properties": {
                    "e164": {
                        "type": ["string", "null"],
                        "description": "E.164 whenever it parses; null for internal numbers",
                    },
                    "raw": {"type": "string", "description": "as the operator wrote it"},
                },
            },
            "responsible_user": {"type": ["string", "null"], "description": "CRM user of the line ([users])"},
            "contact_ids": {"type": "array", "items": {"type": "string"}},
            "recording_url": {"type": ["string", "null"]},
            "callback": {
                "type": ["object", "null"],
                "description": "the click-to-call that made this call, with the CRM context it came with",
                "properties": {"id": {"type": "string"}, "crm": {"type": ["object", "null"]}},
            },
        },
    },
)


CALLBACK_FINISHED_SCHEMA = event_schema(
    "callback.finished",
    {
        "type": "object",
        "required": ["id", "status", "from", "to", "created_at"],
        "properties": {
            "id": {"type": "string", "description": "the click-to-call request id (as answered by the webhook)"},
            "status": {"enum": ["placed", "failed", "expired", "unknown"]},
            "source": {"type": "string"},
            "from": {"type": "string", "description": "the contract number that rang first"},
            "to": {"type": "string", "description": "E.164"},
            "to_raw": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "placing_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "reason": {"type": ["string", "null"]},
            "request_hash": {"type": ["string", "null"]},
            "crm_user": {"type": ["string", "null"]},
            "crm": {"type": ["object", "null"], "description": "the context the click-to-call came with"},
        },
    },
)


RECORDING_READY_SCHEMA = event_schema(
    "recording.ready",
    {
        "type": "object",
        "required": ["call_id", "recording_id", "url", "content_type", "size", "sha256"],
        "properties": {
            "call_id": {"type": "string", "description": "the call.completed event's call_id"},
            "recording_id": {"type": "string"},
            "url": {
                "type": ["string", "null"],
                "description": "signed link (Range supported); null when RECORDING_LINK_KEYS is not set",
            },
            "content_type": {"const": "audio/mpeg"},
            "size": {"type": "integer", "minimum": 1, "description": "bytes"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
    },
)
