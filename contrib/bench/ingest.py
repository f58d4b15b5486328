"""Ingest: signed click-to-call webhooks under gunicorn vs a bare Flask endpoint that only
enqueues, with the same gunicorn settings (2 sync workers) and the same load (wrk on loopback).

    python contrib/bench/ingest.py [--seconds 10] [--connections 16]

Every request is distinct (its own webhook-id and destination), so each one is new work: a
signature check, validation, the idempotency claim and the enqueue.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis

from contrib.bench.common import BENCH_SECRET, SandboxProcess, free_port, gunicorn, service_env, wait_http
from integration.signatures import sign_headers

WRK_SCRIPT = """
-- Each wrk thread sends its own share of the pre-signed requests, so no two are alike.
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local requests = {}
local index = 0
init = function(args)
  local n = 0
  for line in io.lines(args[1]) do
    n = n + 1
    if n % tonumber(args[2]) == id then
    local sep = line:find("\\t")
    local headers, body = {}, line:sub(sep + 1)
    for name, value in line:sub(1, sep - 1):gmatch("([^=;]+)=([^;]*)") do headers[name] = value end
    headers["Content-Type"] = "application/json"
    requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
  end
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
"""


def make_requests(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            body = json.dumps({"to": f"+79{i:09d}", "from": "4990000000"}).encode()
            headers = sign_headers(BENCH_SECRET, f"msg_{i}", body)
            out.write(";".join(f"{k}={v}" for k, v in headers.items()) + "\t" + body.decode() + "\n")


def wrk(url: str, seconds: int, connections: int, script: Path, data: Path) -> dict:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url, "--", str(data), "2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", output).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", output).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9, help="paired runs (one per endpoint each)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    connection = redis.Redis.from_url("redis://127.0.0.1:6379/12")
    with tempfile.TemporaryDirectory() as workdir, SandboxProcess() as sandbox:
        work = Path(workdir)
        (work / "post.lua").write_text(WRK_SCRIPT)
        env = service_env(sandbox, workdir)
        jobs = 0
        targets = [
            ("bare enqueue endpoint", "contrib.bench.bare_app:app", "/enqueue"),
            ("signed click-to-call", "wsgi:app", "/webhooks/click-to-call"),
        ]
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in targets}
        ratios = []
        with contextlib.ExitStack() as servers:
            urls = {}
            for name, app, path in targets:  # both servers up for the whole run, warmed up alike
                port = free_port()
                servers.enter_context(gunicorn(app, port, env))
                wait_http(f"http://127.0.0.1:{port}/")
                urls[name] = f"http://127.0.0.1:{port}{path}"
            for name in urls:
                make_requests(work / "requests.txt", 20_000)
                wrk(urls[name], 2, args.connections, work / "post.lua", work / "requests.txt")
            for round_ in range(args.rounds):
                # Paired runs, the order swapped every round: drifts in machine speed hit both alike.
                order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
                for name in order:
                    connection.flushdb()
                    make_requests(work / "requests.txt", 60_000)  # fresh ids and timestamps
                    runs[name].append(
                        wrk(urls[name], args.seconds, args.connections, work / "post.lua", work / "requests.txt")
                    )
                    jobs = connection.llen("rq:queue:callbacks") or jobs
                ratios.append(runs["signed click-to-call"][-1]["rps"] / runs["bare enqueue endpoint"][-1]["rps"])
        results = {name: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for name, r in runs.items()}
    ratio = sorted(ratios)[len(ratios) // 2]
    print(
        f"ingest: gunicorn 2 sync workers, wrk -t2 -c{args.connections} -d{args.seconds}s on loopback, {args.rounds} paired rounds"
    )
    for name, r in runs.items():
        print(f"  {name}: " + ", ".join(f"{x['rps']:.0f}" for x in r) + " req/s")
    print("  ratio per round: " + ", ".join(f"{x:.2f}" for x in ratios))
    print(f"{'endpoint':<24} {'median req/s':>12} {'p50':>9} {'p99':>9} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:<24} {r['rps']:>12.0f} {r['p50']:>9} {r['p99']:>9} {r['errors']:>8}")
    print(f"signed click-to-call vs bare, median of the paired ratios: {ratio:.2f}×")
    print(f"click-to-call jobs enqueued in the measured run: {jobs}")
    print("target: signed click-to-call ≥ 1.0× the bare endpoint's requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
