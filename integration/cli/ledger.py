"""The ledger and the work on it, at once instead of on schedule: ``db upgrade``, ``sync``,
``reconcile``, ``recordings fetch``, ``contacts import``."""

from __future__ import annotations

import csv

import click
from flask.cli import AppGroup

from integration.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    current_runtime,
    day_option,
    fail,
    friendly_errors,
    local,
    parse_moment,
    per_account,
)

db_group = AppGroup("db", help="The ledger database (DATABASE_URL).")


@db_group.command("upgrade")
@friendly_errors
def db_upgrade_command() -> None:
    """Create or migrate the ledger schema to the latest version (safe to repeat)."""
    from integration.ledger.db import upgrade

    upgrade(current_runtime().engine)
    click.echo("database schema is up to date")


@click.command("sync")
@per_account
@click.option("--since", help="YYYY-MM-DD or ISO date-time with offset [default: from the sync cursor]")
@click.option("--until", help="YYYY-MM-DD (inclusive) or ISO date-time with offset [default: now]")
@friendly_errors
def sync_command(since: str | None, until: str | None) -> None:
    """Bring the call ledger up to date now (the same code the scheduled sync runs)."""
    from integration.services.calls import run_sync

    runtime = current_runtime()
    tz = runtime.settings.tz
    start = parse_moment(since, tz) if since else None
    end = parse_moment(until, tz, end=True) if until else None
    if start and end and start >= end:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    result = run_sync(runtime, start, end, wait=60)
    if result is None:
        fail("another sync is still running; try again in a minute", EXIT_FAILED)
    if result.out_of_reach_before:
        click.echo(
            f"note: the operator keeps one month of call history; calls before "
            f"{local(result.out_of_reach_before, tz)} ({tz.key}) are out of reach and were not read",
            err=True,
        )
    click.echo(
        f"synced {local(max(result.start, result.out_of_reach_before or result.start), tz)} – {local(result.end, tz)} "
        f"({tz.key}): {result.found} call(s) found, {len(result.new_ids)} new"
        + ("" if result.moved_cursor else "; the sync cursor was left where it was")
    )


@click.command("reconcile")
@per_account
@click.option("--date", "day", required=True, help="YYYY-MM-DD, a day in the operator's time zone")
@friendly_errors
def reconcile_command(day: str) -> None:
    """Compare a day's calls at the operator with the CRM and deliver what is missing, now."""
    from integration.services.calls import reconcile_day

    moment = day_option(day)
    runtime = current_runtime()
    report = reconcile_day(runtime, moment)
    counts = report.counts
    click.echo(
        f"{report.day} ({runtime.settings.tz.key}): {report.operator_calls} call(s) found at the operator, "
        f"{report.new_calls} new to the ledger; {runtime.crm.name}: {counts.get('delivered', 0)} delivered, "
        f"{counts.get('pending', 0)} pending, {counts.get('failed', 0)} failed"
    )
    if counts.get("pending") or counts.get("failed"):
        raise SystemExit(EXIT_FAILED)


recordings_group = AppGroup("recordings", help="Call recordings.")


@recordings_group.command("fetch")
@per_account
@click.option("--date", "day", required=True, help="YYYY-MM-DD, a day in the operator's time zone")
@friendly_errors
def recordings_fetch_command(day: str) -> None:
    """Fetch every recording of a day's calls now (failed ones are asked for once more)."""
    from integration.services.recordings import fetch_day

    runtime = current_runtime()
    moment = day_option(day)
    found, counts = fetch_day(runtime, moment)
    click.echo(
        f"{moment} ({runtime.settings.tz.key}): {found} call(s) with a recording; "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("stored", "pending", "failed", "deleted"))
    )
    if counts.get("pending") or counts.get("failed"):
        raise SystemExit(EXIT_FAILED)


contacts_group = AppGroup("contacts", help="The local CRM's contacts.")


@contacts_group.command("import")
@per_account
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@friendly_errors
def contacts_import_command(path: str) -> None:
    """Add contacts from a CSV file with a header row: name,phone (any phone format)."""
    from integration.crm.base import BrowsesContacts

    crm = current_runtime().crm
    if not isinstance(crm, BrowsesContacts):
        fail(f"CRM_BACKEND {crm.name} keeps its contacts itself: import them there", EXIT_USAGE)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "phone" not in [f.strip().lower() for f in reader.fieldnames]:
            fail(f"{path}: the first line must be a header with a 'phone' column (and optionally 'name')", EXIT_USAGE)
        rows = [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]
    added, errors = crm.import_contacts(rows, current_runtime().settings.default_region)
    for error in errors:
        click.echo(f"{path}: {error}", err=True)
    click.echo(f"{added} contact(s) added, {len(errors)} row(s) skipped")
    if errors:
        raise SystemExit(EXIT_FAILED)
