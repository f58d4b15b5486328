"""Flask CLI commands: ``flask --app wsgi operator …`` calls the operator directly, no queue.

Every command answers bad input and operator errors with one line on stderr and a non-zero
exit (2: fix the command line; 1: the operator or a service failed; 3: outcome unknown).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import redis
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from integration import timeutil
from integration.errors import IntegrationError, InvalidPhoneNumber, OutcomeUnknown, PeriodError
from integration.models import CallFilter, Direction
from integration.phone import contract_number, parse_dialable, parse_phone
from integration.timeutil import utc_now
from integration.vats.view import weekly_view

EXIT_FAILED, EXIT_USAGE, EXIT_UNKNOWN = 1, 2, 3
log = logging.getLogger(__name__)


def _runtime():
    return current_app.extensions["vats"]


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def friendly_errors(command: Callable) -> Callable:
    """Turn the project's errors into one clear line and an exit code; never a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (InvalidPhoneNumber, PeriodError) as exc:
            _fail(str(exc), EXIT_USAGE)
        except OutcomeUnknown as exc:
            _fail(f"{exc}. Check the phone before trying again.", EXIT_UNKNOWN)
        except IntegrationError as exc:
            _fail(str(exc), EXIT_FAILED)
        except redis.RedisError as exc:
            _fail(f"cannot use Redis (REDIS_URL): {type(exc).__name__}", EXIT_FAILED)
        except SQLAlchemyError as exc:
            _fail(f"cannot use the database (DATABASE_URL): {type(exc).__name__}", EXIT_FAILED)
        except click.ClickException:
            raise
        except Exception as exc:
            log.debug("unexpected error", exc_info=True)
            _fail(f"unexpected {type(exc).__name__}; run with LOG_LEVEL=DEBUG for details", EXIT_FAILED)

    return run


def parse_moment(text: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """``timeutil.parse_moment`` with its complaint as a command-line error."""
    try:
        return timeutil.parse_moment(text, tz, end=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


operator_group = AppGroup("operator", help="Call the operator API by hand (no queue).")


@operator_group.command("token")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@friendly_errors
def token_command(as_json: bool) -> None:
    """Make sure a valid token pair exists and show its state (never the tokens)."""
    runtime = _runtime()
    tokens = runtime.operator.tokens
    tokens.access_token()
    status = tokens.status()
    tz = runtime.settings.tz
    fields = {
        "generation": status.generation,
        "renewed_by": status.renewed_by,
        "renewed_at": status.renewed_at,
        "access_expires_at": status.access_expires_at,
        "refresh_expires_at": status.refresh_expires_at,
        "authorization_expires_at": status.authorization_expires_at,
    }
    if as_json:
        click.echo(
            json.dumps(
                {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
                | {"warnings": list(status.warnings)}
            )
        )
        return
    click.echo(
        f"token pair: valid (generation {status.generation}, made by {status.renewed_by} at {_local(status.renewed_at, tz)})"
    )
    click.echo(f"access token expires:        {_local(status.access_expires_at, tz)} ({tz.key})")
    click.echo(f"refresh token expires:       {_local(status.refresh_expires_at, tz)}")
    click.echo(
        f"authorization token expires: {_local(status.authorization_expires_at, tz) if status.authorization_expires_at else 'unknown (not a JWT with exp)'}"
    )
    for warning in status.warnings:
        click.echo(f"warning: {warning}", err=True)


@operator_group.command("calls")
@click.option("--since", help="YYYY-MM-DD or ISO date-time with offset [default: today]")
@click.option("--until", help="YYYY-MM-DD (inclusive) or ISO date-time with offset [default: now]")
@click.option("--num", "nums", multiple=True, help="contract number (repeatable) [default: all of OPERATOR_NUMBERS]")
@click.option("--direction", type=click.Choice(["all", "inbound", "outbound"]), default="all")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per call")
@friendly_errors
def calls_command(since: str | None, until: str | None, nums: tuple[str, ...], direction: str, as_json: bool) -> None:
    """List the call history of a period (split into one-month requests)."""
    runtime = _runtime()
    settings = runtime.settings
    tz = settings.tz
    now = datetime.now(UTC)
    start = parse_moment(since, tz) if since else datetime.combine(now.astimezone(tz).date(), time(), tz)
    end = parse_moment(until, tz, end=True) if until else now
    lines = [contract_number(n, settings.default_region) for n in nums] or list(settings.operator_numbers)
    unknown = [n for n in lines if n not in settings.operator_numbers]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not in OPERATOR_NUMBERS", param_hint="--num")
    filters = CallFilter(direction=None if direction == "all" else Direction(direction))
    rows = runtime.operator.get_call_list(lines, start, end, filters)
    for row in rows:
        try:
            phone = parse_phone(row.ext_num, settings.default_region)
            external = phone.e164 or f"internal {phone.raw}"
        except InvalidPhoneNumber:
            external = "?"
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "started_at": row.started_at.isoformat(),
                        "line": row.line,
                        "direction": row.direction.value,
                        "external": external,
                        "ext_num": row.ext_num,
                        "duration": row.duration,
                        "service": row.service,
                        "record_file_id": row.record_file_id,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(
                f"{_local(row.started_at, tz)}  {row.line or '?':<10}  {row.direction.value:<8}  {external:<16} ({row.ext_num})  {row.duration:>5}s  {row.record_file_id or ''}"
            )
    if not as_json:
        click.echo(f"{len(rows)} call(s) from {_local(start, tz)} to {_local(end, tz)} ({tz.key})", err=True)


@operator_group.command("callback")
@click.option("--from", "from_", required=True, help="contract number that rings first (10 digits)")
@click.option("--to", required=True, help="number to connect to, any format")
@friendly_errors
def callback_command(from_: str, to: str) -> None:
    """Order a callback: the operator rings --from, then connects it to --to. Not repeated."""
    runtime = _runtime()
    settings = runtime.settings
    phone_from = contract_number(from_, settings.default_region)
    if phone_from not in settings.operator_numbers:
        raise click.BadParameter(f"{phone_from} is not in OPERATOR_NUMBERS", param_hint="--from")
    destination = parse_dialable(to, settings.default_region)
    placed = runtime.operator.create_callback(destination.phone_to, phone_from)
    click.echo(
        f"callback ordered: {phone_from} rings first, then {destination.e164} (PhoneTo {destination.phone_to}); requestHash {placed.request_hash or '—'}"
    )


@operator_group.command("recording")
@click.argument("record_file_id")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True), help="file to write the mp3 to"
)
@friendly_errors
def recording_command(record_file_id: str, output: str) -> None:
    """Download a recording (streamed and decoded on the fly) into a file."""
    target = Path(output)
    fd, partial = tempfile.mkstemp(prefix=".recording-", suffix=".part", dir=target.parent.resolve())
    try:
        with os.fdopen(fd, "wb") as sink:
            recording = _runtime().operator.download_recording(record_file_id, sink)
        os.replace(partial, target)  # never leave a half file under the real name
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    click.echo(f"wrote {target} ({recording.size} bytes, sha256 {recording.sha256})")


settings_group = AppGroup("settings", help="PBX routing settings.")
operator_group.add_command(settings_group)


@settings_group.command("get")
@click.argument("num")
@click.option("--json", "as_json", is_flag=True, help="the operator's document as JSON")
@friendly_errors
def settings_get_command(num: str, as_json: bool) -> None:
    """Show the PBX settings of a contract number."""
    runtime = _runtime()
    for settings in runtime.operator.get_pbx_settings([runtime.settings.own_number(num)]):
        if as_json:
            click.echo(json.dumps(settings.raw, ensure_ascii=False, indent=2))
            continue
        for line in weekly_view(settings.raw):
            click.echo(line)


db_group = AppGroup("db", help="The ledger database (DATABASE_URL).")


@db_group.command("upgrade")
@friendly_errors
def db_upgrade_command() -> None:
    """Create or migrate the ledger schema to the latest version (safe to repeat)."""
    from integration.ledger.db import upgrade

    upgrade(_runtime().engine)
    click.echo("database schema is up to date")


@click.command("sync")
@click.option("--since", help="YYYY-MM-DD or ISO date-time with offset [default: from the sync cursor]")
@click.option("--until", help="YYYY-MM-DD (inclusive) or ISO date-time with offset [default: now]")
@friendly_errors
def sync_command(since: str | None, until: str | None) -> None:
    """Bring the call ledger up to date now (the same code the scheduled sync runs)."""
    from integration.jobs import run_sync

    runtime = _runtime()
    tz = runtime.settings.tz
    start = parse_moment(since, tz) if since else None
    end = parse_moment(until, tz, end=True) if until else None
    if start and end and start >= end:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    result = run_sync(runtime, start, end, wait=60)
    if result is None:
        _fail("another sync is still running; try again in a minute", EXIT_FAILED)
    if result.out_of_reach_before:
        click.echo(
            f"note: the operator keeps one month of call history; calls before "
            f"{_local(result.out_of_reach_before, tz)} ({tz.key}) are out of reach and were not read",
            err=True,
        )
    click.echo(
        f"synced {_local(max(result.start, result.out_of_reach_before or result.start), tz)} – {_local(result.end, tz)} "
        f"({tz.key}): {result.found} call(s) found, {len(result.new_ids)} new"
        + ("" if result.moved_cursor else "; the sync cursor was left where it was")
    )


@click.command("reconcile")
@click.option("--date", "day", required=True, help="YYYY-MM-DD, a day in the operator's time zone")
@friendly_errors
def reconcile_command(day: str) -> None:
    """Compare a day's calls at the operator with the CRM and deliver what is missing, now."""
    from integration.jobs import reconcile_day

    moment = _day(day)
    runtime = _runtime()
    report = reconcile_day(runtime, moment)
    counts = report.counts
    click.echo(
        f"{report.day} ({runtime.settings.tz.key}): {report.operator_calls} call(s) found at the operator, "
        f"{report.new_calls} new to the ledger; {runtime.crm.name}: {counts.get('delivered', 0)} delivered, "
        f"{counts.get('pending', 0)} pending, {counts.get('failed', 0)} failed"
    )
    if counts.get("pending") or counts.get("failed"):
        raise SystemExit(EXIT_FAILED)


def _day(day: str) -> date:
    if not timeutil.DATE.match(day.strip()):
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date")
    try:
        return datetime.strptime(day.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{day} is not a calendar date", param_hint="--date") from None


recordings_group = AppGroup("recordings", help="Call recordings.")


@recordings_group.command("fetch")
@click.option("--date", "day", required=True, help="YYYY-MM-DD, a day in the operator's time zone")
@friendly_errors
def recordings_fetch_command(day: str) -> None:
    """Fetch every recording of a day's calls now (failed ones are asked for once more)."""
    from integration.jobs import SYNC_LOCK_LEASE, fetch_recording_now, run_sync

    runtime = _runtime()
    start = datetime.combine(_day(day), datetime.min.time(), runtime.settings.tz)
    end = start + timedelta(days=1)
    if run_sync(runtime, start, end, wait=SYNC_LOCK_LEASE) is None:
        _fail("another sync held the lock for too long; try again", EXIT_FAILED)
    call_ids = [call.id for call in runtime.call_ledger.between(start, end)]
    found = runtime.call_ledger.with_recordings(call_ids)
    ledger = runtime.recording_ledger
    ledger.ensure(found, utc_now())
    ledger.retry([call_id for call_id, _ in found], utc_now())
    counts: dict[str, int] = {}
    for call_id, _ in found:
        status = fetch_recording_now(runtime, call_id)
        counts[status] = counts.get(status, 0) + 1
    click.echo(
        f"{start.date()} ({runtime.settings.tz.key}): {len(found)} call(s) with a recording; "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("stored", "pending", "failed", "deleted"))
    )
    if counts.get("pending") or counts.get("failed"):
        raise SystemExit(EXIT_FAILED)


contacts_group = AppGroup("contacts", help="The local CRM's contacts.")


@contacts_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@friendly_errors
def contacts_import_command(path: str) -> None:
    """Add contacts from a CSV file with a header row: name,phone (any phone format)."""
    from integration.crm.local import LocalCrm, import_contacts

    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "phone" not in [f.strip().lower() for f in reader.fieldnames]:
            _fail(f"{path}: the first line must be a header with a 'phone' column (and optionally 'name')", EXIT_USAGE)
        rows = [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]
    runtime = _runtime()
    added, errors = import_contacts(LocalCrm(runtime.engine), rows, runtime.settings.default_region)
    for error in errors:
        click.echo(f"{path}: {error}", err=True)
    click.echo(f"{added} contact(s) added, {len(errors)} row(s) skipped")
    if errors:
        raise SystemExit(EXIT_FAILED)
