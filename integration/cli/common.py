"""What every command module shares: the exit codes, the runtime of the app, one clear line and an
exit code for every failure (``fail``, ``friendly_errors``), and the parsing of dates in options.

Every command answers bad input and operator errors with one line on stderr and a non-zero
exit (2: fix the command line; 1: the operator or a service failed; 3: outcome unknown).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

import click
import redis
from flask import current_app

from integration import timeutil
from integration.accounts import AccountError
from integration.errors import ConfigError, IntegrationError, InvalidPhoneNumber, OutcomeUnknown, PeriodError
from integration.keys import DEFAULT_ACCOUNT
from integration.ledger.db import DatabaseError
from integration.runtime import Runtime
from integration.users import UserError

EXIT_FAILED, EXIT_USAGE, EXIT_UNKNOWN = 1, 2, 3
log = logging.getLogger(__name__)


ACCOUNT_META = "vats.account"


def per_account(command: Callable) -> Callable:
    """Add ``--account ID`` (default: the environment's account) to a per-account command."""

    @functools.wraps(command)
    def run(*args, account: str, **kwargs):
        click.get_current_context().meta[ACCOUNT_META] = account
        return command(*args, **kwargs)

    option = click.option(
        "--account", default=DEFAULT_ACCOUNT, show_default=True, metavar="ID", help="the account to act on"
    )
    return option(run)


def current_runtime() -> Runtime:
    """The runtime (settings, operator client, ledgers…) of the account ``--account`` names."""
    context = click.get_current_context(silent=True)
    account = context.meta.get(ACCOUNT_META, DEFAULT_ACCOUNT) if context else DEFAULT_ACCOUNT
    try:
        return current_app.extensions["vats.runtimes"].get(account)
    except AccountError:
        fail(f"no account {account!r} is served (see `flask --app wsgi accounts list`)", EXIT_USAGE)


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def friendly_errors(command: Callable) -> Callable:
    """Turn the project's errors into one clear line and an exit code; never a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (InvalidPhoneNumber, PeriodError, UserError) as exc:
            fail(str(exc), EXIT_USAGE)
        except ConfigError as exc:
            click.echo("error: fix these and try again:", err=True)
            for problem in exc.problems:
                click.echo(f"  - {problem}", err=True)
            raise SystemExit(EXIT_USAGE) from None
        except OutcomeUnknown as exc:
            fail(f"{exc}. Check the phone before trying again.", EXIT_UNKNOWN)
        except IntegrationError as exc:
            fail(str(exc), EXIT_FAILED)
        except redis.RedisError as exc:
            fail(f"cannot use Redis (REDIS_URL): {type(exc).__name__}", EXIT_FAILED)
        except DatabaseError as exc:
            fail(f"cannot use the database (DATABASE_URL): {type(exc).__name__}", EXIT_FAILED)
        except click.ClickException:
            raise
        except Exception as exc:
            log.debug("unexpected error", exc_info=True)
            fail(f"unexpected {type(exc).__name__}; run with LOG_LEVEL=DEBUG for details", EXIT_FAILED)

    return run


def parse_moment(text: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """``timeutil.parse_moment`` with its complaint as a command-line error."""
    try:
        return timeutil.parse_moment(text, tz, end=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def day_option(day: str) -> date:
    """A ``--date`` option: ``YYYY-MM-DD``, a real calendar date."""
    if not timeutil.DATE.match(day.strip()):
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date")
    try:
        return datetime.strptime(day.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{day} is not a calendar date", param_hint="--date") from None
