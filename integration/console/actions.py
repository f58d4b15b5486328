"""Pages where people act: stuck work (retry one or all, reconcile a day) and click-to-call
(recent requests, a test call). Each action goes through the same services as the webhooks and
the CLI, and into the audit log."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from integration.console.auth import account_state, current_user, deployment
from integration.console.blueprint import console
from integration.console.i18n import _
from integration.console.inputs import page_number
from integration.jobs import queue_reconcile, reconcile_outcome
from integration.ledger.work import WorkKey, WorkKind
from integration.redaction import KnownSecrets, redact_url
from integration.services.work import retry_stuck, retry_work
from integration.timeutil import utc_now

PAGE = 50
RECONCILE_REACH = timedelta(days=31)  # the operator keeps a month of history
KINDS = [kind.value for kind in WorkKind]


def audit(action: str, detail: str, result: str = "ok") -> None:
    user = current_user()
    runtime = account_state().runtime
    deployment().accounts.audit.add(utc_now(), user.email if user else "?", runtime.account, action, detail, result)


def shown_error(text: str) -> str:
    """An error's text as a page may show it: no secret of the account's settings, no secret in
    a URL (the logs redact the same way)."""
    return KnownSecrets.of(account_state().runtime.settings).redact(redact_url(text))


def _kind(value: str | None) -> str | None:
    return value if value in KINDS else None


@console.get("/work")
def work():
    runtime = account_state().runtime
    kind = _kind(request.args.get("kind"))
    number = page_number()
    items = runtime.work_ledger.stuck(kind, PAGE + 1, (number - 1) * PAGE)
    return render_template(
        "console/work.html",
        items=items[:PAGE],
        more=len(items) > PAGE,
        page=number,
        kind=kind,
        kinds=KINDS,
        counts=runtime.work_ledger.unfinished(),
    )


@console.post("/work/retry")
def retry():
    """One item (kind, subject, target) or every stuck one (of ``kind``)."""
    runtime = account_state().runtime
    kind = _kind(request.form.get("kind"))
    if request.form.get("subject"):
        if kind is None:
            abort(400, "Which work item? The form named no known kind.")  # error.html translates it
        item = runtime.work_ledger.get(WorkKey(kind, request.form["subject"], request.form.get("target", "")))
        retried = retry_work(runtime, [item]) if item else 0
        audit("work.retry", f"{kind} {request.form['subject']}", "ok" if retried else "refused: nothing to retry")
        kind_name = _(kind.replace("_", " "))
        flash(_("%(kind)s queued again.", kind=kind_name) if retried else _("It was done already: nothing to retry."))
    else:
        retried = retry_stuck(runtime, kind)
        audit("work.retry-all", kind or "every kind", f"ok: {retried} retried")
        flash(_("%(count)s item(s) queued again.", count=retried))
    return redirect(url_for("console.work", kind=kind or None), 303)


@console.post("/work/reconcile")
def reconcile():
    runtime = account_state().runtime
    text = request.form.get("day", "").strip()[:40]
    today = utc_now().astimezone(runtime.settings.tz).date()
    try:
        day = date.fromisoformat(text)
        if not today - RECONCILE_REACH <= day <= today:
            raise ValueError
    except ValueError:
        flash(_("Reconcile: %(day)s is not a day of the last month (YYYY-MM-DD).", day=repr(text)), "problem")
        return redirect(url_for("console.work"), 303)
    job_id = queue_reconcile(runtime, day)
    audit("work.reconcile", day.isoformat(), "queued")
    return redirect(url_for("console.reconcile_page", job_id=job_id), 303)


@console.get("/work/reconcile/<job_id>")
def reconcile_page(job_id: str):
    outcome = reconcile_outcome(account_state().runtime, job_id)
    if outcome is None:
        abort(404)
    if outcome.error:
        outcome = replace(outcome, error=shown_error(outcome.error))
    return render_template("console/reconcile.html", outcome=outcome)


@console.get("/click-to-call")
def click_to_call():
    runtime = account_state().runtime
    return render_template(
        "console/click_to_call.html",
        recent=runtime.callback_ledger.recent(50),
        users=sorted(runtime.settings.users.items()),
        lines=runtime.settings.operator_numbers,
        values={},
        problems={},
        once=uuid.uuid4().hex,
    )


@console.post("/click-to-call")
def place_test_call():
    """A test call, through the same checks as the webhook (schema, limits, idempotency)."""
    state = account_state()
    runtime = state.runtime
    caller = request.form.get("caller", "")
    body = {"to": request.form.get("to", "")}
    if caller.startswith("user:"):
        body["user"] = caller.removeprefix("user:")
    else:
        body["from"] = caller
    try:
        order = state.click_to_call_schema.load(body)
    except ValidationError as exc:
        problems = {"caller" if k in ("from", "user") else k: " ".join(map(str, v)) for k, v in _flat(exc).items()}
        audit("click-to-call.test", f"to {body['to']!r}", "refused: " + "; ".join(problems.values()))
        page = render_template(
            "console/click_to_call.html",
            recent=runtime.callback_ledger.recent(50),
            users=sorted(runtime.settings.users.items()),
            lines=runtime.settings.operator_numbers,
            values=request.form,
            problems=problems,
            once=uuid.uuid4().hex,
        )
        return page, 422
    user = current_user()
    once = request.form.get("once", "")[:64]  # the form's own id: sent twice, it rings once
    accepted, _new = runtime.intake.submit(
        replace(order, source="console", idempotency_key=f"console:{once}" if once else None)
    )
    audit("click-to-call.test", f"{order.phone_from} → {order.destination.e164 or order.destination.raw}", accepted.id)
    flash(
        f"Test call {accepted.id} queued by {user.email if user else '?'}: the phone of {order.phone_from} rings first."
    )
    return redirect(url_for("console.click_to_call"), 303)


def _flat(exc: ValidationError) -> dict[str, list]:
    """Field → messages (a schema-level message under ``caller``)."""
    messages = exc.normalized_messages()
    return {
        ("caller" if key == "_schema" else key): value if isinstance(value, list) else [value]
        for key, value in messages.items()
    }
