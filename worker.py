"""``python worker.py [--burst]``: the RQ worker on the project's queues, with the scheduler.

By default it is RQ's ``SimpleWorker``: jobs run in the worker process itself, so a click-to-call
starts within a few milliseconds (the forking ``Worker`` adds ~10 ms per job) and connections
(database, operator, Redis) are reused between jobs. ``WORKER_CLASS=fork`` isolates every job in
a child process instead. Either way, run several worker processes for throughput.

Logging is ``integration.logs``'s: RQ's per-job lines show only at LOG_LEVEL=DEBUG.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from integration.jobs import RuntimeJob
from integration.logs import fields, rq_level, setup_logging
from integration.queues import QUEUE_NAMES, queues
from integration.runtime import Runtime
from integration.scheduler import Scheduler, periodic_tasks
from integration.settings import settings_or_exit

log = logging.getLogger("worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python worker.py", description="vats-bridge background worker")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty (tests, cron)")
    args = parser.parse_args(argv)
    settings = settings_or_exit("vats-bridge worker")
    setup_logging(settings)
    runtime = Runtime(settings)
    connection = runtime.redis
    worker_class = SimpleWorker if settings.worker_class == "simple" else Worker
    worker = worker_class(
        queues(connection), connection=connection, serializer=JSONSerializer, job_class=RuntimeJob.bound_to(runtime)
    )
    scheduler = Scheduler(connection, periodic_tasks(settings))
    log.info(
        "worker starting",
        extra=fields(
            worker=worker.name,
            pid=os.getpid(),
            queues=",".join(QUEUE_NAMES),
            worker_class=settings.worker_class,
            burst=args.burst or None,
        ),
    )
    if not args.burst:
        scheduler.start()
    try:
        worker.work(burst=args.burst, with_scheduler=True, logging_level=rq_level(settings.log_level))
    finally:
        scheduler.stop()
        log.info("worker stopped", extra=fields(worker=worker.name, pid=os.getpid()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
