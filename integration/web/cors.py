"""CORS for the endpoints browsers post to (the website form, the amoCRM widget): only the
origins in ``CORS_ORIGINS``, on every answer — errors included, so a widget can show why."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Response, current_app, request

from integration.web.errors import Problem, problem_response
from integration.web.state import web

View = TypeVar("View", bound=Callable)


def browser_endpoint(view: View) -> View:
    """Mark a view that browsers may call from ``CORS_ORIGINS``."""
    view.cors = True  # type: ignore[attr-defined]  # a marker attribute on the view function
    return view


def allowed_origin() -> str | None:
    """The request's Origin when ``CORS_ORIGINS`` lets it in, else None."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    try:
        origins = web().runtime.settings.cors_origins
    except Problem:  # no such account: no origin is allowed
        return None
    if "*" in origins or origin.rstrip("/") in origins:
        return origin
    return None


def add_cors_headers(response: Response) -> Response:
    """``after_request``: CORS headers on every answer of a browser endpoint to an allowed origin."""
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "cors", False):
        # Set as text: ``response.vary`` parses and re-serialises the header (tens of µs a request).
        vary = response.headers.get("Vary")
        if not vary:
            response.headers["Vary"] = "Origin"
        elif "origin" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Origin"
        origin = allowed_origin()
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def preflight(headers: str) -> Response:
    """The answer to an OPTIONS preflight: 204 for an allowed origin, else a 403 problem."""
    if allowed_origin() is None:
        return problem_response(403, "Forbidden", "this origin may not call this endpoint (CORS_ORIGINS)")
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = headers
    response.headers["Access-Control-Max-Age"] = "86400"
    return response
