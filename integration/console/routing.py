"""Who rings when: each contract number's week as a grid, a block's hours and forwarding edited
in a form, the plan with the operator's rules' messages, then apply — the same plan and apply as
``flask --app wsgi vats …`` and ``/api/vats``, refusing when the web cabinet changed the settings
meanwhile."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import abort, flash, render_template, request

from integration.console.actions import audit, shown_error
from integration.console.auth import account_state
from integration.console.blueprint import console
from integration.console.i18n import _
from integration.console.inputs import whole
from integration.errors import IntegrationError, InvalidPhoneNumber, OperatorError, OutcomeUnknown
from integration.rules import WEEKDAYS
from integration.vats.document import DAY_NAMES, blocks, days_of, profiles, redirects
from integration.vats.files import export_document
from integration.vats.plan import NotVerified, Plan, PlanRefused, SettingsBusy, apply, make_plan, read_live

HOURS = range(24)


@dataclass(frozen=True)
class Week:
    """A profile's week: for each day, each hour's block (its index in ``blocks``, None: none)."""

    profile: dict
    blocks: list[dict]
    rows: list[tuple[str, list[int | None]]]


def week_of(profile: dict) -> Week:
    found = blocks(profile)
    rows = []
    for day, name in enumerate(DAY_NAMES, 1):
        hours: list[int | None] = []
        for hour in HOURS:
            start, end = hour * 3600, (hour + 1) * 3600
            covering = [
                index
                for index, block in enumerate(found)
                for s, e in days_of(block).get(str(day), [])
                if s < end and e > start
            ]
            hours.append(covering[0] if covering else None)
        rows.append((name, hours))
    return Week(profile, found, rows)


def _number(raw: str) -> str:
    try:
        return account_state().runtime.settings.own_number(raw)
    except InvalidPhoneNumber:
        abort(404)


def _live(num: str) -> dict | None:
    """The live settings, or None with the operator's answer flashed."""
    try:
        return read_live(account_state().runtime.operator, num)
    except (OperatorError, IntegrationError) as exc:
        flash(_("The operator did not give the settings: %(error)s", error=shown_error(str(exc))), "problem")
        return None


@console.get("/routing")
def routing():
    numbers = account_state().runtime.settings.operator_numbers
    return render_template("console/routing.html", numbers=numbers, num=None, weeks=[], document=None)


@console.get("/routing/<num>")
def routing_number(num: str):
    number = _number(num)
    live = _live(number)
    weeks = [week_of(profile) for profile in profiles(live)] if live else []
    return render_template(
        "console/routing.html",
        numbers=account_state().runtime.settings.operator_numbers,
        num=number,
        weeks=weeks,
        document=export_document(live) if live else None,
        redirects=redirects,
        days_of=days_of,
        weekdays=WEEKDAYS,
    )


def edited_block(num: str) -> dict:
    """The editable document of one block's form: its days and its forwarding entries."""
    form = request.form
    days = {day: [span.strip() for span in form.get(f"day-{day}", "").split(",") if span.strip()] for day in WEEKDAYS}
    entries = []
    for index in range(whole(form.get("entries"), MOST_ENTRIES) + 1):
        number = form.get(f"num-{index}", "").strip()
        if not number or form.get(f"remove-{index}"):
            continue
        entry: dict = {"num": number, "isActive": 1 if form.get(f"active-{index}") else 0}
        if form.get(f"id-{index}"):
            entry["id"] = _id(form[f"id-{index}"])
        dial = form.get(f"dial-{index}", "").strip()
        seconds = whole(dial, 99_999, -1)
        entry["dialTime"] = seconds if seconds >= 0 else dial  # not a number: the plan says so
        entries.append(entry)
    block = {"id": _id(form.get("block")), "days": days, "redirectNums": entries}
    return {
        "num": num,
        "base": form.get("base", ""),
        "profiles": [{"id": _id(form.get("profile")), "scheduleBlocks": [block]}],
    }


def _id(text: str | None) -> int | str | None:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 19 else text


MOST_ENTRIES = 100  # forwarding entries of one block a form may carry


@console.post("/routing/<num>/plan")
def routing_plan(num: str):
    number = _number(num)
    edited = edited_block(number)
    live = _live(number)
    plan = make_plan(edited, live) if live else None
    return _plan_page(number, edited, plan), 200 if plan and not plan.problems else 422


@console.post("/routing/<num>/apply")
def routing_apply(num: str):
    number = _number(num)
    try:
        edited = json.loads(request.form.get("edited", ""))
        if not isinstance(edited, dict):
            raise ValueError
    except ValueError:
        abort(400, "This form has expired or did not come from this console: reload the page and try again.")
    runtime = account_state().runtime
    try:
        plan = apply(runtime.operator, runtime.redis, edited, number)
    except PlanRefused as exc:
        audit(
            "routing.apply",
            number,
            "refused: stale" if exc.plan.stale else f"refused: {len(exc.plan.problems)} problem(s)",
        )
        return _plan_page(number, edited, exc.plan), 409 if exc.plan.stale else 422
    except (SettingsBusy, NotVerified, OutcomeUnknown, OperatorError) as exc:
        audit("routing.apply", number, f"error: {type(exc).__name__}")
        flash(_("Not applied: %(error)s", error=shown_error(str(exc))), "problem")
        return _plan_page(number, edited, None), 502
    audit("routing.apply", number, f"ok: {len(plan.changes)} change(s)")
    flash(
        _("Applied %(count)s change(s) to %(num)s; the operator reads them back.", count=len(plan.changes), num=number)
    )
    return routing_number(number)


def _plan_page(num: str, edited: dict, plan: Plan | None) -> str:
    return render_template(
        "console/routing_plan.html", num=num, plan=plan, edited=json.dumps(edited, ensure_ascii=False)
    )
