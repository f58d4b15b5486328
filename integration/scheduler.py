"""Periodic work, declared as data, enqueued once per interval however many schedulers run.

Each run has a deterministic job id per time bucket and is enqueued with ``unique=True``, so two
schedulers (or two workers) running by mistake still give one run per interval. Deployment-wide
tasks (the sweeper, the reaper, cleaning recordings) visit every account themselves; each served
account gets its own sync and daily re-check, spread over the interval by its id, so thousands of
accounts do not all poll at the same second and only one run per account waits in Redis.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis import Redis
from rq.exceptions import DuplicateJobError

from integration.accounts import AccountError
from integration.config import Settings
from integration.keys import DEFAULT_ACCOUNT
from integration.logs import fields
from integration.queues import DEFAULT, PERIODIC, make_queue
from integration.runtimes import AccountRuntimes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str
    every: int  # seconds
    queue: str = PERIODIC
    at: int | None = None  # seconds into each interval (UTC); default: a stable spread per task
    jitter: int = 0  # up to this many seconds later in each interval, different every interval
    account: str | None = None  # the account whose runtime runs it (None: deployment-wide or default)
    urgent: bool = False  # queued at the front (the sweeper must not wait behind thousands of syncs)

    @property
    def offset(self) -> int:
        """Where in the interval the task fires; tasks are spread so they do not all fire at once."""
        return self.at if self.at is not None else zlib.crc32(self.name.encode()) % self.every

    def bucket(self, now: float) -> int:
        return int((now - self.offset) // self.every)

    def due(self, now: float) -> bool:
        """Whether this interval's run may start: its jitter (the same for every scheduler, as it
        is derived from the interval's number) has passed."""
        if not self.jitter:
            return True
        bucket = self.bucket(now)
        delay = zlib.crc32(f"{self.name}:{bucket}".encode()) % (self.jitter + 1)
        return now >= bucket * self.every + self.offset + delay


def periodic_tasks(settings: Settings) -> list[Periodic]:
    """The deployment-wide tasks and the environment's account's (``default``)."""
    return [
        Periodic("reap_stuck_callbacks", "integration.jobs.reap_stuck_callbacks", every=30, urgent=True),
        Periodic("retry_due_deliveries", "integration.jobs.retry_due_deliveries", every=5, urgent=True),
        Periodic("clean_recordings", "integration.jobs.clean_recordings", every=3600, urgent=True),
        *account_tasks(DEFAULT_ACCOUNT, settings),
    ]


def account_tasks(account: str, settings: Settings) -> list[Periodic]:
    """One account's sync every SYNC_INTERVAL and its daily re-check of the previous day."""
    if account == DEFAULT_ACCOUNT:  # the names (and job ids) it always had
        sync = Periodic(
            "sync_calls",
            "integration.jobs.sync_calls",
            every=settings.sync_interval,
            jitter=min(10, settings.sync_interval // 4),
        )
        # 00:00 UTC = 03:00 in Moscow: re-read the whole previous day once it is surely complete.
        return [
            sync,
            Periodic("recheck_yesterday", "integration.jobs.recheck_yesterday", every=86400, at=0, queue=DEFAULT),
        ]
    return [
        Periodic(f"sync_calls-{account}", "integration.jobs.sync_calls", every=settings.sync_interval, account=account),
        Periodic(
            f"recheck_yesterday-{account}",
            "integration.jobs.recheck_yesterday",
            every=86400,
            at=zlib.crc32(account.encode()) % 3600,  # spread over the first hour of the UTC day
            queue=DEFAULT,
            account=account,
        ),
    ]


def enqueue_due(
    connection: Redis, now: float, tasks: Iterable[Periodic], seen: dict[str, int] | None = None
) -> list[str]:
    """Enqueue each task's run for the current interval unless it exists; returns new job ids.
    ``seen`` (task name → interval) remembers the intervals already handled, so a scheduler asks
    Redis once per task and interval, not on every tick."""
    enqueued = []
    for task in tasks:
        bucket = task.bucket(now)
        if (seen is not None and seen.get(task.name) == bucket) or not task.due(now):
            continue
        if seen is not None:
            seen[task.name] = bucket
        job_id = f"periodic-{task.name}-{bucket}"
        try:
            make_queue(task.queue, connection).enqueue_call(
                task.func,
                job_id=job_id,
                unique=True,
                ttl=task.every,
                result_ttl=task.every * 2,
                failure_ttl=max(task.every * 2, 3600) if task.account else 86400,
                meta={"account": task.account or DEFAULT_ACCOUNT},
                at_front=task.urgent,
            )
        except DuplicateJobError:
            continue
        log.debug("periodic job enqueued", extra=fields(job=job_id))
        enqueued.append(job_id)
    return enqueued


LEADER = "vats:scheduler:leader"
LEADER_LEASE = 10  # seconds; a leader that stops ticking is replaced this long after


class Scheduler(threading.Thread):
    """Runs ``enqueue_due`` every ``tick`` seconds until stopped, on ``tasks`` and on those
    ``more()`` returns at each tick (every served stored account's). Of all the workers'
    schedulers one leads (a Redis lease) and enqueues; the others stand by, so thousands of
    accounts' runs are enqueued once, not once per worker (unique job ids keep a change of
    leader from running anything twice)."""

    def __init__(
        self,
        connection: Redis,
        tasks: list[Periodic],
        tick: float = 1.0,
        more: Callable[[], Iterable[Periodic]] = tuple,
    ):
        super().__init__(name="vats-scheduler", daemon=True)
        self.connection = connection
        self.tasks = tasks
        self.more = more
        self.tick = tick
        self.stopped = threading.Event()
        self.seen: dict[str, int] = {}
        self.token = uuid.uuid4().hex

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.run_once(time.time())
            except Exception:
                log.exception("scheduler tick failed")
            self.stopped.wait(self.tick)

    def run_once(self, now: float) -> list[str]:
        if not self.leads():
            self.seen.clear()  # when it leads again, it asks Redis afresh
            return []
        return enqueue_due(self.connection, now, [*self.tasks, *self.more()], self.seen)

    def leads(self) -> bool:
        """Take or renew the lease; False while another scheduler holds it."""
        if self.connection.set(LEADER, self.token, nx=True, ex=LEADER_LEASE):
            return True
        if self.connection.get(LEADER) == self.token.encode():
            self.connection.expire(LEADER, LEADER_LEASE)
            return True
        return False

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(Exception):  # hand over at once rather than after the lease
            if self.connection.get(LEADER) == self.token.encode():
                self.connection.delete(LEADER)


class StoredAccountTasks:
    """``Scheduler(more=…)``: every enabled stored account's tasks, rebuilt when accounts change
    (``AccountRuntimes`` rereads their versions every few seconds)."""

    def __init__(self, runtimes: AccountRuntimes):
        self.runtimes = runtimes
        self._built: tuple[object, list[Periodic]] = (None, [])

    def __call__(self) -> list[Periodic]:
        versions = self.runtimes.versions()
        if self._built[0] is not versions:
            tasks = []
            for account, (_, enabled) in versions.items():
                if enabled:
                    with contextlib.suppress(AccountError):  # disabled or deleted meanwhile
                        tasks += account_tasks(account, self.runtimes.get(account).settings)
            self._built = (versions, tasks)
        return self._built[1]
