"""Periodic work, declared as data, enqueued once per interval however many schedulers run.

Each run has a deterministic job id per time bucket and is enqueued with ``unique=True``, so two
schedulers (or two workers) running by mistake still give one run per interval.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass

from redis import Redis
from rq.exceptions import DuplicateJobError

from integration.config import Settings
from integration.logs import fields
from integration.queues import DEFAULT, make_queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str
    every: int  # seconds
    queue: str = DEFAULT
    at: int | None = None  # seconds into each interval (UTC); default: a stable spread per task
    jitter: int = 0  # up to this many seconds later in each interval, different every interval

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
    """Everything that runs on a schedule."""
    return [
        Periodic("reap_stuck_callbacks", "integration.jobs.reap_stuck_callbacks", every=30),
        Periodic(
            "sync_calls",
            "integration.jobs.sync_calls",
            every=settings.sync_interval,
            jitter=min(10, settings.sync_interval // 4),
        ),
        Periodic("retry_due_deliveries", "integration.jobs.retry_due_deliveries", every=5),
        # 00:00 UTC = 03:00 in Moscow: re-read the whole previous day once it is surely complete.
        Periodic("recheck_yesterday", "integration.jobs.recheck_yesterday", every=86400, at=0),
        Periodic("clean_recordings", "integration.jobs.clean_recordings", every=3600),
    ]


def enqueue_due(connection: Redis, now: float, tasks: list[Periodic]) -> list[str]:
    """Enqueue each task's run for the current interval unless it exists; returns new job ids."""
    enqueued = []
    for task in tasks:
        if not task.due(now):
            continue
        job_id = f"periodic-{task.name}-{task.bucket(now)}"
        try:
            make_queue(task.queue, connection).enqueue_call(
                task.func, job_id=job_id, unique=True, ttl=task.every, result_ttl=task.every * 2, failure_ttl=86400
            )
        except DuplicateJobError:
            continue
        log.debug("periodic job enqueued", extra=fields(job=job_id))
        enqueued.append(job_id)
    return enqueued


class Scheduler(threading.Thread):
    """Runs ``enqueue_due`` every ``tick`` seconds until stopped."""

    def __init__(self, connection: Redis, tasks: list[Periodic], tick: float = 1.0):
        super().__init__(name="vats-scheduler", daemon=True)
        self.connection = connection
        self.tasks = tasks
        self.tick = tick
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                enqueue_due(self.connection, time.time(), self.tasks)
            except Exception:
                log.exception("scheduler tick failed")
            self.stopped.wait(self.tick)

    def stop(self) -> None:
        self.stopped.set()
