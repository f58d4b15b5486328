"""vats-bridge: connects a virtual PBX operator's Integration API to CRMs.

``create_app()`` builds the Flask app (``integration.app``); importing the package imports and
connects nothing, so ``import integration.phone`` costs only what ``phone`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from integration.config import Settings
    from integration.runtime import Runtime


def create_app(settings: Settings | None = None) -> Flask:
    """The web app and its CLI (see ``integration.app.create_app``)."""
    from integration.app import create_app as build

    return build(settings)


def runtime(app: Flask) -> Runtime:
    """The app's ``Runtime`` (its Redis, database, operator client, CRM…)."""
    return app.extensions["vats"]
