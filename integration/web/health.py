"""Liveness, readiness and metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis import RedisError

from integration.ledger.db import database_status
from integration.web.errors import problem_response
from integration.web.state import web

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """The process is up (it checks nothing else)."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    """Redis, the database (and its schema) and the operator token state."""
    runtime = web().runtime
    checks: dict[str, str] = {}
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"unreachable ({type(exc).__name__})"
    checks["database"] = database_status(runtime.engine)
    if checks["redis"] == "ok":
        status = runtime.operator.tokens.status()
        if status.blocked_reason:
            checks["operator"] = (
                f"authorization {status.blocked_reason}: a person must act (see `flask --app wsgi operator token`)"
            )
        else:
            checks["operator"] = "ok" if status.has_pair else "ok (no token pair yet)"
    if all(value.startswith("ok") for value in checks.values()):
        return jsonify(status="ready", checks=checks)
    failing = ", ".join(name for name, value in checks.items() if not value.startswith("ok"))
    return problem_response(503, "Service Unavailable", f"not ready: {failing}", extra={"checks": checks})


@health.get("/metrics")
def metrics():
    """Prometheus text format, gathered from every process through Redis."""
    return Response(web().runtime.metrics.render(), mimetype="text/plain; version=0.0.4")
