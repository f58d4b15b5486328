"""``python worker.py [--burst]``: the RQ worker on the project's queues, with the scheduler.

By default it is RQ's ``SimpleWorker``: jobs run in the worker process itself, so a click-to-call
starts within a few milliseconds (the forking ``Worker`` adds ~10 ms per job) and connections
(database, operator, Redis) are reused between jobs. ``WORKER_CLASS=fork`` isolates every job in
a child process instead. Either way, run several worker processes for throughput.
"""

from __future__ import annotations

import argparse
import sys

from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from integration import jobs
from integration.config import settings_or_exit
from integration.queues import queues
from integration.runtime import Runtime
from integration.scheduler import Scheduler, periodic_tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python worker.py", description="vats-bridge background worker")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty (tests, cron)")
    args = parser.parse_args(argv)
    runtime = Runtime(settings_or_exit("vats-bridge worker"))
    jobs.use_runtime(runtime)
    connection = runtime.redis
    worker_class = SimpleWorker if runtime.settings.worker_class == "simple" else Worker
    worker = worker_class(queues(connection), connection=connection, serializer=JSONSerializer)
    scheduler = Scheduler(connection, periodic_tasks(runtime.settings))
    if not args.burst:
        scheduler.start()
    try:
        worker.work(burst=args.burst, with_scheduler=True, logging_level=runtime.settings.log_level)
    finally:
        scheduler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
