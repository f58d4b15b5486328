from __future__ import annotations

import json
import time
import uuid

from integration.signatures import sign_headers
from tests.conftest import SECRET


def signed(
    body: dict | bytes, secret: str = SECRET, msg_id: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = sign_headers(secret, msg_id or f"msg_{uuid.uuid4().hex}", data, timestamp)
    return data, headers | {"Content-Type": "application/json"}


def post_signed(http, path: str, body: dict | bytes, **kw):
    data, headers = signed(body, **kw)
    return http.post(path, data=data, headers=headers)


def queued_jobs(redis_conn) -> int:
    return redis_conn.llen("rq:queue:callbacks")


def now() -> int:
    return int(time.time())
