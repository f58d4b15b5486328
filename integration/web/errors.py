"""Every error answer is ``application/problem+json`` (RFC 9457): type, title, status, detail."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from integration.logs import fields

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class Problem(Exception):
    """Raise to answer with a problem document; takes ``problem_response``'s arguments."""

    def __init__(self, status: int, title: str, detail: str | None = None, **fields: Any):
        super().__init__(title)
        self.fields = {"status": status, "title": title, "detail": detail, **fields}


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: dict | None = None,
    headers: dict[str, str] | None = None,
    type_: str = "about:blank",
    extra: dict | None = None,
) -> Response:
    """A problem document; ``extra`` adds members beside the standard ones."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, **(extra or {})}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM, headers=headers)


def too_large(limit: int | None) -> Response:
    """413: the body (read whole, or chunked and counted) is over ``MAX_BODY_BYTES``."""
    return problem_response(413, "Payload Too Large", f"the body is larger than {limit} bytes")


def validation_problem(messages: Any) -> Response:
    """422 with per-field messages, e.g. ``{"to": ["too few digits"]}``."""
    errors = messages if isinstance(messages, dict) else {"_schema": messages}
    fields = ", ".join(sorted(errors))
    return problem_response(422, "Invalid request", f"check these fields: {fields}", errors=errors)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(**exc.fields)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        return validation_problem(exc.messages)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        if exc.code == 413:
            return too_large(app.config.get("MAX_CONTENT_LENGTH"))
        detail = {
            404: "no such resource",
            405: "this method is not allowed here",
        }.get(exc.code or 500, exc.description)
        methods = getattr(exc, "valid_methods", None)  # only MethodNotAllowed has them
        headers = {"Allow": ", ".join(methods)} if methods else None
        return problem_response(exc.code or 500, exc.name, detail, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra=fields(method=request.method, path=request.path))
        return problem_response(500, "Internal Server Error", "the error was logged")
