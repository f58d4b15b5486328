"""``Enqueuer``: the job RQ itself would create, one job per claim, in one round trip."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable

from rq import SimpleWorker, get_current_job
from rq.job import Job, JobStatus
from rq.utils import now, utcparse

from integration.callbacks import JOB, job_options
from integration.queues import CALLBACKS, Claim, Enqueuer, make_queue

# --- The drift test: our script must write what RQ's own ``enqueue_call`` writes -----------------
#
# ``Enqueuer`` replays commands RQ generated once, when the process started; an RQ upgrade that
# writes a job differently would otherwise go unnoticed until a worker misreads a click-to-call.
# Both enqueue the same job (same id, function, options) into an emptied database, and everything
# in the database afterwards is compared: every key, its type, its TTL and its whole contents (every
# field of the job hash, the queue list, ``rq:queues``, any registry). Only these may differ:
#
# - ``created_at`` and ``enqueued_at`` in the job hash: the times of two enqueues made one after the
#   other can't be equal (and ours stamps both with one time, RQ's takes two readings microseconds
#   apart). Instead each must be a time during its own enqueue, so a time frozen into the script
#   when the ``Enqueuer`` was built fails too. A new time field RQ adds is not in this list: the two
#   enqueues give it different values and the test fails until someone looks.
# - TTLs, to the second (milliseconds rounded up): each snapshot is read within milliseconds of its
#   EXPIRE, so a key's TTL reads the same unless the two differ.
#
# The job id is the same in both runs (the database is emptied in between), so keys and values that
# hold it are compared as they are, with nothing normalised: a placeholder left in by the script
# would differ.

TIME_FIELDS = (b"created_at", b"enqueued_at")


def _snapshot(redis_conn) -> dict[tuple, object]:
    """Every key in the database, flattened so that a failure names the key or field that differs:
    ``(key, "type")``, ``(key, "ttl")`` (``None``: none), then ``(key, "field", name)`` for each
    field of a hash and ``(key, "contents")`` for any other type."""
    readers = {
        b"string": redis_conn.get,
        b"list": lambda key: redis_conn.lrange(key, 0, -1),
        b"set": redis_conn.smembers,
        b"zset": lambda key: redis_conn.zrange(key, 0, -1, withscores=True),
        b"stream": redis_conn.xrange,
    }
    state: dict[tuple, object] = {}
    for key in redis_conn.scan_iter(count=1000):
        kind = redis_conn.type(key)
        pttl = redis_conn.pttl(key)
        state[key, "type"] = kind
        state[key, "ttl"] = None if pttl == -1 else math.ceil(pttl / 1000)
        if kind == b"hash":
            state.update(((key, "field", name), value) for name, value in redis_conn.hgetall(key).items())
        else:
            assert kind in readers, f"{key!r} is a {kind!r}, which this test cannot read yet"
            state[key, "contents"] = readers[kind](key)
    return state


def _written_by(redis_conn, enqueue: Callable[[], object], job_id: str) -> dict[tuple, object]:
    """What ``enqueue`` writes into the emptied database, its time fields checked and replaced."""
    redis_conn.flushdb()
    before = now()
    enqueue()
    after = now()
    state = _snapshot(redis_conn)
    for name in TIME_FIELDS:
        entry = (f"rq:job:{job_id}".encode(), "field", name)
        if entry in state and before <= utcparse(state[entry].decode()) <= after:
            state[entry] = "a time during this enqueue"
    return state


def test_our_script_writes_every_key_and_field_that_rq_enqueue_call_writes(redis_conn):
    job_id = uuid.uuid4().hex  # as ``CallbackIntake`` makes them
    options = job_options(60)  # the click-to-call job's own options (CALLBACK_TTL's default)
    queue = make_queue(CALLBACKS, redis_conn)
    enqueuer = Enqueuer(queue, JOB, **options)
    claims = [Claim("test:idempotency", 86400), Claim("test:debounce", 15)]
    record = ("SET", "test:record", "{}", "EX", 86400)

    ours = _written_by(
        redis_conn,
        lambda: enqueuer.claim_and_enqueue(claims, job_id, job_id=job_id, account="acme-2", extra=[record]),
        job_id,
    )
    rqs = _written_by(
        redis_conn, lambda: queue.enqueue_call(JOB, job_id=job_id, meta={"account": "acme-2"}, **options), job_id
    )

    # Ours also holds the claims and what the extra command stored; without them it must be RQ's.
    for key, ttl, value in [
        (b"test:idempotency", 86400, job_id.encode()),
        (b"test:debounce", 15, job_id.encode()),
        (b"test:record", 86400, b"{}"),
    ]:
        assert [ours.pop((key, part)) for part in ("type", "ttl", "contents")] == [b"string", ttl, value]
    assert ours == rqs
    # Not two empty databases: RQ's job, queue and set of queues are there.
    job_key = f"rq:job:{job_id}".encode()
    assert rqs[job_key, "field", b"status"] == b"queued"
    assert rqs[b"rq:queue:callbacks", "contents"] == [job_id.encode()]
    assert rqs[b"rq:queues", "contents"] == {b"rq:queue:callbacks"}


def record_run() -> None:
    """The job of the worker test: records the job as the worker hands it over."""
    job = get_current_job()
    seen = {
        name: getattr(job, name)
        for name in ("id", "func_name", "args", "kwargs", "origin", "description", "timeout", "ttl", "meta")
    }
    seen |= {"result_ttl": job.result_ttl, "failure_ttl": job.failure_ttl, "status": job.get_status().value}
    job.connection.rpush("test:ran", json.dumps(seen))


def _run_by_a_worker(redis_conn, enqueue: Callable[[], object]) -> dict:
    """What an RQ worker (burst, in this process) does with the job ``enqueue`` puts in the emptied
    database, and what it leaves behind."""
    redis_conn.flushdb()
    enqueue()
    queue = make_queue(CALLBACKS, redis_conn)
    worker = SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer, name="test-worker")
    assert worker.work(burst=True)
    worker.refresh()  # its job counts are kept in Redis
    return {
        "ran": [json.loads(run) for run in redis_conn.lrange("test:ran", 0, -1)],
        "succeeded": worker.successful_job_count,
        "failed": worker.failed_job_count + queue.failed_job_registry.count,
        "left in the queue": queue.job_ids,
        "keys left": {key: redis_conn.type(key) for key in redis_conn.scan_iter()},
    }


def test_an_rq_worker_runs_the_job_our_script_enqueued_as_one_rq_enqueued(redis_conn):
    job_id, func, options = uuid.uuid4().hex, f"{__name__}.record_run", job_options(60)
    queue = make_queue(CALLBACKS, redis_conn)
    enqueuer = Enqueuer(queue, func, **options)
    ours = _run_by_a_worker(redis_conn, lambda: enqueuer.claim_and_enqueue([], job_id, job_id=job_id))
    rqs = _run_by_a_worker(
        redis_conn, lambda: queue.enqueue_call(func, job_id=job_id, meta={"account": "default"}, **options)
    )
    assert ours == rqs
    assert ours["ran"] == [
        {
            "id": job_id,
            "func_name": func,
            "args": [],
            "kwargs": {},
            "origin": CALLBACKS,
            "description": f"{func}()",
            "timeout": 180,
            "ttl": 120,
            "meta": {"account": "default"},
            "result_ttl": 0,
            "failure_ttl": 7 * 86400,
            "status": "started",
        }
    ]
    assert (ours["succeeded"], ours["failed"], ours["left in the queue"]) == (1, 0, [])
    assert f"rq:job:{job_id}".encode() not in ours["keys left"]  # result_ttl=0: gone once done


def test_claim_and_enqueue_creates_one_job_rq_can_read(redis_conn):
    queue = make_queue(CALLBACKS, redis_conn)
    enqueuer = Enqueuer(queue, JOB, **job_options(60))
    claim = [Claim("test:claim", 60)]
    extra = [("SET", "test:record", "stored", "EX", 60)]
    assert enqueuer.claim_and_enqueue(claim, "first", job_id="first", extra=extra) == (True, "first")
    assert enqueuer.claim_and_enqueue(claim, "second", job_id="second", extra=[("SET", "test:other", "x")]) == (
        False,
        "first",
    )
    assert queue.job_ids == ["first"]
    assert redis_conn.get("test:record") == b"stored" and not redis_conn.exists("test:other")
    job = Job.fetch("first", connection=redis_conn, serializer=queue.serializer)
    assert job.func_name == JOB and job.args == [] and job.kwargs == {}
    assert job.get_status() == JobStatus.QUEUED
    assert job.timeout == 180 and job.result_ttl == 0 and job.ttl == 120
    assert 0 < redis_conn.ttl("rq:job:first") <= 120
    assert job.enqueued_at is not None and job.created_at is not None


def test_a_second_claim_key_is_set_to_the_first_ones_value(redis_conn):
    queue = make_queue(CALLBACKS, redis_conn)
    enqueuer = Enqueuer(queue, JOB, **job_options(60))
    enqueuer.claim_and_enqueue([Claim("test:debounce", 60)], "first", job_id="first")
    created, existing = enqueuer.claim_and_enqueue(
        [Claim("test:idempotency", 60), Claim("test:debounce", 60)], "second", job_id="second"
    )
    assert (created, existing) == (False, "first")
    assert redis_conn.get("test:idempotency") == b"first"


def test_the_script_is_loaded_again_after_redis_forgets_it(redis_conn):
    queue = make_queue(CALLBACKS, redis_conn)
    enqueuer = Enqueuer(queue, JOB, **job_options(60))
    redis_conn.script_flush()
    assert enqueuer.claim_and_enqueue([Claim("test:claim", 60)], "first", job_id="first") == (True, "first")
    assert queue.job_ids == ["first"]
