"""vats-bridge: connects a virtual PBX operator's Integration API to CRMs.

``create_app()`` builds the Flask app; nothing connects to anything at import.
"""

from __future__ import annotations

import logging

from flask import Flask

from integration.config import Settings, load_settings
from integration.runtime import Runtime


def create_app(settings: Settings | None = None) -> Flask:
    """The web app and its CLI. Raises ``ConfigError`` listing every settings problem."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.extensions["vats"] = Runtime(settings)

    from integration.cli import operator_group
    from integration.web.health import health

    app.register_blueprint(health)
    app.cli.add_command(operator_group)
    return app


def runtime(app: Flask) -> Runtime:
    return app.extensions["vats"]
