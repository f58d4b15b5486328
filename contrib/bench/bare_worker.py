"""An RQ worker on the baseline queue (``bench``), of the class named on the command line."""

import os
import sys

import redis
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

if __name__ == "__main__":
    connection = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"))
    worker_class = SimpleWorker if sys.argv[1:] == ["simple"] else Worker
    queue = Queue("bench", connection=connection, serializer=JSONSerializer)
    worker_class([queue], connection=connection, serializer=JSONSerializer).work(logging_level="WARNING")
