"""The baselines: a bare Flask endpoint that only enqueues, and no-op jobs."""

import os
import time

import redis
from flask import Flask
from rq import Queue
from rq.serializers import JSONSerializer

app = Flask(__name__)
_queue = Queue(
    "bench",
    connection=redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")),
    serializer=JSONSerializer,
)


@app.post("/enqueue")
def enqueue():
    _queue.enqueue("contrib.bench.bare_app.noop")
    return {"status": "queued"}, 202


def noop() -> None:
    pass


def stamp(key: str, enqueued_at: float) -> None:
    """Record how long the job waited between enqueue and start."""
    connection = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"))
    connection.rpush(key, time.time() - enqueued_at)


@app.get("/static.mp3")
def static_file():
    """A plain static file (``BENCH_STATIC_FILE``): the baseline for serving recordings."""
    from flask import send_file

    return send_file(os.environ["BENCH_STATIC_FILE"], mimetype="audio/mpeg", conditional=True)
