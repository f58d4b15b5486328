"""Queues, and enqueueing a job together with an idempotency claim in one Redis round trip.

An ``Enqueuer`` lets RQ build one job of its function exactly as ``Queue.enqueue_call`` would
(into a pipeline that is never executed) and turns those commands into a Lua script with the job
id and the time left open; ``claim_and_enqueue`` runs that script, which enqueues only if the
claim keys are free. A duplicate webhook therefore never creates a second job, and a new one
costs a single short round trip and no job construction. The job's function takes no
arguments: it reads what it needs by its job id.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import NoScriptError
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from integration.keys import DEFAULT_ACCOUNT

# Served in this order. Click-to-call first: a person is waiting for their phone to ring. Then
# the periodic runs (each account's sync, the sweeper), so no account's backlog delays another's
# sync; then work items; last, the work of a large backlog (a month's backfill), so one account's
# 100,000 deliveries wait behind everyone else's few.
CALLBACKS = "callbacks"
PERIODIC = "periodic"
DEFAULT = "default"
BULK = "bulk"
QUEUE_NAMES = (CALLBACKS, PERIODIC, DEFAULT, BULK)
BULK_AFTER = 100  # more work items than this queued at once go to the bulk queue


def make_queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def queues(connection: Redis, names: tuple[str, ...] = QUEUE_NAMES) -> list[Queue]:
    """The queues a worker serves, in the order it serves them."""
    return [make_queue(name, connection) for name in names]


@dataclass(frozen=True)
class WorkerState:
    name: str
    state: str  # RQ's: idle, busy, suspended…
    queues: tuple[str, ...]
    last_heartbeat: datetime | None


def queue_depths(connection: Redis) -> dict[str, int]:
    """Jobs waiting in each queue, in serving order (one round trip)."""
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues(connection):
            pipe.llen(queue.key)
        return dict(zip(QUEUE_NAMES, pipe.execute(), strict=True))


def workers_alive(connection: Redis) -> list[WorkerState]:
    """The workers that have registered and not gone quiet (RQ drops a worker whose heartbeat
    stops)."""
    return [
        WorkerState(
            w.name, str(getattr(w.get_state(), "value", w.get_state())), tuple(w.queue_names()), w.last_heartbeat
        )
        for w in Worker.all(connection=connection)
    ]


@dataclass(frozen=True)
class Claim:
    """A key that, when set, names the request already made for it."""

    key: str
    ttl: int


# The claims part of the script. KEYS: the claim keys. ARGV: the value, then per claim its TTL,
# then the job id, the time and the account (used by the job's commands, which are generated into
# the script),
# then extra commands, each as its argument count followed by its arguments.
_CLAIMS = """
for i, key in ipairs(KEYS) do
  local existing = redis.call('GET', key)
  if existing then
    for j, other in ipairs(KEYS) do
      if j < i then redis.call('SET', other, existing, 'EX', ARGV[1 + j]) end
    end
    return {0, existing}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[1 + i])
end
local pos = 2 + #KEYS
local id, stamp, account = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2]
"""
_EXTRA = """
pos = pos + 3
while pos <= #ARGV do
  local n = tonumber(ARGV[pos])
  redis.call(unpack(ARGV, pos + 1, pos + n))
  pos = pos + n + 1
end
return {1, ARGV[1]}
"""

# Stand for the job id and its account while RQ builds the template (Lua variables in the script).
PLACEHOLDERS = {"JOB-ID-PLACEHOLDER-0c9f5e1a": "id", "ACCOUNT-PLACEHOLDER-5b7d2e90": "account"}
_ID, _ACCOUNT = PLACEHOLDERS


class Enqueuer:
    """Enqueues jobs of one function with fixed options; build one per process and reuse it.
    Each job's meta names its account (``RuntimeJob`` runs it with that account's runtime)."""

    def __init__(self, queue: Queue, func: str, **options):
        self.queue = queue
        self.connection: Redis = queue.connection
        recorder = self.connection.pipeline(transaction=False)
        job = queue.enqueue_call(func, job_id=_ID, pipeline=recorder, meta={"account": _ACCOUNT}, **options)
        stamps = {utcformat(moment) for moment in (job.created_at, job.enqueued_at) if moment is not None}
        encode = self.connection.get_encoder().encode
        commands = [command for command, _options in recorder.command_stack]
        recorder.reset()
        # RQ's own commands for this job, every one as RQ sends it, as Lua: constants travel once,
        # not with every request. tests/test_queues.py compares what they write with RQ's.
        calls = ["redis.call(" + ", ".join(_lua_expression(encode(arg), stamps) for arg in c) + ")" for c in commands]
        self._script = self.connection.register_script(_CLAIMS + "\n".join(calls) + _EXTRA)
        self._sha = self._script.sha

    def claim_and_enqueue(
        self,
        claims: list[Claim],
        value: str,
        *,
        job_id: str,
        account: str = DEFAULT_ACCOUNT,
        extra: Sequence[tuple] = (),
    ) -> tuple[bool, str]:
        """Set every claim key to ``value`` and enqueue the job, unless a claim key is set.

        Returns (True, value) when enqueued, or (False, the existing value). ``extra`` commands
        (e.g. storing a status record) run only when enqueued.
        """
        args: list = [value, *(claim.ttl for claim in claims), job_id, utcformat(now()), account]
        for command in extra:
            args.append(len(command))
            args.extend(command)
        keys = [claim.key for claim in claims]
        try:
            # EVALSHA directly: redis-py's Script wrapper checks for deprecated arguments on every call.
            created, existing = self.connection.execute_command("EVALSHA", self._sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or flushed Redis: load the script and run it once more
            created, existing = self._script(keys=keys, args=args)
        return bool(created), existing.decode() if isinstance(existing, bytes) else existing


def _lua_expression(arg: bytes, stamps: set[str]) -> str:
    """A recorded argument as Lua: the time, strings around the job id and account, or a constant."""
    if arg.decode(errors="replace") in stamps:
        return "stamp"
    pattern = re.compile(b"(" + b"|".join(re.escape(p.encode()) for p in PLACEHOLDERS) + b")")
    pieces = [
        PLACEHOLDERS[part.decode()] if i % 2 else _lua_string(part) for i, part in enumerate(pattern.split(arg)) if part
    ]
    return " .. ".join(pieces) or '""'


def _lua_string(data: bytes) -> str:
    """A Lua string literal of any bytes (printable ASCII kept readable)."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in data) + '"'


# One job per work item and attempt, however many times it is asked for (unique job ids).


def digest(subject: str) -> str:
    """A short, job-id-safe stand-in for any subject (call ids hold colons)."""
    return hashlib.sha1(subject.encode()).hexdigest()[:20]


WORK_JOB = "integration.jobs.run_work_item"
WORK_LEASE = 120  # seconds a work item's job may run


def work_job_id(kind: str, subject: str, target: str, attempt: int, account: str = DEFAULT_ACCOUNT) -> str:
    """A work item's job id for one attempt (the ids each kind had before there was one entry
    point; a stored account's begin with its id)."""
    if kind == "deliver_call":
        job_id = f"deliver-{target}-{digest(subject)}-{attempt}"
    elif kind == "send_event":
        job_id = f"event-{subject}-{attempt}"
    elif kind == "fetch_recording":
        job_id = f"recording-{digest(subject)}-{attempt}"
    elif kind == "handle_event":
        job_id = f"crm-event-{digest(subject)}-{attempt}"
    else:
        job_id = f"work-{kind}-{digest(f'{subject}:{target}')}-{attempt}"
    return job_id if account == DEFAULT_ACCOUNT else f"{account}-{job_id}"


def enqueue_work(queue, kind: str, subject: str, target: str, attempt: int, account: str = DEFAULT_ACCOUNT) -> None:
    """Queue one attempt of a work item unless a job for that attempt exists."""
    with contextlib.suppress(DuplicateJobError):
        queue.enqueue_call(
            WORK_JOB,
            args=(kind, subject, target),
            job_id=work_job_id(kind, subject, target, attempt, account),
            unique=True,
            result_ttl=0,
            failure_ttl=86400,
            timeout=WORK_LEASE,
            meta={"account": account},
        )


def enqueue_missing(queue, items: Sequence[tuple[str, str, str, int]], account: str = DEFAULT_ACCOUNT) -> int:
    """Queue each (kind, subject, target, attempt) that has no job yet; one round trip finds
    those that have (a backlog's items are mostly queued already). Returns how many were queued."""
    job_ids = [work_job_id(*item, account) for item in items]
    pipeline = queue.connection.pipeline(transaction=False)
    for job_id in job_ids:
        pipeline.exists(Job.key_for(job_id))
    missing = [item for item, exists in zip(items, pipeline.execute(), strict=True) if not exists]
    for item in missing:
        enqueue_work(queue, *item, account)
    return len(missing)
