"""The console's pages with 1,000,000 calls in the ledger (issue #17, "Speed").

For each database (SQLite in a temporary folder, PostgreSQL ``bench_console``), the account
``default`` gets ``--calls`` calls over the last 30 days on three lines (a few thousand distinct
numbers, 1 in 5 missed), each with its delivery (98.5 % delivered, 1 % pending, 0.5 % failed);
the account ``empty`` has none and is the baseline. A signed-in deployment admin then requests
each page ``--rounds`` times through the app (Flask's test client: the server's time, no
network): the overview, the calls page, and the calls page filtered by a number written another
way, by a line and a week, and by delivery state. Printed: p50/p95 per page and database, × the
empty account's, the target (p95 ≤ 150 ms), and the query plan of every statement the pages ran.

    python contrib/bench/console.py [--calls 1000000] [--rounds 30] [--database sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from contrib.bench.common import emptied_and_migrated
from integration import create_app
from integration.ledger.db import make_engine
from integration.ledger.tables import calls, deliveries, work_items
from integration.settings import load_settings
from integration.timeutil import utc_now

LINES = ("4990000000", "4950000000", "4950000001")
EMPTY_LINE = "4990000009"  # the baseline account's
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench_console")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PASSWORD = "bench console password"
TARGET_MS = 150.0


def fill(url: str, count: int, seed: int = 17) -> str:
    """``count`` calls with their deliveries for ``default``; returns one number they have."""
    rng = random.Random(seed)
    engine = make_engine(url)
    now = utc_now()
    numbers = [f"+7916{rng.randrange(10**7):07d}" for _ in range(5000)]
    batch = 20_000
    started = time.perf_counter()
    for first in range(0, count, batch):
        call_rows, delivery_rows, item_rows = [], [], []
        for i in range(first, min(first + batch, count)):
            at = now - timedelta(seconds=rng.randrange(30 * 86400))
            number = numbers[rng.randrange(len(numbers))]
            call_id = f"c{i:08d}"
            status = "missed" if rng.random() < 0.2 else "answered"
            call_rows.append(
                {
                    "account": "default",
                    "id": call_id,
                    "line": LINES[i % 3],
                    "direction": "inbound" if rng.random() < 0.6 else "outbound",
                    "status": status,
                    "started_at": at,
                    "duration": 0 if status == "missed" else rng.randrange(10, 600),
                    "ext_raw": "8" + number[2:],
                    "ext_e164": number,
                    "ext_key": number[2:],
                    "ext_internal": False,
                    "first_seen_at": at,
                }
            )
            delivery_rows.append({"account": "default", "call_id": call_id, "crm": "local", "created_at": at})
            roll = rng.random()
            state = "pending" if roll < 0.01 else "failed" if roll < 0.015 else "done"
            item_rows.append(
                {
                    "account": "default",
                    "kind": "deliver_call",
                    "subject": call_id,
                    "target": "local",
                    "status": state,
                    "attempts": 0 if state == "done" else 3,
                    "next_attempt_at": at if state == "pending" else None,
                    "last_error": "the CRM answered 500" if state != "done" else None,
                    "created_at": at,
                    "finished_at": at if state != "pending" else None,
                }
            )
        with engine.begin() as connection:
            connection.execute(calls.insert(), call_rows)
            connection.execute(deliveries.insert(), delivery_rows)
            connection.execute(work_items.insert(), item_rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    print(f"  {count:,} calls and deliveries stored in {time.perf_counter() - started:.0f} s", flush=True)
    return numbers[0]


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def measure(url: str, rounds: int, number: str) -> tuple[dict[str, tuple[float, float]], list[tuple[str, str]]]:
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "SECRET_KEYS": os.environ.get("SECRET_KEYS", "YmVuY2gtY29uc29sZS1zZWNyZXQta2V5LTAxMjM0NTY="),
        "OPERATOR_AUTHORIZATION_TOKEN": "bench",
        "OPERATOR_NUMBERS": ",".join(LINES),
        "OPERATOR_API_URL": "http://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(load_settings(env, dotenv="/nonexistent/.env"))
    runtime = app.extensions["vats"]
    runtime.redis.flushdb()
    runtime.accounts.create(
        "empty",
        {
            "OPERATOR_AUTHORIZATION_TOKEN": "bench-empty",
            "OPERATOR_NUMBERS": "4990000009",
            "OPERATOR_API_URL": "http://127.0.0.1:9",
        },
        "bench",
    )
    runtime.users.create("bench@example.com", "admin", None, PASSWORD, "bench")
    http = app.test_client()
    page = http.get("/console/sign-in").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    http.post("/console/sign-in", data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token})
    week = (datetime.now(UTC) - timedelta(days=10)).date()
    written = f"8 ({number[2:5]}) {number[5:8]}-{number[8:10]}-{number[10:]}"
    pages = {
        "overview": "/console/",
        "calls": "/console/calls",
        "calls by number": f"/console/calls?number={written}",
        "calls of a line and week": f"/console/calls?line={{line}}&since={week}&until={week + timedelta(days=6)}",
        "calls failed to deliver": "/console/calls?delivery=failed",
    }
    statements: list[tuple[str, object]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    figures = {}
    for name, path in pages.items():
        for prefix, account, line in (("", "default", LINES[1]), ("/a/empty", "empty", EMPTY_LINE)):
            times = []
            for round_ in range(rounds + 2):
                if round_ == rounds + 1 and account == "default":
                    event.listen(runtime.engine, "before_cursor_execute", remember)
                started = time.perf_counter()
                answer = http.get(prefix + path.format(line=line))
                elapsed = time.perf_counter() - started
                if round_ == rounds + 1 and account == "default":
                    event.remove(runtime.engine, "before_cursor_execute", remember)
                assert answer.status_code == 200, (path, answer.status_code)
                if round_ > 0 and round_ <= rounds:  # the first warms the caches
                    times.append(elapsed * 1000)
            figures[(name, account)] = percentiles(times)
    plans = explain(runtime.engine, statements)
    runtime.engine.dispose()
    return figures, plans


def explain(engine, statements: list[tuple[str, object]]) -> list[tuple[str, str]]:
    seen, plans = set(), []
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        for statement, parameters in statements:
            key = " ".join(statement.split())
            if key in seen or "console_users" in key or "accounts" in key.split(" FROM ")[-1][:40]:
                continue
            seen.add(key)
            cursor = driver.cursor()
            prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
            cursor.execute(prefix + statement, parameters)
            rows = cursor.fetchall()
            plan = "\n".join(" ".join(str(part) for part in row[-1:]) for row in rows)
            plans.append((key[:160], plan))
    return plans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--plans", action="store_true", help="print every statement's query plan")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
        for kind in kinds:
            url = f"sqlite:///{folder}/console.db" if kind == "sqlite" else POSTGRES
            print(f"{kind}: filling", flush=True)
            number = fill(emptied_and_migrated(url), args.calls)
            results[kind] = measure(url, args.rounds, number)
    print()
    print(f"console pages, {args.calls:,} calls in the ledger, {args.rounds} requests each (server time, ms)")
    print(f"{'page':<28} {'database':<11} {'p50':>7} {'p95':>7} {'empty p95':>10} {'×':>6}")
    for kind, (figures, _) in results.items():
        for name in dict.fromkeys(n for n, _ in figures):
            p50, p95 = figures[(name, "default")]
            _, empty = figures[(name, "empty")]
            mark = "" if p95 <= TARGET_MS else "  (over target)"
            print(f"{name:<28} {kind:<11} {p50:>7.1f} {p95:>7.1f} {empty:>10.1f} {p95 / empty:>5.1f}×{mark}")
    print(f"target: p95 ≤ {TARGET_MS:.0f} ms")
    if args.plans:
        for kind, (_, plans) in results.items():
            print(f"\nquery plans, {kind}:")
            for statement, plan in plans:
                print(f"- {statement}\n    " + plan.replace("\n", "\n    "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
