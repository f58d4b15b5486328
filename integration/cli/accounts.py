"""``flask --app wsgi accounts …``: create, change, list, show, disable, enable and delete accounts."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click
from flask.cli import AppGroup

from integration.accounts import DEFAULT, parse_account_file
from integration.cli.common import EXIT_USAGE, current_runtime, fail, friendly_errors

accounts_group = AppGroup("accounts", help="Accounts: one operator contract and CRM connection each.")


def actor() -> str:
    """Who acts, as the audit log names a person at the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def read_file(path: str) -> dict:
    return parse_account_file(Path(path).read_text(encoding="utf-8"), f"account file {path}")


@accounts_group.command("create")
@click.argument("account_id", metavar="ID")
@click.option(
    "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False), help="the account file (TOML)"
)
@friendly_errors
def create_command(account_id: str, path: str) -> None:
    """Create an account from an account file (validated before it is stored)."""
    settings = current_runtime().accounts.create(account_id, read_file(path), actor())
    click.echo(f"account {account_id} created: {len(settings.operator_numbers)} number(s), CRM {settings.crm_backend}")


@accounts_group.command("update")
@click.argument("account_id", metavar="ID")
@click.option(
    "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False), help="the account file (TOML)"
)
@friendly_errors
def update_command(account_id: str, path: str) -> None:
    """Replace an account's settings with a file (validated first; what the file omits is unset)."""
    current_runtime().accounts.update(account_id, read_file(path), actor())
    click.echo(f"account {account_id} updated")


@accounts_group.command("list")
@friendly_errors
def list_command() -> None:
    """Every account: id, state, CRM, numbers, last change."""
    click.echo(f"{'account':<24} {'state':<9} {'crm':<9} {'numbers':<34} updated")
    for summary in current_runtime().accounts.summaries():
        state = "enabled" if summary.enabled else "disabled"
        updated = summary.updated_at.isoformat(timespec="seconds") if summary.updated_at else "(the environment)"
        numbers = ",".join(summary.numbers)
        click.echo(f"{summary.id:<24} {state:<9} {summary.crm_backend:<9} {numbers:<34} {updated}")


@accounts_group.command("show")
@click.argument("account_id", metavar="ID")
@friendly_errors
def show_command(account_id: str) -> None:
    """An account's file as stored, every secret masked (JSON)."""
    if account_id == DEFAULT:
        fail("the account 'default' is the environment's settings (and INTEGRATION_CONFIG)", EXIT_USAGE)
    click.echo(json.dumps(current_runtime().accounts.masked(account_id), ensure_ascii=False, indent=2))


@accounts_group.command("disable")
@click.argument("account_id", metavar="ID")
@friendly_errors
def disable_command(account_id: str) -> None:
    """Stop serving an account (no sync, no calls) until it is enabled again."""
    current_runtime().accounts.set_enabled(account_id, False, actor())
    click.echo(f"account {account_id} disabled")


@accounts_group.command("enable")
@click.argument("account_id", metavar="ID")
@friendly_errors
def enable_command(account_id: str) -> None:
    """Serve a disabled account again."""
    current_runtime().accounts.set_enabled(account_id, True, actor())
    click.echo(f"account {account_id} enabled")


@accounts_group.command("delete")
@click.argument("account_id", metavar="ID")
@click.option("--yes", is_flag=True, help="yes, delete the account and all its data")
@friendly_errors
def delete_command(account_id: str, yes: bool) -> None:
    """Delete an account and all its data (asks for --yes)."""
    if not yes:
        fail(f"this deletes account {account_id} and all its data; run again with --yes to do it", EXIT_USAGE)
    from integration.services.accounts import delete_account

    delete_account(current_runtime(), account_id, actor())
    click.echo(f"account {account_id} deleted, with its calls, recordings, tokens and keys")


@accounts_group.command("audit")
@click.argument("account_id", metavar="[ID]", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@friendly_errors
def audit_command(account_id: str | None, limit: int) -> None:
    """The latest changes to accounts (of one account when ID is given), newest first."""
    for entry in current_runtime().accounts.audit.recent(account_id, limit):
        when = entry.at.isoformat(timespec="seconds")
        click.echo(
            f"{when} {entry.actor} {entry.action} {entry.account or '-'}: {entry.result}"
            + (f" ({entry.detail})" if entry.detail else "")
        )
