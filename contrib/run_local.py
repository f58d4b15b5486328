"""Run vats-bridge on a laptop against the operator sandbox (``make run``).

Starts the sandbox, shows the operator client working against it, then runs the web app and
the worker until Ctrl-C. Only Redis must be running (REDIS_URL, default localhost:6379).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8090"))
WEB_PORT = int(os.environ.get("PORT", "8000"))


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def start(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, **kw)


def main() -> int:
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        print(
            f"Redis is not reachable at {redis_url}. Start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL.",
            file=sys.stderr,
        )
        return 1
    (ROOT / "var").mkdir(exist_ok=True)
    token_file = ROOT / "var" / "sandbox-token"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    processes = [
        start(
            [sys.executable, "-m", "integration.sandbox", "--port", str(SANDBOX_PORT), "--token-file", str(token_file)],
            env,
        )
    ]
    try:
        deadline = time.time() + 15
        while not (token_file.exists() and token_file.read_text()):
            if processes[0].poll() is not None or time.time() > deadline:
                print("the sandbox did not start (is the port taken? set SANDBOX_PORT)", file=sys.stderr)
                return 1
            time.sleep(0.1)
        time.sleep(0.5)
        env |= {
            "OPERATOR_API_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
            "OPERATOR_AUTHORIZATION_TOKEN": token_file.read_text(),
            "OPERATOR_NUMBERS": "4990000000,4950000000,4950000001",
            "REDIS_URL": redis_url,
        }
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
        for title, args in [
            ("operator token: a token pair from the sandbox", ["operator", "token"]),
            (f"operator calls --since {since}", ["operator", "calls", "--since", since]),
            (
                "operator callback: ring 4990000000, then connect +7 916 123-45-67",
                ["operator", "callback", "--from", "4990000000", "--to", "+7 916 123-45-67"],
            ),
            ("operator settings get 4990000000", ["operator", "settings", "get", "4990000000"]),
        ]:
            say(title)
            subprocess.run(flask + args, cwd=ROOT, env=env, check=False)
        say(f"web app on http://127.0.0.1:{WEB_PORT} (try /healthz), worker running; Ctrl-C stops everything")
        print(f"sandbox control API: http://127.0.0.1:{SANDBOX_PORT}/_sandbox/state", flush=True)
        processes.append(start(flask + ["run", "--port", str(WEB_PORT)], env))
        processes.append(start([sys.executable, "worker.py"], env))
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a process stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
