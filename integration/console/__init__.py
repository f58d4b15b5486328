"""The web console (``/console``): sign-in, an account's overview, its calls, the audit log, and
every account's health for deployment users. Server-rendered (Flask + Jinja); the pages act
through the same services as the webhooks and the CLI."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from integration.config import Settings
from integration.console import actions, auth, routing, views  # noqa: F401  (their routes join the blueprint)
from integration.console.blueprint import console
from integration.console.format import call_number, duration, human_number, local_time
from integration.console.i18n import LANGUAGES, gettext, language
from integration.console.sessions import IDLE, session_signing_key


@console.errorhandler(HTTPException)
def error_page(exc: HTTPException):
    """Every refusal inside the console as a page (an unknown account and one not yours alike)."""
    status = exc.code or 500
    message = exc.description if status in (400, 403) else None
    return render_template("console/error.html", status=status, message=message), status


@console.after_request
def protect(response):
    """Console pages are never framed (no click-jacking of "Retry all") nor cached, and load
    nothing from elsewhere but the recordings' own links."""
    media = urlsplit(current_app.extensions["vats"].settings.public_url)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; "
        f"media-src 'self' {media.scheme}://{media.netloc}; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if not request.path.startswith("/console/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask, settings: Settings) -> None:
    """Register the console on ``app``: its blueprint, session cookie and template helpers;
    ``/`` leads to it."""
    if settings.secret_keys:
        app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = session_signing_key(settings.secret_keys)
    app.config.update(
        SESSION_COOKIE_NAME="vats_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=IDLE),
    )
    app.register_blueprint(console)
    app.add_url_rule("/", "root", lambda: app.redirect(f"{request.script_root}/console/", 302))
    app.jinja_env.globals.update(
        csrf_token=auth.csrf_token,
        current_user=auth.current_user,
        console_url=auth.console_url,
        _=gettext,
        language=language,
        languages=LANGUAGES,
    )
    app.jinja_env.filters.update(number=human_number, call_number=call_number, local=local_time, duration=duration)


__all__ = ["install"]
