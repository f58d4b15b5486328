"""``flask --app wsgi operator …``: call the operator directly, no queue."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, time
from pathlib import Path

import click
from flask.cli import AppGroup

from integration.cli.common import current_runtime, friendly_errors, local, parse_moment, per_account
from integration.errors import InvalidPhoneNumber
from integration.models import CallFilter, Direction
from integration.phone import contract_number, parse_dialable, parse_phone
from integration.vats.view import weekly_view

operator_group = AppGroup("operator", help="Call the operator API by hand (no queue).")


@operator_group.command("token")
@per_account
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@friendly_errors
def token_command(as_json: bool) -> None:
    """Make sure a valid token pair exists and show its state (never the tokens)."""
    runtime = current_runtime()
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
        f"token pair: valid (generation {status.generation}, made by {status.renewed_by} at {local(status.renewed_at, tz)})"
    )
    click.echo(f"access token expires:        {local(status.access_expires_at, tz)} ({tz.key})")
    click.echo(f"refresh token expires:       {local(status.refresh_expires_at, tz)}")
    click.echo(
        f"authorization token expires: {local(status.authorization_expires_at, tz) if status.authorization_expires_at else 'unknown (not a JWT with exp)'}"
    )
    for warning in status.warnings:
        click.echo(f"warning: {warning}", err=True)


@operator_group.command("calls")
@per_account
@click.option("--since", help="YYYY-MM-DD or ISO date-time with offset [default: today]")
@click.option("--until", help="YYYY-MM-DD (inclusive) or ISO date-time with offset [default: now]")
@click.option("--num", "nums", multiple=True, help="contract number (repeatable) [default: all of OPERATOR_NUMBERS]")
@click.option("--direction", type=click.Choice(["all", "inbound", "outbound"]), default="all")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per call")
@friendly_errors
def calls_command(since: str | None, until: str | None, nums: tuple[str, ...], direction: str, as_json: bool) -> None:
    """List the call history of a period (split into one-month requests)."""
    runtime = current_runtime()
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
                f"{local(row.started_at, tz)}  {row.line or '?':<10}  {row.direction.value:<8}  {external:<16} ({row.ext_num})  {row.duration:>5}s  {row.record_file_id or ''}"
            )
    if not as_json:
        click.echo(f"{len(rows)} call(s) from {local(start, tz)} to {local(end, tz)} ({tz.key})", err=True)


@operator_group.command("callback")
@per_account
@click.option("--from", "from_", required=True, help="contract number that rings first (10 digits)")
@click.option("--to", required=True, help="number to connect to, any format")
@friendly_errors
def callback_command(from_: str, to: str) -> None:
    """Order a callback: the operator rings --from, then connects it to --to. Not repeated."""
    runtime = current_runtime()
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
@per_account
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
            recording = current_runtime().operator.download_recording(record_file_id, sink)
        os.replace(partial, target)  # never leave a half file under the real name
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    click.echo(f"wrote {target} ({recording.size} bytes, sha256 {recording.sha256})")


settings_group = AppGroup("settings", help="PBX routing settings.")
operator_group.add_command(settings_group)


@settings_group.command("get")
@per_account
@click.argument("num")
@click.option("--json", "as_json", is_flag=True, help="the operator's document as JSON")
@friendly_errors
def settings_get_command(num: str, as_json: bool) -> None:
    """Show the PBX settings of a contract number."""
    runtime = current_runtime()
    for settings in runtime.operator.get_pbx_settings([runtime.settings.own_number(num)]):
        if as_json:
            click.echo(json.dumps(settings.raw, ensure_ascii=False, indent=2))
            continue
        for line in weekly_view(settings.raw):
            click.echo(line)
