"""Liveness, readiness and metrics."""

from __future__ import annotations

import contextlib
import time

from flask import Blueprint, Response, current_app, jsonify
from redis import RedisError

from integration.accounts import AccountError
from integration.keys import DEFAULT_ACCOUNT
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
        checks["accounts"] = accounts_summary()
    if all(value.startswith("ok") for value in checks.values()):
        return jsonify(status="ready", checks=checks)
    failing = ", ".join(name for name, value in checks.items() if not value.startswith("ok"))
    return problem_response(503, "Service Unavailable", f"not ready: {failing}", extra={"checks": checks})


SUMMARY_TTL = 30.0  # seconds a summary of the stored accounts is reused (it reads every token state)


def accounts_summary() -> str:
    """The stored accounts served, and those whose operator token a person must fix: one line,
    ``ok`` either way (one account's revoked token does not make the deployment unready)."""
    made_at, summary = current_app.extensions.get("vats.accounts_summary", (-SUMMARY_TTL, ""))
    if time.monotonic() - made_at < SUMMARY_TTL:
        return summary
    runtimes = current_app.extensions["vats.runtimes"]
    served, blocked = 0, []
    for account in runtimes.enabled_ids():
        if account == DEFAULT_ACCOUNT:
            continue
        with contextlib.suppress(AccountError):
            served += 1
            reason = runtimes.get(account).operator.tokens.status().blocked_reason
            if reason:
                blocked.append(f"{account} (authorization {reason})")
    text = f"ok ({served} stored accounts served"
    if blocked:
        shown = ", ".join(blocked[:10]) + (f" and {len(blocked) - 10} more" if len(blocked) > 10 else "")
        text += f"; {len(blocked)} need a person: {shown}"
    current_app.extensions["vats.accounts_summary"] = (time.monotonic(), text + ")")
    return text + ")"


@health.get("/metrics")
def metrics():
    """Prometheus text format, gathered from every process through Redis."""
    return Response(web().runtime.metrics.render(), mimetype="text/plain; version=0.0.4")
