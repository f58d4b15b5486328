"""The console's pages: an account's overview, its calls and a call, the audit log, and (for
deployment users) every account's health."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import abort, current_app, render_template, request
from marshmallow import ValidationError
from redis.exceptions import RedisError

from integration.accounts import AccountError
from integration.console.auth import account_state, console_url, current_user, deployment, prefixed
from integration.console.blueprint import console
from integration.console.format import hourly_chart
from integration.console.inputs import page_number
from integration.ledger.calls import syncs_by_account
from integration.ledger.work import WorkKind, unfinished_by_account
from integration.queues import queue_depths, workers_alive
from integration.runtime import Runtime
from integration.timeutil import utc_now
from integration.web.call_filters import CHOICES, call_conditions

PAGE = 50


@console.get("/")
def overview():
    runtime = account_state().runtime
    settings = runtime.settings
    now = utc_now()
    midnight = now.astimezone(settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    syncs = runtime.call_ledger.sync_state(settings.operator_numbers)
    user = current_user()
    workers, depths = [], {}  # the deployment's, shown to its own users only
    try:
        token = runtime.operator.tokens.status()
        if user and user.deployment_wide:
            workers, depths = workers_alive(runtime.redis), queue_depths(runtime.redis)
    except RedisError:
        token = None
    return render_template(
        "console/overview.html",
        token=token,
        lines=[(line, *syncs.get(line, (None, None))) for line in settings.operator_numbers],
        now=now,
        workers=workers,
        depths=depths,
        deployment_wide=bool(user and user.deployment_wide),
        today=runtime.callback_ledger.counts_since(midnight),
        work=runtime.work_ledger.unfinished(),
        kinds=list(WorkKind),
        chart=hourly_chart(hourly_counts(runtime, now), now, settings.tz),
    )


CHART_KEPT = 60  # seconds an account's calls-per-hour figures are reused


def hourly_counts(runtime: Runtime, now: datetime) -> dict[tuple[datetime, str], int]:
    """The last 7 days' calls per hour and status, read at most once a minute per account (at a
    million calls the count takes ~100 ms on SQLite; the chart may be a minute old)."""
    key = runtime.key("vats:console:hourly")
    with contextlib.suppress(RedisError, ValueError):
        if cached := runtime.redis.get(key):
            return {(datetime.fromisoformat(hour), status): n for hour, status, n in json.loads(cached)}
    counts = runtime.call_ledger.per_hour(now - timedelta(days=7), now)
    with contextlib.suppress(RedisError):
        rows = [(hour.isoformat(), status, n) for (hour, status), n in counts.items()]
        runtime.redis.set(key, json.dumps(rows), ex=CHART_KEPT)
    return counts


@dataclass(frozen=True)
class AccountRow:
    id: str
    enabled: bool
    crm: str
    numbers: tuple[str, ...]
    synced_until: datetime | None
    pending: int
    failed: int
    url: str


SORTS = {
    "id": lambda row: row.id,
    "state": lambda row: (row.enabled, row.id),
    "sync": lambda row: (row.synced_until is not None, row.synced_until or datetime.min, row.id),
    "pending": lambda row: (-row.pending, row.id),
    "failed": lambda row: (-row.failed, row.id),
}


def _token_state(runtime: Runtime | None) -> str:
    if runtime is None:
        return "disabled"
    try:
        status = runtime.operator.tokens.status()
    except RedisError:
        return "unknown"
    if status.blocked_reason:
        return f"authorization {status.blocked_reason}"
    return "ok" if status.has_pair else "no token pair yet"


@console.get("/accounts")
def accounts():
    """Every account's health in one table, sortable (deployment users only)."""
    user = current_user()
    if prefixed() or user is None or not user.deployment_wide:
        abort(404)
    runtime = deployment()
    runtimes = current_app.extensions["vats.runtimes"]
    syncs, work = syncs_by_account(runtime.engine), unfinished_by_account(runtime.engine)
    rows = []
    for summary in runtime.accounts.summaries():
        counts = work.get(summary.id, {})
        rows.append(
            AccountRow(
                summary.id,
                summary.enabled,
                summary.crm_backend,
                summary.numbers,
                syncs.get(summary.id, (None, None))[0],
                counts.get("pending", 0),
                counts.get("failed", 0),
                console_url(summary.id),
            )
        )
    sort = request.args.get("sort", "id")
    if sort not in SORTS:
        sort = "id"
    page = page_number()
    shown = sorted(rows, key=SORTS[sort])[(page - 1) * PAGE : page * PAGE]
    states = {}
    for row in shown:
        served = None
        if row.enabled:
            with contextlib.suppress(AccountError):
                served = runtimes.get(row.id)
        states[row.id] = _token_state(served)
    return render_template(
        "console/accounts.html",
        rows=shown,
        states=states,
        sort=sort,
        page=page,
        pages=max(1, -(-len(rows) // PAGE)),
        total=len(rows),
        now=utc_now(),
    )


FILTERS = ("line", "number", "direction", "status", "delivery", "since", "until")


@console.get("/calls")
def calls():
    runtime = account_state().runtime
    values = {name: request.args.get(name, "").strip() for name in FILTERS}
    page = page_number()
    problems: dict[str, str] = {}
    found = []
    try:
        conditions = call_conditions(values, runtime.settings)
    except ValidationError as exc:
        problems = {field: " ".join(messages) for field, messages in exc.normalized_messages().items()}
    else:
        found = runtime.call_ledger.page(conditions, PAGE + 1, (page - 1) * PAGE, runtime.crm.name)
    template = "console/calls_rows.html" if request.args.get("rows") else "console/calls.html"
    status = 422 if problems else 200
    return (
        render_template(
            template,
            calls=found[:PAGE],
            more=len(found) > PAGE,
            page=page,
            values=values,
            query={name: value for name, value in values.items() if value},
            problems=problems,
            choices=CHOICES,
            lines=runtime.settings.operator_numbers,
        ),
        status,
    )


@console.get("/calls/<call_id>")
def call(call_id: str):
    runtime = account_state().runtime
    found = runtime.call_ledger.get(call_id)
    if found is None:
        abort(404)
    crm = runtime.crm.name
    recording = runtime.recording_ledger.get(call_id)
    return render_template(
        "console/call.html",
        call=found,
        delivery=runtime.delivery_ledger.get(call_id, crm),
        crm=crm,
        recording=recording,
        recording_url=runtime.recording_url(call_id) if recording and recording.status == "stored" else None,
        callback=runtime.callback_ledger.get(found.callback_request_id) if found.callback_request_id else None,
    )


@console.get("/audit")
def audit():
    user = current_user()
    account = None if user and user.deployment_wide and not prefixed() else account_state().runtime.account
    return render_template("console/audit.html", entries=deployment().accounts.audit.recent(account, limit=200))
