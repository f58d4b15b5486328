"""One of many processes sharing a Redis token store: waits for "go", then calls the operator
until the deadline and prints how many calls succeeded. Used by test_tokens_sandbox."""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

import redis

from integration.errors import OperatorError
from integration.operator.factory import build_operator_client
from integration.settings import load_settings


def main() -> int:
    env = json.loads(sys.argv[1])
    conn = redis.Redis.from_url(env["REDIS_URL"])
    client = build_operator_client(load_settings(env, dotenv="/nonexistent/.env"), conn)
    client.tokens.renew_margin = timedelta(seconds=float(env["TEST_RENEW_MARGIN"]))
    conn.incr("test:ready")
    while not conn.get("test:go"):
        time.sleep(0.01)
    deadline = float(conn.get("test:go"))
    ok, failed = 0, []
    while time.time() < deadline:
        try:
            client.get_pbx_settings([env["OPERATOR_NUMBERS"].split(",")[0]])
            ok += 1
        except OperatorError as exc:
            failed.append(type(exc).__name__)
        time.sleep(0.05)
    print(json.dumps({"ok": ok, "failed": failed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
