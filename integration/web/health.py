"""Liveness."""

from flask import Blueprint, jsonify

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """The process is up (it checks nothing else)."""
    return jsonify(status="ok")
