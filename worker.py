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
from integration.queues import CALLBACKS, QUEUE_NAMES, queues
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.scheduler import Scheduler, StoredAccountTasks, periodic_tasks
from integration.settings import settings_or_exit

log = logging.getLogger("worker")


def queue_names(text: str) -> tuple[str, ...]:
    """``--queues``: known queue names, comma-separated."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in QUEUE_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"must name queues among {', '.join(QUEUE_NAMES)}; got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python worker.py", description="vats-bridge background worker")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty (tests, cron)")
    parser.add_argument(
        "--queues",
        type=queue_names,
        default=QUEUE_NAMES,
        metavar="NAMES",
        help=f"comma-separated queues to serve, in that order [default: {','.join(QUEUE_NAMES)}]; "
        "`--queues callbacks` makes a worker for click-to-calls only, which slow CRM work never delays",
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit("vats-bridge worker")
    setup_logging(settings)
    runtime = Runtime(settings)
    runtimes = AccountRuntimes(runtime)
    connection = runtime.redis
    worker_class = SimpleWorker if settings.worker_class == "simple" else Worker
    worker = worker_class(
        queues(connection, args.queues),
        connection=connection,
        serializer=JSONSerializer,
        job_class=RuntimeJob.bound_to(runtimes),
    )
    scheduler = Scheduler(connection, periodic_tasks(settings), more=StoredAccountTasks(runtimes))
    log.info(
        "worker starting",
        extra=fields(
            worker=worker.name,
            pid=os.getpid(),
            queues=",".join(args.queues),
            worker_class=settings.worker_class,
            burst=args.burst or None,
        ),
    )
    if not args.burst and args.queues != (CALLBACKS,):  # click-to-call workers do nothing else
        scheduler.start()
    try:
        worker.work(burst=args.burst, with_scheduler=True, logging_level=rq_level(settings.log_level))
    finally:
        scheduler.stop()
        log.info("worker stopped", extra=fields(worker=worker.name, pid=os.getpid()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
