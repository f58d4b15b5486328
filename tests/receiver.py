"""A local stand-in for a CRM's webhook endpoint: verifies signatures, stores events, fails on request."""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict

from flask import Flask, request

from integration.signatures import InvalidSignature, SignatureVerifier


class Receiver:
    def __init__(self, secret: str, *, fail_rate: float = 0.0, fail_after_store_rate: float = 0.0, seed: int = 1):
        self.verifier = SignatureVerifier([secret])
        self.fail_rate = fail_rate
        self.fail_after_store_rate = fail_after_store_rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.events: dict[str, dict] = {}  # webhook-id → the event (first copy)
        self.attempts: dict[str, int] = defaultdict(int)
        self.ids_by_subject: dict[str, set[str]] = defaultdict(set)
        self.app = Flask("receiver")
        self.app.add_url_rule("/hook", view_func=self.hook, methods=["POST"])

    def hook(self):
        body = request.get_data()
        try:
            msg_id = self.verifier.verify(body, request.headers)
        except InvalidSignature:
            return {"error": "bad signature"}, 401
        with self.lock:
            self.attempts[msg_id] += 1
            roll = self.rng.random()
            if roll < self.fail_rate:
                return {"error": "temporarily unavailable"}, 503
            event = json.loads(body)
            self.events.setdefault(msg_id, event)
            subject = event["data"].get("call_id") or event["data"].get("id")
            self.ids_by_subject[(event["type"], subject)].add(msg_id)
            if roll < self.fail_rate + self.fail_after_store_rate:
                return {"error": "stored, but answered badly"}, 500
        return {"id": msg_id}, 200

    def of_type(self, event_type: str) -> dict[str, dict]:
        """webhook-id → event, for the events of one type."""
        return {msg_id: event for msg_id, event in self.events.items() if event["type"] == event_type}

    def ids_of(self, event_type: str) -> dict[str, set[str]]:
        """subject (call or request id) → the webhook-ids it was sent with, for one event type."""
        return {subject: ids for (kind, subject), ids in self.ids_by_subject.items() if kind == event_type}

    def stop_failing(self) -> None:
        with self.lock:
            self.fail_rate = self.fail_after_store_rate = 0.0
