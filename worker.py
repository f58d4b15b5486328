"""``python worker.py [--burst]``: the RQ worker on the project's queues, with the scheduler."""

from __future__ import annotations

import argparse
import sys

from rq import Worker
from rq.serializers import JSONSerializer

from integration.config import settings_or_exit
from integration.queues import queues
from integration.runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python worker.py", description="vats-bridge background worker")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty (tests, cron)")
    args = parser.parse_args(argv)
    settings = settings_or_exit("vats-bridge worker")
    connection = Runtime(settings).redis
    worker = Worker(queues(connection), connection=connection, serializer=JSONSerializer)
    worker.work(burst=args.burst, with_scheduler=True, logging_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
