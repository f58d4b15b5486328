"""A local stand-in for a Bitrix24 portal's telephony REST, with the documented behaviour that
matters for exactly-once delivery, and injectable faults.

- ``register`` with the same EXTERNAL_CALL_ID, number, type and user returns the open call's
  CALL_ID (Bitrix24 does so for 30 minutes);
- ``finish`` closes an open call; a call that is not open answers ERROR_CORE "Call is not found";
- ``attachRecord`` needs a finished call and replaces an earlier record.
Faults: ``limit_rate`` answers 503 QUERY_LIMIT_EXCEEDED and ``fail_rate`` 500, both without
doing anything; ``fail_after_rate`` does the work and then answers 500 (the answer is lost).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections import Counter
from pathlib import Path

from flask import Flask, request

FIXTURES = Path(__file__).parent / "fixtures" / "bitrix24"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class BitrixStandIn:
    def __init__(self, *, limit_rate: float = 0.0, fail_rate: float = 0.0, fail_after_rate: float = 0.0, seed: int = 1):
        self.limit_rate, self.fail_rate, self.fail_after_rate = limit_rate, fail_rate, fail_after_rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict]] = []  # every request, faults included
        self.open: dict[tuple, str] = {}  # registration key → CALL_ID
        self.open_ids: set[str] = set()
        self.registered: dict[str, dict] = {}  # CALL_ID → register params
        self.finished: Counter = Counter()  # CALL_ID → successful finishes
        self.records: dict[str, str] = {}  # CALL_ID → RECORD_URL
        self._ids = itertools.count(1)
        self.app = Flask("bitrix24")
        self.app.add_url_rule("/rest/1/hook/<method>", view_func=self.handle, methods=["POST"])

    def open_click(self, call_id: str) -> None:
        """A call Bitrix24 registered itself when a user clicked a number (ONEXTERNALCALLSTART)."""
        with self.lock:
            self.open_ids.add(call_id)

    def stop_failing(self) -> None:
        with self.lock:
            self.limit_rate = self.fail_rate = self.fail_after_rate = 0.0

    def handle(self, method: str):
        params = request.get_json()
        with self.lock:
            self.calls.append((method, params))
            roll = self.rng.random()
            if roll < self.limit_rate:
                return fixture("query_limit_exceeded.json"), 503
            if roll < self.limit_rate + self.fail_rate:
                return {"error": "INTERNAL_SERVER_ERROR", "error_description": "try again"}, 500
            answer = self._apply(method, params)
            if roll < self.limit_rate + self.fail_rate + self.fail_after_rate:
                return {"error": "INTERNAL_SERVER_ERROR", "error_description": "the answer was lost"}, 500
            return answer

    def _apply(self, method: str, params: dict):
        if method == "telephony.externalCall.register":
            key = (params.get("EXTERNAL_CALL_ID"), params["PHONE_NUMBER"], params["TYPE"], params["USER_ID"])
            call_id = self.open.get(key) or f"externalCall.{next(self._ids):032x}.1773130779"
            self.open[key] = call_id
            self.open_ids.add(call_id)
            self.registered.setdefault(call_id, params)
            return fixture("register.json") | {"result": fixture("register.json")["result"] | {"CALL_ID": call_id}}
        if method == "telephony.externalCall.finish":
            if params["CALL_ID"] not in self.open_ids:
                not_found = "Call is not found (call should be registered prior to finishing)"
                return {"error": "ERROR_CORE", "error_description": not_found}, 400
            self.open_ids.discard(params["CALL_ID"])
            self.open = {k: v for k, v in self.open.items() if v != params["CALL_ID"]}
            self.finished[params["CALL_ID"]] += 1
            return fixture("finish.json")
        if method == "telephony.externalCall.attachRecord":
            if not self.finished[params["CALL_ID"]]:
                return {"error": "", "error_description": "Call is not found in the statistic table."}, 400
            self.records[params["CALL_ID"]] = params["RECORD_URL"]
            return fixture("attach_record.json")
        if method == "telephony.externalCall.searchCrmEntities":
            return {"result": []}
        return {"error": "ERROR_METHOD_NOT_FOUND", "error_description": method}, 404
