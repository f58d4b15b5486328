"""The app factory: the Flask app with its blueprints, error handlers and CLI; nothing connects
to anything at import."""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import import_string

from integration.config import Settings
from integration.crm.registry import PLUGINS
from integration.logs import setup_logging
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.settings import load_settings

MEASURED = ("/webhooks/", "/callback-requests", "/widget/")


class OrderedJSON(DefaultJSONProvider):
    sort_keys = False  # answers keep their documented order (weekdays, fields)


def create_app(settings: Settings | None = None) -> Flask:
    """The web app and its CLI; sets up logging (``integration.logs``). Raises ``ConfigError``
    listing every settings problem."""
    settings = settings or load_settings()
    setup_logging(settings)

    from integration.cli import (
        accounts_group,
        contacts_group,
        db_group,
        operator_group,
        reconcile_command,
        recordings_group,
        secrets_group,
        sync_command,
        users_group,
        vats_group,
    )
    from integration.console import install as install_console
    from integration.web.api import api
    from integration.web.cors import add_cors_headers
    from integration.web.errors import register_error_handlers, too_large
    from integration.web.forms import forms
    from integration.web.health import health
    from integration.web.inputs import ChunkedBodyLimit
    from integration.web.openapi import openapi
    from integration.web.recordings import recordings
    from integration.web.state import AccountPrefix, WebStates, conceal_refusals
    from integration.web.vats import vats_api
    from integration.web.webhooks import webhooks

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = OrderedJSON(app)
    # WSGI middleware wraps wsgi_app, as Flask documents (mypy sees a method being replaced).
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, settings.max_body_bytes, too_large(settings.max_body_bytes))  # type: ignore[method-assign]
    if settings.trusted_proxies:
        proxied = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    app.wsgi_app = AccountPrefix(app.wsgi_app)  # type: ignore[method-assign]
    runtime = Runtime(settings)
    app.extensions["vats"] = runtime
    app.extensions["vats.runtimes"] = runtimes = AccountRuntimes(runtime)
    app.extensions["vats.web"] = WebStates(runtimes)
    for blueprint in (health, webhooks, forms, api, vats_api, recordings):
        app.register_blueprint(blueprint)
    for plugin in PLUGINS.values():  # each CRM's own endpoints (every plugin's: the amoCRM widget
        for path in plugin.blueprints:  # works beside any backend; without its settings, it refuses)
            app.register_blueprint(import_string(path))
    app.register_blueprint(openapi)
    register_error_handlers(app)
    install_console(app, settings)
    app.after_request(add_cors_headers)
    app.after_request(conceal_refusals)
    app.cli.add_command(operator_group)
    app.cli.add_command(db_group)
    app.cli.add_command(sync_command)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(contacts_group)
    app.cli.add_command(recordings_group)
    app.cli.add_command(vats_group)
    app.cli.add_command(secrets_group)
    app.cli.add_command(accounts_group)
    app.cli.add_command(users_group)

    @app.before_request
    def _start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _measure(response):
        if request.path.startswith(MEASURED):
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            runtime.metrics.inc("vats_webhooks_total", endpoint=endpoint, outcome=str(response.status_code))
            runtime.metrics.observe("vats_webhook_seconds", time.perf_counter() - g.started, endpoint=endpoint)
        return response

    return app
