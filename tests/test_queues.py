"""``Enqueuer``: the job RQ itself would create, one job per claim, in one round trip."""

from __future__ import annotations

from rq.job import Job, JobStatus

from integration.callbacks import JOB, job_options
from integration.queues import CALLBACKS, Claim, Enqueuer, make_queue

TIMES = {b"created_at", b"enqueued_at"}


def _state(redis_conn, job_id: str) -> dict:
    job = {k: v for k, v in redis_conn.hgetall(f"rq:job:{job_id}").items() if k not in TIMES}
    expires = 110 < redis_conn.ttl(f"rq:job:{job_id}") <= 120
    return {"job": job, "expires": expires, "keys": len(redis_conn.keys(f"*{job_id}*"))}


def test_the_job_is_the_one_rq_would_enqueue(redis_conn):
    queue = make_queue(CALLBACKS, redis_conn)
    Enqueuer(queue, JOB, **job_options(60)).claim_and_enqueue([], "ours", job_id="ours")
    queue.enqueue_call(JOB, job_id="rqs", **job_options(60))
    assert _state(redis_conn, "ours") == _state(redis_conn, "rqs")
    assert queue.job_ids == ["ours", "rqs"]
    assert redis_conn.smembers("rq:queues") == {b"rq:queue:callbacks"}


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
