"""Queue names and the RQ connection settings shared by producers and workers."""

from __future__ import annotations

from rq import Queue
from rq.serializers import JSONSerializer

# Click-to-call first: a person is waiting for their phone to ring.
QUEUE_NAMES = ("callbacks", "default")


def queues(connection) -> list[Queue]:
    return [Queue(name, connection=connection, serializer=JSONSerializer) for name in QUEUE_NAMES]
