"""Work items: everything a worker must do until it is done, in one table, with one retry policy.

A work item is one ``kind`` of work on one ``subject`` for one ``target`` (a CRM, or ``""``):
deliver a call to a CRM, send an outbox event, fetch a call's recording, handle a CRM event,
place a rule's callback at its time. It is ``pending`` until its handler succeeds (``done``, with
what it returned as ``result``) or the retry policy gives up (``failed``, with the ``last_error``). The sweeper queues every pending
item whose ``next_attempt_at`` has come, so an emptied Redis loses nothing.

The retry policy is the same for every kind: a few quick retries, then doubling waits capped at
30 minutes, for ``window(kind)`` (24 hours; 48 for a recording, which the operator may make
available late) from the item's ``created_at`` (when it was first due); an error that is not
``retryable`` gives up at once.

The domain ledgers (``deliveries``, ``outbox``, ``recordings``, ``crm_events``) keep their own
data and read and write their work state here, in the same transaction where the two must agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import Connection, Engine, and_, case, false, func, or_, select, update
from sqlalchemy.sql import ColumnElement

from integration.ledger.db import dialect_module
from integration.ledger.tables import DEFAULT_ACCOUNT, work_items


class WorkStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class WorkKind(StrEnum):
    DELIVER_CALL = "deliver_call"  # subject: the call id; target: the CRM
    SEND_EVENT = "send_event"  # subject: the outbox event id
    FETCH_RECORDING = "fetch_recording"  # subject: the call id
    HANDLE_EVENT = "handle_event"  # subject: the CRM event id
    RULE_CALLBACK = "rule_callback"  # subject: the CRM event id; target: the rule's name


# The one retry policy.
RETRY_WINDOW = timedelta(hours=24)
WINDOWS: Mapping[WorkKind, timedelta] = {
    WorkKind.FETCH_RECORDING: timedelta(hours=48),  # how long a recording may take to appear, faults included
}
FIRST_RETRY = 2.0  # seconds
QUICK_RETRIES = 5  # retried this often within seconds before the waits start doubling
LONGEST_WAIT = 1800.0


def retry_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before attempt ``attempt + 1``: 2 for the first five retries, then 4, 8, 16 …
    capped at 30 min; jittered to 50–100 %.

    The quick retries are for a CRM that drops some requests: even one dropping a third delays
    no call by minutes (seven failures in a row still wait under half a minute in all).
    """
    ceiling = min(LONGEST_WAIT, FIRST_RETRY * 2 ** max(0, attempt - QUICK_RETRIES + 1))
    return ceiling * (0.5 + 0.5 * rng())


def window(kind: str) -> timedelta:
    """How long after its creation an item of ``kind`` is retried."""
    return WINDOWS.get(WorkKind(kind), RETRY_WINDOW)


def next_attempt(
    kind: str,
    attempts: int,
    created_at: datetime,
    now: datetime,
    retryable: bool,
    rng: Callable[[], float] = random.random,
) -> datetime | None:
    """When to try again after a failed attempt (``attempts`` made before it), or None: give up."""
    if not retryable or now - created_at >= window(kind):
        return None
    return now + timedelta(seconds=retry_delay(attempts, rng))


class WorkKey(NamedTuple):
    kind: str
    subject: str
    target: str = ""


@dataclass(frozen=True)
class WorkItem:
    id: int
    kind: str
    subject: str
    target: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    result: str | None = None
    finished_at: datetime | None = None
    account: str = DEFAULT_ACCOUNT

    @property
    def key(self) -> WorkKey:
        return WorkKey(self.kind, self.subject, self.target)


ERROR_LENGTH = 2000
RESULT_LENGTH = 4000


def of(key: WorkKey, account: str) -> ColumnElement[bool]:
    """The condition selecting one account's item."""
    return and_(
        work_items.c.account == account,
        work_items.c.kind == key.kind,
        work_items.c.subject == key.subject,
        work_items.c.target == key.target,
    )


def joined_on(kind: str, account, subject, target="") -> ColumnElement[bool]:
    """The join condition from a domain row to its work item (``account``, ``subject``,
    ``target``: columns or values)."""
    return and_(
        work_items.c.account == account,
        work_items.c.kind == kind,
        work_items.c.subject == subject,
        work_items.c.target == target,
    )


def status_as(names: Mapping[str, str]):
    """The item's status, renamed as a domain ledger calls it (e.g. ``done`` → ``delivered``)."""
    return case(names, value=work_items.c.status, else_=work_items.c.status)


def add_items(
    connection: Connection,
    keys: Iterable[WorkKey],
    now: datetime,
    due: datetime | None = None,
    *,
    account: str = DEFAULT_ACCOUNT,
) -> None:
    """Pending items for the keys that have none yet (in the caller's transaction), first due at
    ``due`` (default: now), which is also where their retry window starts."""
    rows = [
        {
            "account": account,
            "kind": key.kind,
            "subject": key.subject,
            "target": key.target,
            "status": WorkStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": due or now,
            "created_at": due or now,
        }
        for key in keys
    ]
    if rows:
        connection.execute(dialect_module(connection.engine).insert(work_items).on_conflict_do_nothing(), rows)


def finish(
    connection: Connection,
    key: WorkKey,
    now: datetime,
    result: str | None = None,
    *,
    from_failed: bool = False,
    attempted: bool = True,
    account: str = DEFAULT_ACCOUNT,
) -> bool:
    """Mark a pending item (or a failed one, ``from_failed``) ``done``, counting the attempt that
    did it unless not ``attempted`` (settled without running); True when this call did it."""
    statuses = [WorkStatus.PENDING.value] + ([WorkStatus.FAILED.value] if from_failed else [])
    statement = (
        update(work_items)
        .where(of(key, account), work_items.c.status.in_(statuses))
        .values(
            status=WorkStatus.DONE.value,
            attempts=work_items.c.attempts + (1 if attempted else 0),
            next_attempt_at=None,
            finished_at=now,
            result=result[:RESULT_LENGTH] if result is not None else None,
        )
    )
    return connection.execute(statement).rowcount == 1


def record_attempt(
    connection: Connection,
    key: WorkKey,
    error: str,
    next_attempt_at: datetime | None,
    now: datetime,
    given_up: str | None = None,
    *,
    account: str = DEFAULT_ACCOUNT,
) -> bool:
    """Count a failed attempt of a pending item: retried at ``next_attempt_at``, or given up
    (``failed``, with ``given_up`` as its result)."""
    values: dict = {
        "attempts": work_items.c.attempts + 1,
        "last_error": error[:ERROR_LENGTH],
        "next_attempt_at": next_attempt_at,
    }
    if next_attempt_at is None:
        values |= {
            "status": WorkStatus.FAILED.value,
            "finished_at": now,
            "result": given_up and given_up[:RESULT_LENGTH],
        }
    pending = work_items.c.status == WorkStatus.PENDING.value
    statement = update(work_items).where(of(key, account), pending).values(**values)
    return connection.execute(statement).rowcount == 1


def _item(row) -> WorkItem:
    return WorkItem(**row._mapping)


class WorkLedger:
    """One account's work items (keys are unique across accounts: their subjects are)."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account

    def ensure(self, keys: Iterable[WorkKey], now: datetime) -> None:
        with self.engine.begin() as connection:
            add_items(connection, keys, now, account=self.account)

    def schedule(self, key: WorkKey, at: datetime, now: datetime) -> None:
        """A pending item first due at ``at`` (the sweeper queues it then), unless the key has one."""
        with self.engine.begin() as connection:
            add_items(connection, [key], now, due=at, account=self.account)

    def get(self, key: WorkKey) -> WorkItem | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(work_items).where(of(key, self.account))).first()
        return _item(row) if row else None

    def due(self, now: datetime, limit: int = 500, *, kinds: Mapping[str, str | None] | None = None) -> list[WorkItem]:
        """Pending items of every kind whose next attempt has come, the longest-waiting first.

        ``kinds`` narrows them: kind → the only target wanted (None: any target); kinds absent
        from it are left out.
        """
        statement = select(work_items).where(
            work_items.c.account == self.account,
            work_items.c.status == WorkStatus.PENDING.value,
            work_items.c.next_attempt_at <= now,
        )
        if kinds is not None:
            wanted = [
                work_items.c.kind == kind
                if target is None
                else (work_items.c.kind == kind) & (work_items.c.target == target)
                for kind, target in kinds.items()
            ]
            statement = statement.where(or_(false(), *wanted))
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(work_items.c.next_attempt_at).limit(limit))
            return [_item(row) for row in rows]

    def finish(self, key: WorkKey, now: datetime, result: str | None = None, *, attempted: bool = True) -> bool:
        with self.engine.begin() as connection:
            return finish(connection, key, now, result, attempted=attempted, account=self.account)

    def fail_attempt(
        self, key: WorkKey, error: str, now: datetime, *, retryable: bool, given_up: str | None = None
    ) -> datetime | None:
        """Count a failed attempt under the retry policy; returns the next attempt's time, or None
        when the item is given up (``failed``, with ``given_up`` as its result) — or is not pending."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(work_items.c.attempts, work_items.c.created_at).where(
                    of(key, self.account), work_items.c.status == WorkStatus.PENDING.value
                )
            ).first()
            if row is None:
                return None
            at = next_attempt(key.kind, row.attempts, row.created_at, now, retryable)
            record_attempt(connection, key, error, at, now, given_up, account=self.account)
            return at

    def postpone(self, key: WorkKey, reason: str, until: datetime, *, restart_window: bool = False) -> None:
        """Count an attempt that waited on something else (not a failure of the item): tried again
        at ``until`` — where its retry window starts again when ``restart_window`` (a callback
        moved to the next business hours gets its full window there)."""
        with self.engine.begin() as connection:
            record_attempt(connection, key, reason, until, until, account=self.account)
            if restart_window:
                connection.execute(update(work_items).where(of(key, self.account)).values(created_at=until))

    def defer(self, key: WorkKey, until: datetime) -> None:
        """Run a pending item later without counting an attempt (its account's workers were busy)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(work_items)
                .where(of(key, self.account), work_items.c.status == WorkStatus.PENDING.value)
                .values(next_attempt_at=until)
            )

    def stuck(self, kind: str | None = None, limit: int = 50, offset: int = 0) -> list[WorkItem]:
        """Failed items, and pending ones that have failed an attempt already, newest first."""
        statement = select(work_items).where(
            work_items.c.account == self.account,
            or_(
                work_items.c.status == WorkStatus.FAILED.value,
                and_(work_items.c.status == WorkStatus.PENDING.value, work_items.c.attempts > 0),
            ),
        )
        if kind:
            statement = statement.where(work_items.c.kind == kind)
        statement = (
            statement.order_by(work_items.c.created_at.desc(), work_items.c.id.desc()).limit(limit).offset(offset)
        )
        with self.engine.connect() as connection:
            return [_item(row) for row in connection.execute(statement)]

    def unfinished(self) -> dict[tuple[str, str], int]:
        """Pending and failed items by (kind, status)."""
        statement = (
            select(work_items.c.kind, work_items.c.status, func.count())
            .where(
                work_items.c.account == self.account, work_items.c.status.in_((WorkStatus.PENDING, WorkStatus.FAILED))
            )
            .group_by(work_items.c.kind, work_items.c.status)
        )
        with self.engine.connect() as connection:
            return {(kind, status): count for kind, status, count in connection.execute(statement)}

    def retry(self, keys: Iterable[WorkKey], now: datetime) -> list[WorkKey]:
        """Failed items become pending again, due now, with a fresh retry window; pending ones
        become due now. Returns the keys that were (done ones stay done)."""
        retried = []
        with self.engine.begin() as connection:
            for key in keys:
                failed = connection.execute(
                    update(work_items)
                    .where(of(key, self.account), work_items.c.status == WorkStatus.FAILED.value)
                    .values(status=WorkStatus.PENDING.value, next_attempt_at=now, created_at=now, finished_at=None)
                )
                pending = connection.execute(
                    update(work_items)
                    .where(of(key, self.account), work_items.c.status == WorkStatus.PENDING.value)
                    .values(next_attempt_at=now)
                )
                if failed.rowcount or pending.rowcount:
                    retried.append(key)
        return retried


def due_everywhere(engine: Engine, now: datetime, per_account: int, limit: int) -> list[WorkItem]:
    """Pending items of every account whose next attempt has come, the longest-waiting first, at
    most ``per_account`` of one account (a backlog never crowds out the others)."""
    rank = func.row_number().over(partition_by=work_items.c.account, order_by=work_items.c.next_attempt_at)
    ranked = (
        select(work_items, rank.label("rank"))
        .where(work_items.c.status == WorkStatus.PENDING.value, work_items.c.next_attempt_at <= now)
        .subquery()
    )
    columns = [ranked.c[column.name] for column in work_items.c]
    statement = select(*columns).where(ranked.c.rank <= per_account).order_by(ranked.c.next_attempt_at).limit(limit)
    with engine.connect() as connection:
        return [_item(row) for row in connection.execute(statement)]


def hold_off(engine: Engine, ids: Sequence[int], now: datetime, until: datetime) -> None:
    """Items just queued leave the due set until ``until`` (their job's time limit), unless their
    job has already moved their next attempt: a later sweep finds them only if the job was lost."""
    with engine.begin() as connection:
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            connection.execute(
                update(work_items)
                .where(
                    work_items.c.id.in_(chunk),
                    work_items.c.status == WorkStatus.PENDING.value,
                    work_items.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
            )


def unfinished_by_account(engine: Engine) -> dict[str, dict[str, int]]:
    """Every account's pending and failed work items: {account: {status: count}}."""
    statement = (
        select(work_items.c.account, work_items.c.status, func.count())
        .where(work_items.c.status.in_((WorkStatus.PENDING, WorkStatus.FAILED)))
        .group_by(work_items.c.account, work_items.c.status)
    )
    found: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for account, status, count in connection.execute(statement):
            found.setdefault(account, {})[status] = count
    return found
