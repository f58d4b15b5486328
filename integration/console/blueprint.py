"""The console's blueprint: pages under ``/console`` (and ``/a/<account>/console``)."""

from __future__ import annotations

from flask import Blueprint

console = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")
