"""Run vats-bridge on a laptop against the operator sandbox (``make run``).

Starts the sandbox, migrates the SQLite ledger, shows the operator CLI working, then runs the
web app (gunicorn) and the worker, places a demo click-to-call through a signed webhook and
keeps everything running until Ctrl-C. Only Redis must be running (REDIS_URL).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration.secretbox import new_key  # noqa: E402
from integration.signatures import sign_headers  # noqa: E402

SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8090"))
WEB_PORT = int(os.environ.get("PORT", "8000"))
VAR = ROOT / "var"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def remembered(name: str, make) -> str:
    """A demo secret kept in var/ (readable by its owner only) so it stays the same between runs."""
    path = VAR / name
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def wait_for(check, what: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise SystemExit(f"{what} did not come up in {timeout:.0f} s")
        time.sleep(0.2)


def _stop(*_) -> None:
    raise KeyboardInterrupt  # `kill` stops everything as Ctrl-C does


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        print(
            f"Redis is not reachable at {redis_url}. Start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL.",
            file=sys.stderr,
        )
        return 1
    VAR.mkdir(exist_ok=True)
    token_file = VAR / "sandbox-token"
    token_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "integration.sandbox", "--port", str(SANDBOX_PORT), "--token-file", str(token_file)],
            cwd=ROOT,
            env=env,
        )
    ]
    try:
        wait_for(
            lambda: token_file.exists() and token_file.read_text(), "the sandbox (is the port taken? set SANDBOX_PORT)"
        )
        secret = remembered(
            "demo-webhook-secret", lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        )
        api_token = remembered("demo-api-token", lambda: secrets.token_urlsafe(24))
        link_key = remembered("demo-recording-link-key", lambda: secrets.token_hex(32))
        secret_keys = os.environ.get("SECRET_KEYS") or remembered("secret-keys", new_key)
        env |= {
            "OPERATOR_API_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
            "OPERATOR_AUTHORIZATION_TOKEN": token_file.read_text(),
            "OPERATOR_NUMBERS": "4990000000,4950000000,4950000001",
            "REDIS_URL": redis_url,
            "WEBHOOK_SECRET": secret,
            "API_TOKEN": api_token,
            "CORS_ORIGINS": "*",
            "RECORDING_LINK_KEYS": link_key,
            "SECRET_KEYS": secret_keys,
            "RECORDINGS_DIR": str(ROOT / "var" / "recordings"),
            "SYNC_INTERVAL": "5",
            "SYNC_FIRST_WINDOW": str(8 * 86400),
        }
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
        for title, args in [
            ("flask --app wsgi db upgrade: the ledger (SQLite at var/integration.db)", ["db", "upgrade"]),
            ("operator token: a token pair from the sandbox", ["operator", "token"]),
            (f"operator calls --since {since}", ["operator", "calls", "--since", since]),
            (
                "vats show 4990000000: who rings when (edit with vats export / plan / apply)",
                ["vats", "show", "4990000000"],
            ),
        ]:
            say(title)
            subprocess.run(flask + args, cwd=ROOT, env=env, check=False)

        say("flask --app wsgi users create demo@example.com: the console's demo admin")
        console_password = remembered("demo-console-password", lambda: secrets.token_urlsafe(12))
        made = subprocess.run(
            flask + ["users", "create", "demo@example.com", "--role", "admin", "--password-stdin"],
            cwd=ROOT,
            env=env,
            input=console_password + "\n",
            text=True,
            capture_output=True,
            check=False,
        )
        print((made.stdout or made.stderr).strip())  # "exists already" on a second run

        say("flask --app wsgi contacts import var/demo-contacts.csv: a few contacts for the local CRM")
        known = [
            c
            for c in requests.get(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/calls", timeout=5).json()
            if c["ext_e164"]
        ][:5]
        csv_path = VAR / "demo-contacts.csv"
        csv_path.write_text("name,phone\n" + "".join(f"Client {i + 1},{c['ext_num']}\n" for i, c in enumerate(known)))
        subprocess.run(flask + ["contacts", "import", str(csv_path)], cwd=ROOT, env=env, check=False)

        base = f"http://127.0.0.1:{WEB_PORT}"
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{WEB_PORT}", "wsgi:app"],
                cwd=ROOT,
                env=env,
            )
        )
        processes.append(subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env))
        wait_for(lambda: _up(base + "/readyz"), "the web app (is the port taken? set PORT)")

        say("a CRM user clicks +7 916 123-45-67: signed POST /webhooks/click-to-call")
        body = json.dumps({"to": "+7 916 123-45-67", "from": "4990000000", "crm": {"user": "demo"}}).encode()
        headers = sign_headers(secret, f"demo_{secrets.token_hex(4)}", body) | {"Content-Type": "application/json"}
        accepted = requests.post(base + "/webhooks/click-to-call", data=body, headers=headers, timeout=10).json()
        print("202", accepted)
        auth = {"Authorization": f"Bearer {api_token}"}
        wait_for(
            lambda: (
                requests.get(f"{base}/api/callbacks/{accepted['id']}", headers=auth, timeout=5).json()["status"]
                != "queued"
            ),
            "the worker",
        )
        print(
            "GET /api/callbacks/…",
            requests.get(f"{base}/api/callbacks/{accepted['id']}", headers=auth, timeout=5).json(),
        )
        print(
            "the sandbox received:",
            requests.get(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/callbacks", timeout=5).json()[-1],
        )

        say("the call history flows into the local CRM: calls synced, matched to contacts, written as activities")
        total = len(requests.get(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/calls", timeout=5).json())
        wait_for(lambda: _delivered(base, auth) >= min(total, 100), "the call sync", timeout=60)
        print(f"{_delivered(base, auth)} call(s) in the ledger and the local CRM; e.g. GET /api/activities:")
        for item in requests.get(f"{base}/api/activities?limit=3", headers=auth, timeout=5).json()["items"]:
            print("  ", item)
        say("recordings are fetched, stored under var/recordings and linked from the activities")
        wait_for(lambda: _recording_link(base, auth), "a stored recording", timeout=60)
        link = _recording_link(base, auth)
        print(f"e.g. {link}  (try: curl -o call.mp3 '{link}', or a Range request)")

        say(f"running: web {base}, worker, sandbox http://127.0.0.1:{SANDBOX_PORT} — Ctrl-C stops everything")
        print(
            f"""The console: {base}/console/ — sign in as demo@example.com with the password {console_password}
(kept in var/demo-console-password).

Try:
  curl {base}/readyz
  curl {base}/metrics
  curl -X POST {base}/callback-requests -d phone=89161112233 -d name=Anna      # the website form
  .venv/bin/python contrib/send_webhook.py --secret {secret} {base}/webhooks/click-to-call '{{"to": "89161234567", "from": "4950000000"}}'
  curl -H 'Authorization: Bearer {api_token}' {base}/api/callbacks/<id>
  curl -H 'Authorization: Bearer {api_token}' '{base}/api/calls?status=missed'
  curl -H 'Authorization: Bearer {api_token}' {base}/api/contacts
  curl -H 'Authorization: Bearer {api_token}' {base}/api/activities
  curl -H 'Authorization: Bearer {api_token}' {base}/api/vats/4990000000      # the PBX routing settings
  curl -X POST http://127.0.0.1:{SANDBOX_PORT}/_sandbox/calls/generate -H 'Content-Type: application/json' -d '{{"count": 5, "days": 0.01}}'   # new calls: synced within SYNC_INTERVAL
  curl http://127.0.0.1:{SANDBOX_PORT}/_sandbox/callbacks                     # what the "operator" received
The demo secrets are in var/demo-webhook-secret and var/demo-api-token.""",
            flush=True,
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a process stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _recording_link(base: str, auth: dict) -> str | None:
    items = requests.get(f"{base}/api/activities?limit=100", headers=auth, timeout=5).json()["items"]
    return next((item["recording_url"] for item in items if item["recording_url"]), None)


def _delivered(base: str, auth: dict) -> int:
    return len(requests.get(f"{base}/api/activities?limit=500", headers=auth, timeout=5).json()["items"])


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    sys.exit(main())
