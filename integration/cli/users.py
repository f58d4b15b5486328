"""``flask --app wsgi users …``: the console's users."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from integration.cli.accounts import actor
from integration.cli.common import EXIT_USAGE, current_runtime, fail, friendly_errors
from integration.users import ROLES, ConsoleUsers

users_group = AppGroup("users", help="Console users: who signs in to /console, and what they may do.")


def _users() -> ConsoleUsers:
    return current_runtime().users


def _password(from_stdin: bool) -> str:
    """The password: stdin's first line with ``--password-stdin``, else asked twice, hidden."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@users_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES), help="admin acts, viewer reads")
@click.option("--account", default=None, metavar="ID", help="the user's account (none: every account)")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin's first line")
@friendly_errors
def create_command(email: str, role: str, account: str | None, password_stdin: bool) -> None:
    """Create a console user (a password of 12 characters or more)."""
    user = _users().create(email, role, account, _password(password_stdin), actor())
    click.echo(f"user {user.email} created: {user.role} of {user.account or 'every account'}")


@users_group.command("list")
@friendly_errors
def list_command() -> None:
    """Every console user: email, role, account."""
    click.echo(f"{'email':<40} {'role':<7} account")
    for user in _users().all():
        click.echo(f"{user.email:<40} {user.role:<7} {user.account or '(every account)'}")


@users_group.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin's first line")
@friendly_errors
def password_command(email: str, password_stdin: bool) -> None:
    """Set a user's password (their signed-in sessions end)."""
    _users().set_password(email.strip().lower(), _password(password_stdin), actor())
    click.echo(f"password of {email} changed")


@users_group.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="confirm")
@friendly_errors
def delete_command(email: str, yes: bool) -> None:
    """Remove a console user (their signed-in sessions end)."""
    if not yes:
        fail(f"deleting {email} cannot be undone: add --yes", EXIT_USAGE)
    _users().remove(email.strip().lower(), actor())
    click.echo(f"user {email} deleted")
