"""Plan and apply PBX settings: validate an edited file against the live settings, show the
difference, write it under a lock, re-read and verify.

``apply`` refuses when the live settings are no longer those the file was exported from (the
fingerprint in ``base``), so an edit made meanwhile in the web cabinet is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import LockError

from integration.errors import IntegrationError
from integration.phone import forwarding_digits
from integration.rules import WEEKDAYS
from integration.vats.document import (
    DAY_NAMES,
    block_label,
    blocks,
    fingerprint,
    profile_label,
    profiles,
    redirect_label,
)
from integration.vats.files import desired_settings, editable_form
from integration.vats.validate import validate

LOCK_SECONDS = 120  # the longest an apply holds its number
LOCK_WAIT = 30  # how long an apply waits for another to finish


@dataclass(frozen=True)
class Change:
    where: str
    before: Any
    after: Any

    def __str__(self) -> str:
        if self.before is None:
            return f"+ {self.where}: {_shown(self.after)}"
        if self.after is None:
            return f"- {self.where}: {_shown(self.before)}"
        return f"~ {self.where}: {_shown(self.before)} → {_shown(self.after)}"

    def as_dict(self) -> dict:
        return {"where": self.where, "before": self.before, "after": self.after, "text": str(self)}


@dataclass(frozen=True)
class Plan:
    num: str
    base: str  # the fingerprint the file was exported from
    live_base: str  # the fingerprint of the live settings now
    desired: dict
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return self.base != self.live_base

    def as_dict(self) -> dict:
        return {
            "num": self.num,
            "base": self.base,
            "live_base": self.live_base,
            "stale": self.stale,
            "problems": self.problems,
            "changes": [change.as_dict() for change in self.changes],
        }


class PlanRefused(IntegrationError):
    """The file cannot be applied: ``problems`` to fix, or ``stale`` live settings (retryable: a
    rule action that edits the live settings reads them again)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        if plan.stale:
            text = (
                f"the live settings of {plan.num} changed since the file was exported "
                f"(base {plan.base}, live {plan.live_base}): export again and redo the edits"
            )
        else:
            text = f"{len(plan.problems)} problem(s) in the settings of {plan.num}"
        super().__init__(text)
        self.retryable = plan.stale  # stale live settings are read again later; broken rules are not


class SettingsBusy(IntegrationError):
    """Another apply to the same number holds the lock."""

    retryable = True


class NotVerified(IntegrationError):
    """The operator took the settings but reads back something else."""

    def __init__(self, num: str, leftovers: list[Change]):
        self.leftovers = leftovers
        super().__init__(f"{num}: the operator reads back {len(leftovers)} difference(s) from what was written")


def make_plan(edited: dict, live: dict) -> Plan:
    """What applying the edited file to the live settings would change, and what stops it."""
    desired, problems = desired_settings(edited, live)
    problems += validate(desired, live)
    return Plan(
        num=str(live.get("num")),
        base=str(edited.get("base")),
        live_base=fingerprint(live),
        desired=desired,
        changes=diff(live, desired),
        problems=problems,
    )


def read_live(operator, num: str) -> dict:
    found = [item.raw for item in operator.get_pbx_settings([num]) if str(item.num) == num]
    if not found:
        raise IntegrationError(f"the operator returned no settings for {num}")
    return found[0]


def apply(operator, redis, edited: dict, num: str) -> Plan:
    """Plan against the live settings and write them, one apply per number at a time; re-read
    and verify. Raises ``PlanRefused`` (nothing written) or ``NotVerified``."""
    try:
        with redis.lock(f"vats:settings-lock:{num}", timeout=LOCK_SECONDS, blocking_timeout=LOCK_WAIT):
            plan = make_plan(edited, read_live(operator, num))
            if plan.stale or plan.problems:
                raise PlanRefused(plan)
            if plan.changes:
                operator.set_pbx_settings([plan.desired])
                verify(plan.desired, read_live(operator, num))
    except LockError:
        raise SettingsBusy(f"another change to the settings of {num} is still running; try again") from None
    return plan


def verify(sent: dict, read_back: dict) -> None:
    """What the operator keeps must be what was sent (ids it gives new entries and the texts it
    derives from codes aside)."""
    leftovers = diff(read_back, sent, identity="number")
    if leftovers:
        raise NotVerified(str(sent.get("num")), leftovers)


def diff(before: dict, after: dict, identity: str = "id") -> list[Change]:
    """The changes from one settings document to another, in reading order. Forwarding entries
    are matched by id (``identity="number"``: by number, ids and derived texts ignored)."""
    old = {key: (label, value) for key, label, value in _flatten(before, identity)}
    new = {key: (label, value) for key, label, value in _flatten(after, identity)}
    changes = []
    for key in list(old) + [k for k in new if k not in old]:
        label, a = old.get(key, ("", None))  # every key is in old or new: the label is never ""
        label, b = new.get(key, (label, None))
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changes += [Change(f"{label} › {f}", a.get(f), b.get(f)) for f in {**a, **b} if a.get(f) != b.get(f)]
        else:
            changes.append(Change(label, a, b))
    return changes


def _flatten(document: dict, identity: str) -> Iterator[tuple[tuple, str, Any]]:
    """(key, label, value) for every leaf of the editable form; a forwarding entry is one dict."""
    by_number = identity == "number"
    exported = editable_form(document)
    for key, value in exported.items():
        if key != "profiles" and not (by_number and key.endswith("Term")):
            yield (key,), key, value
    for profile in profiles(exported):
        where = profile_label(profile)
        for key, value in profile.items():
            if key != "scheduleBlocks":
                yield (profile.get("id"), key), f"{where} › {key}", value
        for block in blocks(profile):
            inner = f"{where} › {block_label(block)}"
            for key, value in block.items():
                if key == "days":
                    for day, name in zip(WEEKDAYS, DAY_NAMES, strict=True):
                        yield (block.get("id"), day), f"{inner} › {name}", ", ".join(value.get(day) or []) or "(none)"
                elif key != "redirectNums" and not (by_number and key.endswith("Term")):
                    yield (block.get("id"), key), f"{inner} › {key}", value
            for redirect in block.get("redirectNums") or []:
                entry = dict(redirect)
                number = forwarding_digits(entry.get("num")) or entry.get("num")
                ident = number if by_number else (entry.get("id") or f"new {number}")
                if by_number:
                    entry.pop("id", None)
                    entry["num"] = number
                yield (block.get("id"), "redirect", ident), f"{inner} › {redirect_label(redirect)}", entry


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return repr(value) if isinstance(value, str) and value == "" else str(value)
