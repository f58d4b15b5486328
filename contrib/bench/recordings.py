"""Recordings: fetch → decode → store of a large mp3 through the job's own code, and serving a
stored recording through its signed link compared with a plain static file.

    python contrib/bench/recordings.py [--size-mb 50] [--serve-mb 1] [--seconds 5] [--rounds 3]

Fetching runs in a fresh process and reports throughput and peak RSS growth (VmHWM at the end
minus VmRSS before the download) relative to the mp3 size. Serving runs gunicorn (2 sync
workers) and wrk on loopback: the signed ``/recordings/<id>.mp3`` endpoint against a bare Flask
endpoint that only does ``send_file`` of the same file, alternating, median of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from contrib.bench.common import ROOT, SandboxProcess, free_port, gunicorn, memory_kib, service_env, wait_http

LINK_KEY = "benchmark-recording-link-key-0123456789"


def runtime(env: dict[str, str]):
    from integration.ledger.db import make_engine, upgrade
    from integration.runtime import Runtime
    from integration.settings import load_settings

    upgrade(make_engine(env["DATABASE_URL"]))
    return Runtime(load_settings(env, dotenv="/nonexistent"))


def add_call(rt, record_file_id: str) -> str:
    from integration.ledger.tables import calls

    now, call_id = datetime.now(UTC), f"rec:{record_file_id}"
    with rt.engine.begin() as connection:
        connection.execute(
            calls.insert().values(
                id=call_id, line="4990000000", direction="inbound", status="answered", started_at=now,
                duration=60, ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False,
                record_file_id=record_file_id, first_seen_at=now,
            )
        )  # fmt: skip
    rt.recording_ledger.ensure([(call_id, record_file_id)], now)
    return call_id


def fetch(env: dict[str, str], record_file_id: str) -> dict:
    """Runs inside the child process: the job's fetch path, start to finish."""
    from integration.services.recordings import fetch_recording as fetch_recording_now

    rt = runtime(env)
    call_id = add_call(rt, record_file_id)
    rt.recording_ledger.get(call_id)  # warm up the database path before measuring
    before = memory_kib("VmRSS")
    started = time.perf_counter()
    status = fetch_recording_now(rt, call_id)
    elapsed = time.perf_counter() - started
    recording = rt.recording_ledger.get(call_id)
    return {"status": status, "seconds": elapsed, "growth_kib": memory_kib("VmHWM") - before,
            "sha256": recording.sha256, "size": recording.size}  # fmt: skip


def wrk(url: str, seconds: int) -> float:
    output = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"errors while serving {url}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--serve-mb", type=float, default=1.0)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fetch(json.loads(args.child[0]), args.child[1])))
        return 0

    size = int(args.size_mb * 2**20)
    with tempfile.TemporaryDirectory() as workdir, SandboxProcess() as sandbox:
        env = service_env(sandbox, workdir, RECORDINGS_DIR=f"{workdir}/recordings", RECORDING_LINK_KEYS=LINK_KEY)
        made = sandbox.control("recordings", {"size": size, "seed": 50})
        output = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(env), made["id"]],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        got = json.loads(output.splitlines()[-1])
        assert got["status"] == "stored" and got["sha256"] == made["sha256"], "wrong bytes stored"
        mib = size / 2**20
        print(f"recordings: fetch → decode → store of a {mib:.0f} MiB mp3 ({mib * 4 / 3:.0f} MiB of base64 in JSON)")
        growth = got["growth_kib"] / 1024
        print(f"  {mib / got['seconds']:.1f} MiB/s, peak RSS growth {growth:.1f} MiB = {growth / mib:.2f}× the mp3")
        print("  target: peak growth ≤ 1.5× the mp3 size")
        if not shutil.which("wrk"):
            print("serving: skipped (wrk is not installed: apt-get install wrk)")
            return 0

        rt = runtime(env)
        small = sandbox.control("recordings", {"size": int(args.serve_mb * 2**20), "seed": 51})
        call_id = add_call(rt, small["id"])
        from integration.services.recordings import fetch_recording as fetch_recording_now

        assert fetch_recording_now(rt, call_id) == "stored"
        signed = rt.recording_url(call_id)
        path = rt.recording_store.local_path(rt.recording_ledger.get(call_id).storage_key)
        targets = [
            ("static file (send_file)", "contrib.bench.bare_app:app", "/static.mp3"),
            ("signed recording link", "wsgi:app", signed[signed.index("/recordings/") :]),
        ]
        runs: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, app, url_path in targets:
                port = free_port()
                with gunicorn(app, port, env | {"BENCH_STATIC_FILE": str(path)}):
                    wait_http(f"http://127.0.0.1:{port}/")
                    runs.setdefault(name, []).append(wrk(f"http://127.0.0.1:{port}{url_path}", args.seconds))
                time.sleep(0.5)
        rt.engine.dispose()
    serve_mib = small["size"] / 2**20
    median = {name: sorted(r)[len(r) // 2] for name, r in runs.items()}
    base = median["static file (send_file)"]
    print(
        f"serving a {serve_mib:.0f} MiB recording: gunicorn 2 sync workers, wrk -t2 -c8 -d{args.seconds}s, median of {args.rounds}"
    )
    print(f"{'endpoint':<26} {'req/s':>8} {'MiB/s':>8} {'vs static':>10}   runs")
    for name, rps in median.items():
        rounds = ", ".join(f"{r:.0f}" for r in runs[name])
        print(f"{name:<26} {rps:>8.0f} {rps * serve_mib:>8.0f} {rps / base:>9.2f}×   {rounds}")
    print("target: the signed link ≥ 0.8× the static file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
