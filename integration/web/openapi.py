"""``GET /openapi.json``: the OpenAPI 3.1 description of every HTTP endpoint.

The paths are declared here, in one table (``operations``): what each operation takes, what it
answers and which problems (``application/problem+json``) it can give, and when. Bodies and answers
are described by marshmallow schemas — the ones the views validate with
(``integration.web.schemas``) and, for answers and the inputs views read by hand,
``integration.web.openapi_schemas`` — turned into JSON Schema by apispec's ``MarshmallowPlugin``.
Only operations the app really serves are listed (a declared route whose blueprint is not
registered is left out). The document is built once per app, on the first request.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app
from marshmallow import fields

from integration.config import Settings
from integration.web import openapi_schemas as docs
from integration.web.errors import PROBLEM
from integration.web.schemas import CallbackFormSchema, ClickToCallSchema, CrmEventSchema, NumberField

openapi = Blueprint("openapi", __name__)
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CACHE_KEY = "vats.openapi"

# --- security ----------------------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "webhookId": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-id",
        "description": "Standard Webhooks (https://www.standardwebhooks.com/): the message id, also the "
        "idempotency key. Sent together with webhook-timestamp and webhook-signature.",
    },
    "webhookTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-timestamp",
        "description": "Standard Webhooks: Unix seconds, within ±5 minutes of the server's clock.",
    },
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": 'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with a '
        "WEBHOOK_SECRET (`whsec_…`, the base64 after the prefix is the key); several space-separated "
        "signatures are accepted.",
    },
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <API_TOKEN>`. Without API_TOKEN on the server the API answers 403.",
    },
    "amocrmOneTimeToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Token",
        "description": "amoCRM/Kommo one-time token of the widget: a JWT (HS256) signed with the integration's "
        "secret key (AMOCRM_CLIENT_SECRET); the caller is its `user_id` (their number from [users]).",
    },
}
SIGNED: list[dict] = [{"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}]
BEARER: list[dict] = [{"apiToken": []}]
ONE_TIME_TOKEN: list[dict] = [{"amocrmOneTimeToken": []}]
PUBLIC: list[dict] = []

DESCRIPTION = """\
Connects a virtual PBX operator's Integration API to CRMs.

Every error is `application/problem+json` (RFC 9457). Authentication per endpoint:
Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`) on
`/webhooks/click-to-call` and `/webhooks/events`; `Authorization: Bearer API_TOKEN` on `/api/*`;
the Bitrix24 application token as the form field `auth[application_token]` (equal to
BITRIX24_APP_TOKEN) on `/webhooks/bitrix24`; a secret path segment (AMOCRM_WEBHOOK_SECRET) on
`/webhooks/amocrm/{secret}`; a signed link (`sig`, `exp`) on recordings; the amoCRM one-time
token on the widget's click-to-call."""

# --- answers -----------------------------------------------------------------------------------

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": {
        "description": "the request's Origin, when CORS_ORIGINS allows it",
        "schema": {"type": "string"},
    },
    "Vary": {"description": "`Origin`, with Access-Control-Allow-Origin", "schema": {"type": "string"}},
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer"}}}
INVALID_EXAMPLE = {
    "type": "about:blank",
    "title": "Invalid request",
    "status": 422,
    "detail": "check these fields: to",
    "errors": {"to": ["premium-rate numbers are not dialled (ALLOW_PREMIUM_NUMBERS is off)"]},
}
TOO_LARGE = "the body is larger than MAX_BODY_BYTES"
ALLOW = {"Allow": {"description": "the methods this path serves", "required": True, "schema": {"type": "string"}}}


def answer(
    description: str,
    schema: Any = None,
    *,
    media: str = JSON,
    example: Any = None,
    headers: dict | None = None,
) -> dict:
    """A response object: ``schema`` (a marshmallow schema or JSON Schema) in ``media``."""
    result: dict[str, Any] = {"description": description}
    if schema is not None:
        content: dict[str, Any] = {"schema": schema}
        if example is not None:
            content["example"] = example
        result["content"] = {media: content}
    if headers:
        result["headers"] = headers
    return result


def problem(description: str, *, headers: dict | None = None, example: dict | None = None) -> dict:
    return answer(description, PROBLEM_REF, media=PROBLEM, headers=headers, example=example)


def problems(when: dict[int, str]) -> dict[str, dict]:
    """Problem answers by status, each with when it happens; 429 carries ``Retry-After``."""
    result = {}
    for status, text in when.items():
        headers = RETRY_AFTER if status == 429 else None
        example = INVALID_EXAMPLE if status == 422 and "field" in text else None
        result[str(status)] = problem(text, headers=headers, example=example)
    return result


def json_body(schema: Any, examples: dict[str, Any], media: tuple[str, ...] = (JSON,)) -> dict:
    """A required request body; ``examples`` by name."""
    named = {name: {"value": value} for name, value in examples.items()}
    return {"required": True, "content": {kind: {"schema": schema, "examples": named} for kind in media}}


def path_parameter(name: str, description: str, **schema: Any) -> dict:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string"} | schema,
    }


def header_parameter(name: str, description: str, *, required: bool = False) -> dict:
    return {
        "in": "header",
        "name": name,
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def preflight(summary: str, headers: str) -> dict:
    """The CORS preflight of a browser endpoint (answered without a body)."""
    return {
        "summary": summary,
        "tags": ["cors"],
        "security": PUBLIC,
        "parameters": [
            header_parameter("Origin", "the website", required=True),
            header_parameter("Access-Control-Request-Method", "POST"),
            header_parameter("Access-Control-Request-Headers", f"any of: {headers}"),
        ],
        "responses": {
            "204": answer(
                "the origin is in CORS_ORIGINS",
                headers=CORS_HEADERS
                | {
                    "Access-Control-Allow-Methods": {"schema": {"type": "string"}},
                    "Access-Control-Allow-Headers": {"schema": {"type": "string"}},
                    "Access-Control-Max-Age": {"schema": {"type": "integer"}},
                },
            ),
        }
        | problems({403: "the origin is not in CORS_ORIGINS"}),
    }


# --- the table of operations -------------------------------------------------------------------

ACCEPTED_EXAMPLE = {"id": "c7407289d1b84f0c9b8e3f7c2a1d5e60", "status": "queued"}
CALLBACK_EXAMPLE = {
    "id": "c7407289d1b84f0c9b8e3f7c2a1d5e60",
    "status": "placed",
    "source": "webhook",
    "from": "4990000000",
    "to": "+79161234567",
    "to_raw": "+7 916 123-45-67",
    "created_at": "2026-11-27T02:44:03.440192+00:00",
    "placing_at": "2026-11-27T02:44:03.452001+00:00",
    "finished_at": "2026-11-27T02:44:03.701113+00:00",
    "reason": None,
    "request_hash": "mHk+xM5p",
    "crm_user": None,
    "crm": {"deal": 42},
}
CALL_EXAMPLE = {
    "id": "rec:bec3e80f-7e1c-4a51-9d7a-0f2b8c1e9a44",
    "line": "4990000000",
    "direction": "inbound",
    "status": "answered",
    "started_at": "2026-11-20T07:00:00+00:00",
    "duration": 65,
    "external": {"e164": "+79161234567", "raw": "89161234567", "internal": False},
    "service": "local",
    "record_file_id": "bec3e80f-7e1c-4a51-9d7a-0f2b8c1e9a44",
    "callback_request_id": None,
    "delivery": "delivered",
}
PLAN_EXAMPLE = {
    "num": "4990000000",
    "base": "c673be8cdef0841e",
    "live_base": "c673be8cdef0841e",
    "stale": False,
    "problems": [],
    "changes": [
        {
            "where": "profile «Main» › block «Working hours» › Fri",
            "before": "08:00-20:00",
            "after": "08:00-17:00",
            "text": "~ profile «Main» › block «Working hours» › Fri: 08:00-20:00 → 08:00-17:00",
        }
    ],
}
SETTINGS_DOCUMENT = {
    "description": "the editable settings document GET answered as `settings` (fields left out keep their live "
    "values), with its `base`",
    "type": "object",
    "required": ["base"],
    "properties": {"base": {"type": "string"}, "num": {"type": ["string", "integer"]}},
    "additionalProperties": True,
}
SETTINGS_EXAMPLE = {"num": "4990000000", "base": "c673be8cdef0841e", "isDoNotDisturbMode": 0}
VATS_PROBLEMS = {
    400: "the body is not a JSON object",
    401: "no or wrong bearer token",
    403: "the API is disabled (no API_TOKEN on the server)",
    404: "not a contract number here (OPERATOR_NUMBERS)",
    409: "the live settings changed since `base` (the problem carries `base` and `live_base`)",
    413: TOO_LARGE,
    422: "`base` missing or another number's document; or the operator's rules are broken: `errors` keyed by "
    "location, e.g. `4990000000 › profile «Main» › Mon`",
}
API_PROBLEMS = {401: "no or wrong bearer token", 403: "the API is disabled (no API_TOKEN on the server)"}
NUM = path_parameter("num", "a contract number (OPERATOR_NUMBERS), any format")


def operations(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every operation by OpenAPI path and method; schemas bound to ``settings`` where they need it."""
    click_to_call = ClickToCallSchema(settings)
    callback_form = CallbackFormSchema(settings)
    return {
        "/webhooks/click-to-call": {
            "post": {
                "operationId": "clickToCall",
                "summary": "Ring a caller's own phone, then connect a customer",
                "description": "`to`: any format, a valid dialable number (premium-rate and international numbers "
                "only when allowed); exactly one of `from` (a contract number) or `user` (a CRM user id from "
                "[users]); `crm`: any object, kept with the request. The same `webhook-id` always gets the same "
                "`id` and never a second call; the same (from, to) within CLICK_TO_CALL_DEBOUNCE seconds returns "
                "the existing request. Browsers may call it from CORS_ORIGINS.",
                "tags": ["webhooks"],
                "security": SIGNED,
                "requestBody": json_body(
                    click_to_call,
                    {
                        "from": {"to": "+7 (916) 123-45-67", "from": "4990000000", "crm": {"deal": 42}},
                        "user": {"to": "89161234567", "user": "7"},
                    },
                ),
                "responses": {
                    "202": answer("accepted", docs.AcceptedSchema, example=ACCEPTED_EXAMPLE, headers=CORS_HEADERS)
                }
                | problems(
                    {
                        400: "the body is not valid JSON",
                        401: "missing or invalid signature headers, a clock more than 5 minutes off, or no valid "
                        "signature",
                        413: TOO_LARGE,
                        422: "not a JSON object, or invalid fields (`errors` per field)",
                    }
                ),
            },
            "options": preflight(
                "CORS preflight of the click-to-call webhook",
                "Content-Type, webhook-id, webhook-timestamp, webhook-signature",
            ),
        },
        "/webhooks/events": {
            "post": {
                "operationId": "crmEvent",
                "summary": "A CRM event for the rules",
                "description": "`type`: a dotted lower-case name; `deal.closed` has its `data` checked (`deal_id`, "
                "`status` won|lost required; `phones` a list, or `phone`; `responsible_user`). Stored once per "
                "`webhook-id` before the answer, handled by a worker.",
                "tags": ["webhooks"],
                "security": SIGNED,
                "requestBody": json_body(
                    CrmEventSchema,
                    {
                        "deal.closed": {
                            "type": "deal.closed",
                            "data": {
                                "deal_id": "42",
                                "status": "won",
                                "phones": ["+7 916 123-45-67"],
                                "responsible_user": "7",
                            },
                        },
                        "user.status": {"type": "user.status", "data": {"user": "7", "status": "absent"}},
                    },
                ),
                "responses": {
                    "202": answer(
                        "stored (a redelivery gets the same answer and is not acted on twice)",
                        docs.EventAcceptedSchema,
                        example={"id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "status": "accepted"},
                    )
                }
                | problems(
                    {
                        400: "the body is not valid JSON",
                        401: "missing or invalid signature headers, a clock more than 5 minutes off, or no valid "
                        "signature",
                        413: TOO_LARGE,
                        422: "not a JSON object, or invalid fields (`errors` per field, nested for `data`)",
                    }
                ),
            },
        },
        "/webhooks/bitrix24": {
            "post": {
                "operationId": "bitrix24Event",
                "summary": "Bitrix24 telephony events",
                "description": "Form-encoded as Bitrix24 posts its events. Authenticated by the form field "
                "`auth[application_token]`, which must equal BITRIX24_APP_TOKEN (compared in constant time; "
                "without that setting every event is refused). ONEXTERNALCALLSTART places a click-to-call from "
                "the user's number ([users]) with Bitrix24's CALL_ID as the idempotency key; "
                "ONEXTERNALCALLBACKSTART a callback request from CALLBACK_REQUEST_FROM; other events are ignored.",
                "tags": ["webhooks"],
                "security": PUBLIC,
                "requestBody": json_body(
                    docs.Bitrix24EventSchema,
                    {
                        "click": {
                            "event": "ONEXTERNALCALLSTART",
                            "data[CALL_ID]": "externalCall.6b2c1f",
                            "data[USER_ID]": "1",
                            "data[PHONE_NUMBER]": "+79161234567",
                            "auth[application_token]": "the-application-token",
                        }
                    },
                    media=(FORM,),
                ),
                "responses": {
                    "200": answer(
                        "a click-to-call accepted (`id`, `status`), or the event ignored",
                        docs.Bitrix24AnswerSchema,
                        example=ACCEPTED_EXAMPLE,
                    )
                }
                | problems(
                    {
                        400: "not a form-encoded event",
                        401: "auth[application_token] does not match BITRIX24_APP_TOKEN",
                        413: TOO_LARGE,
                        422: "invalid fields, e.g. `data[PHONE_NUMBER]`, `data[USER_ID]` not in [users]",
                    }
                ),
            },
        },
        "/webhooks/amocrm/{secret}": {
            "parameters": [
                path_parameter(
                    "secret", "AMOCRM_WEBHOOK_SECRET: the path segment is the authentication; a wrong one is 404"
                )
            ],
            "post": {
                "operationId": "amocrmWebhook",
                "summary": "amoCRM/Kommo webhooks: won (142) and lost (143) leads become deal.closed events",
                "description": "Form-encoded with PHP-style keys (`leads[status][0][id]`). Authenticated by the "
                "secret path segment (AMOCRM_WEBHOOK_SECRET, compared in constant time; without it every "
                "webhook is refused).",
                "tags": ["webhooks"],
                "security": PUBLIC,
                "requestBody": json_body(
                    docs.AmocrmWebhookSchema,
                    {
                        "won": {
                            "leads[status][0][id]": "42",
                            "leads[status][0][status_id]": "142",
                            "leads[status][0][old_status_id]": "31",
                            "leads[status][0][pipeline_id]": "7",
                            "leads[status][0][responsible_user_id]": "7",
                            "account[subdomain]": "acme",
                        }
                    },
                    media=(FORM,),
                ),
                "responses": {
                    "200": answer("the won/lost changes stored", docs.AmocrmAnswerSchema, example={"accepted": 1})
                }
                | problems(
                    {
                        403: "from another amoCRM account than AMOCRM_BASE_URL's (or AMOCRM_ACCOUNT_ID)",
                        404: "wrong secret, or AMOCRM_WEBHOOK_SECRET is not set",
                        413: TOO_LARGE,
                        422: "account or leads fields of an unexpected shape (`errors` per field)",
                    }
                ),
            },
        },
        "/callback-requests": {
            "post": {
                "operationId": "callbackRequest",
                "summary": 'The website "call me back" form',
                "description": "JSON or form-encoded. CALLBACK_REQUEST_FROM rings first, then the visitor. "
                "`website` is a honeypot people never see: a filled one gets an ordinary-looking 202 and "
                "nothing happens. Limited per destination number and per client IP. Browsers may post only "
                "from CORS_ORIGINS.",
                "tags": ["public"],
                "security": PUBLIC,
                "requestBody": json_body(
                    callback_form,
                    {
                        "visitor": {
                            "phone": "8 916 123-45-67",
                            "name": "Анна",
                            "comment": "after 5 pm",
                            "page_url": "https://shop.example/p/1",
                        }
                    },
                    media=(JSON, FORM),
                ),
                "responses": {
                    "202": answer("accepted", docs.AcceptedSchema, example=ACCEPTED_EXAMPLE, headers=CORS_HEADERS)
                }
                | problems(
                    {
                        400: "the body is not valid JSON",
                        403: "the Origin is not in CORS_ORIGINS",
                        413: TOO_LARGE,
                        422: "not an object, or invalid fields (`errors` per field)",
                        429: "too many requests for this number or from this IP",
                    }
                ),
            },
            "options": preflight("CORS preflight of the callback form", "Content-Type"),
        },
        "/widget/amocrm/click-to-call": {
            "post": {
                "operationId": "amocrmWidgetClickToCall",
                "summary": "Click-to-call from the amoCRM/Kommo widget",
                "description": "The caller is the token's `user_id` (their contract number from [users]); the body "
                "names only the number to connect. Unknown fields are refused.",
                "tags": ["widget"],
                "security": ONE_TIME_TOKEN,
                "requestBody": json_body(docs.WidgetClickToCallSchema, {"number": {"to": "+7 916 123-45-67"}}),
                "responses": {
                    "202": answer("accepted", docs.AcceptedSchema, example=ACCEPTED_EXAMPLE, headers=CORS_HEADERS)
                }
                | problems(
                    {
                        400: "the body is not valid JSON",
                        401: "missing, invalid or expired X-Auth-Token",
                        403: "the token's user or account may not place calls here",
                        413: TOO_LARGE,
                        422: "invalid or unknown fields (`errors` per field)",
                        429: "too many click-to-calls",
                    }
                ),
            },
            "options": preflight("CORS preflight of the widget's click-to-call", "Content-Type, X-Auth-Token"),
        },
        "/api/callbacks/{request_id}": {
            "parameters": [path_parameter("request_id", "the `id` a click-to-call was accepted with")],
            "get": {
                "operationId": "callbackStatus",
                "summary": "The state of a click-to-call",
                "description": "`queued`, `placing`, `placed` (the phone rings), `failed` (`reason`), `expired` "
                "(waited more than CALLBACK_TTL; never placed late), `unknown` (may have reached the operator: "
                "not repeated).",
                "tags": ["api"],
                "security": BEARER,
                "responses": {"200": answer("the request", docs.CallbackViewSchema, example=CALLBACK_EXAMPLE)}
                | problems(API_PROBLEMS | {404: "no such request"}),
            },
        },
        "/api/calls": {
            "get": {
                "operationId": "listCalls",
                "summary": "The ledger of calls, newest first, with each call's delivery state",
                "tags": ["api"],
                "security": BEARER,
                "parameters": [{"in": "query", "schema": docs.CallsQuerySchema}],
                "responses": {
                    "200": answer(
                        "a page", docs.CallsPageSchema, example={"items": [CALL_EXAMPLE], "next_offset": None}
                    )
                }
                | problems(API_PROBLEMS | {422: "a bad filter (`errors` names it)"}),
            },
        },
        "/api/contacts": {
            "get": {
                "operationId": "listContacts",
                "summary": "The local CRM's contacts",
                "tags": ["api"],
                "security": BEARER,
                "parameters": [{"in": "query", "schema": docs.ContactsQuerySchema}],
                "responses": {"200": answer("a page", docs.ContactsPageSchema)}
                | problems(
                    API_PROBLEMS
                    | {404: "CRM_BACKEND is not local", 422: "a bad `phone`, `limit` or `offset` (`errors` names it)"}
                ),
            },
        },
        "/api/activities": {
            "get": {
                "operationId": "listActivities",
                "summary": "The local CRM's call activities, newest first (with `recording_url`)",
                "tags": ["api"],
                "security": BEARER,
                "parameters": [{"in": "query", "schema": docs.ActivitiesQuerySchema}],
                "responses": {"200": answer("a page", docs.ActivitiesPageSchema)}
                | problems(
                    API_PROBLEMS | {404: "CRM_BACKEND is not local", 422: "a bad `limit` or `offset` (`errors`)"}
                ),
            },
        },
        "/api/vats/{num}": {
            "parameters": [NUM],
            "get": {
                "operationId": "getVatsSettings",
                "summary": "The PBX routing settings of a contract number",
                "tags": ["vats"],
                "security": BEARER,
                "responses": {
                    "200": answer(
                        "the settings, editable, with the weekly view",
                        docs.VatsSettingsViewSchema,
                        headers={"ETag": {"description": "the base, quoted", "schema": {"type": "string"}}},
                    )
                }
                | problems({status: VATS_PROBLEMS[status] for status in (401, 403, 404)})
                | {"502": problem("the operator failed")},
            },
        },
        "/api/vats/{num}/plan": {
            "parameters": [NUM],
            "post": {
                "operationId": "planVatsSettings",
                "summary": "What applying an edited settings document would change, checked against the rules",
                "tags": ["vats"],
                "security": BEARER,
                "requestBody": json_body(SETTINGS_DOCUMENT, {"edited": SETTINGS_EXAMPLE}),
                "responses": {"200": answer("the plan", docs.PlanSchema, example=PLAN_EXAMPLE)}
                | problems(VATS_PROBLEMS)
                | {"502": problem("the operator failed")},
            },
        },
        "/api/vats/{num}/apply": {
            "parameters": [NUM],
            "post": {
                "operationId": "applyVatsSettings",
                "summary": "Apply an edited settings document (planned again against the live settings first)",
                "tags": ["vats"],
                "security": BEARER,
                "requestBody": json_body(SETTINGS_DOCUMENT, {"edited": SETTINGS_EXAMPLE}),
                "responses": {
                    "200": answer(
                        "applied, read back and verified",
                        docs.AppliedSchema,
                        example=PLAN_EXAMPLE | {"applied": 1, "verified": True},
                    )
                }
                | problems(VATS_PROBLEMS)
                | {
                    "502": problem("the operator failed, or the read-back differs (`leftovers`)"),
                    "504": problem("the outcome is unknown: plan again to see whether it was applied"),
                },
            },
        },
        "/recordings/{recording_id}.mp3": {
            "parameters": [path_parameter("recording_id", "the recording's public id")],
            "get": {
                "operationId": "getRecording",
                "summary": "A stored recording behind its signed link",
                "description": "The link is the authentication: `sig` is an HMAC-SHA256 of the id and `exp` with a "
                "RECORDING_LINK_KEYS key. Ranges (`bytes=100-`, `bytes=-500`) for seeking players; ETag = sha256.",
                "tags": ["recordings"],
                "security": PUBLIC,
                "parameters": [
                    {"in": "query", "name": "sig", "required": True, "schema": {"type": "string"}},
                    {
                        "in": "query",
                        "name": "exp",
                        "description": "Unix seconds the link expires at (links with RECORDING_LINK_TTL)",
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                    header_parameter("Range", "e.g. `bytes=100-`"),
                    header_parameter("If-None-Match", "an ETag"),
                ],
                "responses": {
                    "200": answer(
                        "the mp3",
                        {"type": "string", "format": "binary"},
                        media="audio/mpeg",
                        headers={
                            "ETag": {"schema": {"type": "string"}},
                            "Accept-Ranges": {"schema": {"type": "string"}},
                        },
                    ),
                    "206": answer(
                        "the requested range",
                        {"type": "string", "format": "binary"},
                        media="audio/mpeg",
                        headers={"Content-Range": {"required": True, "schema": {"type": "string"}}},
                    ),
                    "304": answer("not modified (If-None-Match)"),
                }
                | problems(
                    {
                        403: "the signature is missing, wrong or expired (whether or not the recording exists)",
                        404: "correctly signed, but the recording is not stored (any more)",
                        416: "the range is beyond the recording",
                    }
                ),
            },
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is up (it checks nothing else)",
                "tags": ["health"],
                "security": PUBLIC,
                "responses": {"200": answer("up", docs.HealthSchema, example={"status": "ok"})},
            },
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Redis, the database and its schema, the operator token state",
                "tags": ["health"],
                "security": PUBLIC,
                "responses": {
                    "200": answer(
                        "ready",
                        docs.ReadySchema,
                        example={"status": "ready", "checks": {"redis": "ok", "database": "ok", "operator": "ok"}},
                    ),
                    "503": problem("not ready: `detail` names what is wrong, `checks` has every check"),
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics from every process (web and workers, through Redis)",
                "tags": ["health"],
                "security": PUBLIC,
                "responses": {
                    "200": answer(
                        "Prometheus text format 0.0.4",
                        {"type": "string"},
                        media="text/plain",
                        example='vats_webhooks_total{endpoint="/webhooks/click-to-call",outcome="202"} 1\n',
                    )
                },
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["health"],
                "security": PUBLIC,
                "responses": {"200": answer("OpenAPI 3.1", {"type": "object"})},
            },
        },
    }


# --- building ----------------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: ``/api/vats/<num>`` → ``/api/vats/{num}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def served_operations(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, lower-case method) of every route of the HTTP API (HEAD and Flask's
    automatic OPTIONS aside; the console's pages are for people, not part of it)."""
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "root") or rule.endpoint.startswith("console."):
            continue
        for method in rule.methods or ():
            if method == "HEAD" or (method == "OPTIONS" and getattr(rule, "provide_automatic_options", True)):
                continue
            served.add((openapi_path(rule.rule), method.lower()))
    return served


def project_version() -> str:
    try:
        with PYPROJECT.open("rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"


def _number_field(self, field: fields.Field, **kwargs: Any) -> dict:
    """A phone number is text or a whole number (``NumberField``)."""
    if isinstance(field, NumberField):
        return {"type": ["string", "integer", "null"] if field.allow_none else ["string", "integer"]}
    return {}


def build_document(app: Flask, settings: Settings) -> dict:
    """The OpenAPI 3.1 document of the operations ``app`` serves."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="vats-bridge",
        version=project_version(),
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": DESCRIPTION},
        servers=[
            {"url": settings.public_url.rstrip("/") or "/", "description": "PUBLIC_URL: the account `default`"},
            {
                "url": settings.public_url.rstrip("/") + "/a/{account}",
                "description": "a stored account's paths: every account-scoped path is also served here",
                "variables": {"account": {"default": "default", "description": "the account id"}},
            },
        ],
    )
    assert plugin.converter is not None  # set when the spec initialises the plugin
    plugin.converter.add_attribute_function(_number_field)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("ProblemErrors", docs.PROBLEM_ERRORS)
    spec.components.schema("Problem", docs.PROBLEM)
    served = served_operations(app)
    for path, declared in operations(settings).items():
        shared = declared.get("parameters")
        methods = {method: op for method, op in declared.items() if (path, method) in served}
        for op in methods.values():
            op["responses"].setdefault("405", problem("another method on this path", headers=ALLOW))
        if methods:
            spec.path(path=path, operations=methods, parameters=shared)
    return spec.to_dict()


@openapi.get("/openapi.json")
def document() -> Response:
    """The document, built on the first request and kept for the app's lifetime."""
    cached = current_app.extensions.get(CACHE_KEY)
    if cached is None:
        built = build_document(current_app, current_app.extensions["vats"].settings)
        cached = current_app.extensions[CACHE_KEY] = json.dumps(built, ensure_ascii=False)
    return Response(cached, mimetype=JSON)
