"""Queues, and enqueueing a job together with an idempotency claim in one Redis round trip.

``claim_and_enqueue`` lets RQ build the job exactly as ``Queue.enqueue_call`` would (into a
pipeline that is never executed), then sends those commands to a Lua script that runs them only
if the claim keys are free. A duplicate webhook therefore never creates a second job, and a new
one costs a single round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

# Click-to-call first: a person is waiting for their phone to ring.
CALLBACKS = "callbacks"
DEFAULT = "default"
QUEUE_NAMES = (CALLBACKS, DEFAULT)


def make_queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def queues(connection: Redis) -> list[Queue]:
    return [make_queue(name, connection) for name in QUEUE_NAMES]


@dataclass(frozen=True)
class Claim:
    """A key that, when set, names the request already made for it."""

    key: str
    ttl: int


# KEYS: the claim keys. ARGV: value, then per claim its TTL, then the RQ commands, each as
# its argument count followed by its arguments.
_CLAIM_AND_ENQUEUE = """
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
while pos <= #ARGV do
  local n = tonumber(ARGV[pos])
  redis.call(unpack(ARGV, pos + 1, pos + n))
  pos = pos + n + 1
end
return {1, ARGV[1]}
"""


class Enqueuer:
    """Builds and sends jobs for one queue; reuse one per process (it caches the server version)."""

    def __init__(self, queue: Queue):
        self.queue = queue
        self.connection: Redis = queue.connection
        self._script = self.connection.register_script(_CLAIM_AND_ENQUEUE)

    def claim_and_enqueue(
        self, claims: list[Claim], value: str, func: Callable | str, *, job_id: str, extra: list[tuple] = (), **job
    ) -> tuple[bool, str]:
        """Set every claim key to ``value`` and enqueue the job, unless a claim key is set.

        Returns (True, value) when enqueued, or (False, the existing value). ``extra`` commands
        (e.g. storing a status record) run only when enqueued.
        """
        recorder = self.connection.pipeline(transaction=False)
        self.queue.enqueue_call(func, job_id=job_id, pipeline=recorder, **job)
        for command in extra:
            recorder.execute_command(*command)
        args: list = [value, *(claim.ttl for claim in claims)]
        for command, _options in recorder.command_stack:
            args.append(len(command))
            args.extend(command)
        recorder.reset()
        created, existing = self._script(keys=[claim.key for claim in claims], args=args)
        return bool(created), existing.decode() if isinstance(existing, bytes) else existing
