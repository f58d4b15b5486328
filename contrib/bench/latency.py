"""Latency: a signed click-to-call webhook received → the sandbox receives ``callback/create``.

Webhooks are sent at a steady rate (default 20/s) to the app under gunicorn; a ``worker.py``
process places them against the sandbox. The baseline, measured in the same run with the same
worker class, is RQ's own enqueue → start of a no-op job. Both worker classes are measured.

    python contrib/bench/latency.py [--rate 20] [--count 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis
import requests
from rq import Queue
from rq.serializers import JSONSerializer

from contrib.bench.common import (
    BENCH_SECRET,
    Process,
    SandboxProcess,
    free_port,
    gunicorn,
    service_env,
    wait_http,
)
from integration.ledger.db import make_engine, upgrade
from integration.signatures import sign_headers


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": ordered[-1] * 1000,
        "mean": statistics.mean(ordered) * 1000,
    }


def paced(count: int, rate: float):
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i


def webhook_latency(
    url: str, sandbox: SandboxProcess, count: int, rate: float, offset: int, api: str
) -> tuple[list[float], list[float]]:
    """(from the client's send, from the app's acceptance: the request's created_at) → sandbox."""
    session = requests.Session()
    sent: dict[str, float] = {}
    ids: dict[str, str] = {}
    for i in paced(count, rate):
        number = f"89{offset + i:09d}"
        body = json.dumps({"to": number, "from": "4990000000"}).encode()
        headers = sign_headers(BENCH_SECRET, f"lat_{offset + i}", body) | {"Content-Type": "application/json"}
        sent[number] = time.time()
        response = session.post(url, data=body, headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        ids[number] = response.json()["id"]
    deadline = time.time() + 30
    while True:
        calls = requests.get(sandbox.url + "/_sandbox/callbacks", timeout=10).json()
        seen = {
            c["PhoneTo"]: datetime.fromisoformat(c["received_at"]).timestamp() for c in calls if c["PhoneTo"] in sent
        }
        if len(seen) == count or time.time() > deadline:
            break
        time.sleep(0.2)
    assert len(seen) == count, f"only {len(seen)} of {count} callbacks arrived"
    accepted = {
        number: datetime.fromisoformat(
            session.get(f"{api}/{ids[number]}", headers={"Authorization": "Bearer bench"}).json()["created_at"]
        ).timestamp()
        for number in sent
    }
    return [seen[n] - sent[n] for n in sent], [seen[n] - accepted[n] for n in sent]


def enqueue_latency(connection: redis.Redis, count: int, rate: float) -> list[float]:
    queue = Queue("bench", connection=connection, serializer=JSONSerializer)
    key = "bench:latency"
    connection.delete(key)
    for _ in paced(count, rate):
        queue.enqueue("contrib.bench.bare_app.stamp", key, time.time())
    deadline = time.time() + 30
    while connection.llen(key) < count and time.time() < deadline:
        time.sleep(0.1)
    return [float(v) for v in connection.lrange(key, 0, -1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    connection = redis.Redis.from_url("redis://127.0.0.1:6379/12")
    rows = []
    with tempfile.TemporaryDirectory() as workdir, SandboxProcess() as sandbox:
        for index, worker_class in enumerate(("simple", "fork")):
            connection.flushdb()
            env = service_env(sandbox, workdir, WORKER_CLASS=worker_class, API_TOKEN="bench")
            engine = make_engine(env["DATABASE_URL"])
            upgrade(engine)
            engine.dispose()
            with Process([sys.executable, "contrib/bench/bare_worker.py", worker_class], env):
                time.sleep(2)
                rows.append(
                    (
                        f"baseline: RQ enqueue → no-op job starts ({worker_class})",
                        percentiles(enqueue_latency(connection, args.count, args.rate)),
                    )
                )
            port = free_port()
            with gunicorn("wsgi:app", port, env), Process([sys.executable, "worker.py"], env):
                wait_http(f"http://127.0.0.1:{port}/healthz")
                time.sleep(2)
                url = f"http://127.0.0.1:{port}/webhooks/click-to-call"
                api = f"http://127.0.0.1:{port}/api/callbacks"
                webhook_latency(url, sandbox, 20, args.rate, index * 1_000_000 + 900_000, api)  # warm-up
                from_send, from_accept = webhook_latency(url, sandbox, args.count, args.rate, index * 1_000_000, api)
                rows.append((f"client sends webhook → callback/create ({worker_class})", percentiles(from_send)))
                rows.append((f"app accepts webhook → callback/create ({worker_class})", percentiles(from_accept)))
    print(
        f"latency: {args.count} requests at {args.rate:g}/s; gunicorn 2 sync workers, one worker.py, sandbox on loopback (ms)"
    )
    print(f"{'path':<58} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for name, p in rows:
        print(f"{name:<58} {p['p50']:>7.1f} {p['p90']:>7.1f} {p['p99']:>7.1f} {p['max']:>7.1f}")
    print("target: webhook → callback/create p50 ≤ 10 ms, p99 ≤ 30 ms")
    print("'app accepts' starts at the request's created_at, stamped by the app once the webhook is verified and valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
