"""``flask --app wsgi vats show|export|plan|apply``: PBX routing settings, reviewable and safe.

Exit codes as for every command: 2 the file (or command line) needs fixing, 1 the operator or a
service failed, or the live settings changed since the export, 3 the outcome is unknown.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from integration.cli.common import EXIT_FAILED, EXIT_USAGE, current_runtime, fail, friendly_errors, per_account
from integration.vats import files
from integration.vats.plan import NotVerified, Plan, PlanRefused, apply, make_plan, read_live
from integration.vats.view import weekly_view

vats_group = AppGroup("vats", help="PBX routing settings: show, export, plan, apply.")


def _number(raw: str) -> str:
    return current_runtime().settings.own_number(raw)


def _read_file(path: str) -> dict:
    try:
        edited = files.load(Path(path).read_text(encoding="utf-8"))
        edited["num"] = _number(str(edited["num"]))
        return edited
    except files.FileError as exc:
        fail(f"{path}: {exc}", EXIT_USAGE)
    except UnicodeDecodeError:
        fail(f"{path}: not a UTF-8 text file", EXIT_USAGE)


def _print_plan(plan: Plan) -> None:
    """The plan on stdout; what stops it on stderr, with the exit code that says which."""
    if plan.stale:
        fail(str(PlanRefused(plan)), EXIT_FAILED)
    if plan.problems:
        for problem in plan.problems:
            click.echo(f"  {problem}", err=True)
        fail(f"{len(plan.problems)} problem(s): fix the file, then plan again", EXIT_USAGE)
    for change in plan.changes:
        click.echo(f"  {change}")
    click.echo(f"{plan.num}: {len(plan.changes)} change(s)" if plan.changes else f"{plan.num}: no changes")


@vats_group.command("show")
@per_account
@click.argument("num")
@friendly_errors
def show_command(num: str) -> None:
    """A weekly view: for each day, which block rings whom, in which dial mode."""
    for line in weekly_view(read_live(current_runtime().operator, _number(num))):
        click.echo(line)


@vats_group.command("export")
@per_account
@click.argument("num")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@friendly_errors
def export_command(num: str, fmt: str) -> None:
    """The settings as an editable file on stdout (vats export NUM > FILE)."""
    live = read_live(current_runtime().operator, _number(num))
    click.echo(files.dump(files.export_document(live), fmt), nl=False)


@vats_group.command("plan")
@per_account
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@friendly_errors
def plan_command(path: str) -> None:
    """Check an edited file against the rules and show what it would change."""
    edited = _read_file(path)
    _print_plan(make_plan(edited, read_live(current_runtime().operator, edited["num"])))


@vats_group.command("apply")
@per_account
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@friendly_errors
def apply_command(path: str, yes: bool) -> None:
    """Plan, confirm, write to the operator, re-read and verify."""
    runtime = current_runtime()
    edited = _read_file(path)
    plan = make_plan(edited, read_live(runtime.operator, edited["num"]))
    _print_plan(plan)
    if not plan.changes:
        return
    if not yes and not click.confirm(f"Apply these {len(plan.changes)} change(s) to {plan.num}?"):
        fail("nothing applied", EXIT_FAILED)
    try:
        applied = apply(runtime.operator, runtime.redis, edited, plan.num)
    except PlanRefused as exc:  # the live settings changed between the plan and the write
        _print_plan(exc.plan)
        raise
    except NotVerified as exc:
        for change in exc.leftovers:
            click.echo(f"  {change}", err=True)
        raise
    click.echo(f"{applied.num}: applied {len(applied.changes)} change(s); read back and verified")
