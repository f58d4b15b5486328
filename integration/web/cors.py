"""CORS for the endpoints browsers post to (the website form, the amoCRM widget): only the
origins in ``CORS_ORIGINS``."""

from __future__ import annotations

from flask import Response, request

from integration.web.state import web


def allowed_origin() -> str | None:
    """The request's Origin when ``CORS_ORIGINS`` lets it in, else None."""
    origin = request.headers.get("Origin")
    origins = web().runtime.settings.cors_origins
    if origin and ("*" in origins or origin.rstrip("/") in origins):
        return origin
    return None


def with_cors(response: Response, origin: str | None) -> Response:
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def preflight(origin: str | None, headers: str) -> Response:
    """The answer to an OPTIONS preflight: 204 for an allowed origin, else 403."""
    response = Response(status=204 if origin else 403)
    if origin:
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = headers
        response.headers["Access-Control-Max-Age"] = "86400"
    return with_cors(response, origin)
