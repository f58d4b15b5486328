"""Call pipeline throughput without CRM I/O: operator JSON → rows (marshmallow) → normalised
calls → ledger insert → match (an in-memory contact index) → activity mapping.

    python contrib/bench/pipeline.py [--rows 100000] [--postgres postgresql://postgres@127.0.0.1/test]

Baseline in the same run: ``json.loads`` plus building the same dicts by hand. Memory is
reported after each quarter of the rows (it should stay flat: rows are processed in batches).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text

from contrib.bench.common import memory_kib
from integration.delivery import Policies, activity_for, match_call
from integration.ledger.calls import CallLedger
from integration.ledger.db import make_engine, upgrade
from integration.models import Contact
from integration.operator.schemas import CallRowSchema
from integration.sandbox.state import Sandbox, SandboxConfig
from integration.sync import call_from_row

TZ = ZoneInfo("Europe/Moscow")
BATCH = 2000
LINES = ["4990000000", "4950000000", "4950000001"]


class MemoryCrm:
    """Contacts in a dict by the last 10 digits: matching without CRM I/O."""

    name = "memory"

    def __init__(self, numbers: list[str]):
        self.by_key = {n[-10:]: [Contact(id=str(i), name="", phones=(n,))] for i, n in enumerate(numbers)}

    def find_contacts(self, phone):
        return self.by_key.get(phone.match_key, [])


def operator_json(count: int) -> bytes:
    """A ``getcalllist`` answer as the sandbox serves it (rows by time); no recordings, so every
    call's key is the hash of its row, the costlier kind."""
    sandbox = Sandbox(SandboxConfig(numbers=tuple(LINES), timezone=TZ.key))
    now = sandbox.now()
    sandbox.add_calls(count, now - timedelta(days=25), now, recording_ratio=0.0, seed=1)
    period = {"periodStart": sandbox.local(now - timedelta(days=26)), "periodEnd": sandbox.local(now)}
    return json.dumps(sandbox.call_list({"nums": LINES, **period})).encode()


def baseline(raw: bytes) -> float:
    started = time.perf_counter()
    rows = json.loads(raw)["result"]["rowset"]
    built = [
        {
            "started_at": r["callDate"],
            "line": r["num"],
            "direction": r["direction"],
            "ext": r["extNum"],
            "duration": r["duration"],
        }
        for r in rows
    ]
    assert len(built) == len(rows)
    return time.perf_counter() - started


def pipeline(raw: bytes, url: str) -> tuple[float, list[int]]:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    ledger = CallLedger(engine)
    crm = MemoryCrm([f"+79{i:09d}" for i in range(0, 10**9, 10**9 // 5000)])
    schema = CallRowSchema(tz=TZ)
    now = datetime.now(UTC)
    memory = []
    started = time.perf_counter()
    rows = json.loads(raw)["result"]["rowset"]
    for offset in range(0, len(rows), BATCH):
        calls = [call_from_row(schema.load_row(row), "RU") for row in rows[offset : offset + BATCH]]
        new_ids = set(ledger.insert_new(calls, now))
        for call in calls:
            if call.id in new_ids:
                activity_for(call, match_call(call, crm, Policies(), LINES, "RU"), {})
        if (offset // BATCH) % max(1, len(rows) // BATCH // 4) == 0:
            memory.append(memory_kib("VmRSS") // 1024)
    if engine.dialect.name == "sqlite":  # what the WAL still holds goes to the database, inside the timing
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - started
    assert ledger.count() == len(rows)
    engine.dispose()
    return elapsed, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    raw = operator_json(args.rows)
    base = baseline(raw)
    print(f"pipeline: {args.rows} operator rows, batches of {BATCH}, matching against 5,000 contacts in memory")
    print(f"{'path':<40} {'rows/s':>9} {'vs baseline':>12}  RSS MiB by quarter")
    print(f"{'baseline: json.loads + dicts':<40} {args.rows / base:>9.0f} {1:>11.2f}×")
    with tempfile.TemporaryDirectory() as workdir:
        for name, url in (("SQLite", f"sqlite:///{workdir}/bench.db"), ("PostgreSQL", args.postgres)):
            try:
                elapsed, memory = pipeline(raw, url)
            except Exception as exc:  # PostgreSQL may be absent on a laptop
                print(f"{name}: skipped ({type(exc).__name__})")
                continue
            print(f"{'pipeline on ' + name:<40} {args.rows / elapsed:>9.0f} {base / elapsed:>11.3f}×  {memory}")
    print("target: ≥ 20,000 rows/s on SQLite and on PostgreSQL, memory flat as rows grow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
