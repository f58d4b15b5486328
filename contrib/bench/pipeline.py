"""Call pipeline throughput without CRM I/O: operator JSON → rows (marshmallow) → normalised
calls → ledger insert → match (an in-memory contact index) → activity mapping.

The JSON is decoded and loaded by the operator client's own functions, and the rows go through
``sync.store_calls``, as a sync's do: chunks of 10,000, each written by the ledger's background
writer while the next is normalised.

    python contrib/bench/pipeline.py [--rows 100000] [--rounds 3] [--postgres postgresql://…]

Baseline in the same run: ``json.loads`` plus building the same dicts by hand, once per round
(this machine's speed drifts between minutes: the per-round ratio is the steadier figure). Memory
is reported after each quarter of the rows (it should stay flat: rows are processed in chunks).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from contrib.bench.common import emptied_and_migrated, memory_kib
from integration.delivery import Policies, activity_for, match_call
from integration.ledger.calls import CallLedger
from integration.ledger.db import make_engine
from integration.models import Contact
from integration.operator.client import load_rows, parse_json, rowset_of
from integration.operator.schemas import EnvelopeSchema
from integration.sandbox.state import Sandbox, SandboxConfig
from integration.sync import CHUNK, fewer_young_collections, only, store_calls

TZ = ZoneInfo("Europe/Moscow")
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
    contract = Sandbox(SandboxConfig(numbers=tuple(LINES), timezone=TZ.key)).default
    now = contract.now()
    contract.add_calls(count, now - timedelta(days=25), now, recording_ratio=0.0, seed=1)
    period = {"periodStart": contract.local(now - timedelta(days=26)), "periodEnd": contract.local(now)}
    return json.dumps(contract.call_list({"nums": LINES, **period})).encode()


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
    engine = make_engine(emptied_and_migrated(url))
    ledger = CallLedger(engine)
    crm = MemoryCrm([f"+79{i:09d}" for i in range(0, 10**9, 10**9 // 5000)])
    policies, users_by_line = Policies(), {}  # a worker's settings, read once
    now = datetime.now(UTC)
    memory, stored = [], 0
    started = time.perf_counter()
    with fewer_young_collections():  # as sync_calls does for each slice
        rowset = rowset_of(EnvelopeSchema().load(parse_json(raw))["result"])  # as the operator client does
        quarter = max(1, len(rowset) // 4)
        rows = load_rows(rowset, TZ)
        for calls, new_ids in store_calls(rows, ledger, "RU", now):
            for call in only(calls, new_ids):
                activity_for(call, match_call(call, crm, policies, LINES, "RU"), users_by_line)
            if stored // quarter != (stored + len(calls)) // quarter or not stored:
                memory.append(memory_kib("VmRSS") // 1024)
            stored += len(calls)
    if engine.dialect.name == "sqlite":  # what the WAL still holds goes to the database, inside the timing
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - started
    assert ledger.count() == len(rowset)
    engine.dispose()
    return elapsed, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="baseline, SQLite, PostgreSQL once per round")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    raw = operator_json(args.rows)
    databases = {"SQLite": None, "PostgreSQL": args.postgres}
    rates: dict[str, list[float]] = {"baseline": [], **{name: [] for name in databases}}
    ratios: dict[str, list[float]] = {name: [] for name in databases}
    memory: dict[str, list[int]] = {}
    for _ in range(args.rounds):
        base = baseline(raw)
        rates["baseline"].append(args.rows / base)
        for name, url in databases.items():
            with tempfile.TemporaryDirectory() as workdir:
                try:
                    elapsed, used = pipeline(raw, url or f"sqlite:///{workdir}/bench.db")
                except Exception as exc:  # PostgreSQL may be absent on a laptop
                    print(f"{name}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
                    databases = {n: u for n, u in databases.items() if n != name}
                    continue
            rates[name].append(args.rows / elapsed)
            memory.setdefault(name, used)  # the first round's: SQLite's page cache fills in it
            ratios[name].append(base / elapsed)
    print(f"pipeline: {args.rows} operator rows, chunks of {CHUNK:,}, matching against 5,000 contacts in memory")
    print(f"{args.rounds} rounds; median (and range) of rows/s, median of the per-round ratios to the baseline")
    print(f"{'path':<30} {'rows/s':>9}  {'range':<17} {'vs baseline':>11}  RSS MiB by quarter (round 1)")
    for name, found in rates.items():
        if not found:
            continue
        label = "baseline: json.loads + dicts" if name == "baseline" else f"pipeline on {name}"
        spread = f"{min(found):,.0f} – {max(found):,.0f}"
        ratio = median(ratios[name]) if name in ratios else 1.0
        print(f"{label:<30} {median(found):>9,.0f}  {spread:<17} {ratio:>10.3f}×  {memory.get(name, '')}")
    print("target: ≥ 20,000 rows/s on SQLite and on PostgreSQL, memory flat as rows grow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
