"""Prometheus metrics shared by every process through Redis.

Each process adds to an in-memory buffer and flushes it to one Redis hash at most once a second
(and whenever ``flush`` is called, e.g. after a job), so the hot path never waits for Redis.
``render`` returns the Prometheus text format for ``GET /metrics``.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping

from redis import Redis, RedisError

from integration.logs import fields

log = logging.getLogger(__name__)

KEY = "vats:metrics"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HELP = {
    "vats_webhooks_total": ("counter", "Inbound webhook requests by endpoint and outcome."),
    "vats_webhook_seconds": ("histogram", "Time to answer an inbound webhook."),
    "vats_jobs_total": ("counter", "Background jobs by job and outcome."),
    "vats_job_seconds": ("histogram", "Background job duration."),
    "vats_operator_calls_total": ("counter", "Operator API calls by method and outcome."),
    "vats_operator_call_seconds": ("histogram", "Operator API call latency."),
    "vats_callbacks_total": ("counter", "Click-to-call outcomes."),
    "vats_callback_requests_total": ("counter", "Website call-me-back requests by outcome."),
    "vats_deliveries_total": ("counter", "Call deliveries to the CRM by CRM and outcome."),
    "vats_events_total": ("counter", "Outgoing CRM events by CRM and outcome."),
    "vats_recordings_total": ("counter", "Recording fetch attempts by outcome."),
    "vats_crm_events_total": ("counter", "Inbound CRM events by type and whether a rule matched."),
}


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{str(v).replace(chr(34), "")}"' for k, v in sorted(labels.items()))


def _order(field: str) -> tuple:
    """Sort series by name and labels, histogram buckets by their bound."""
    head, _, bound = field.partition('le="')
    value = bound.split('"', 1)[0]
    return (head, float("inf") if value == "+Inf" else float(value) if value else -1.0, field)


def _cumulative(stored: Mapping[bytes, bytes]) -> list[tuple[str, float]]:
    """Stored series in order, histogram buckets made cumulative, with their ``_count``."""
    values = {field.decode(): float(value) for field, value in stored.items()}
    histograms: dict[str, dict[str, float]] = defaultdict(dict)
    out = []
    for field, value in values.items():
        if "_bucket{" in field:
            head, _, bound = field.rpartition('le="')
            histograms[head][bound.rstrip('"}')] = value
        else:
            out.append((field, value))
    for head, counts in histograms.items():
        running = 0.0
        for bound in [f"{b}" for b in BUCKETS] + ["+Inf"]:
            running += counts.get(bound, 0.0)
            out.append((f'{head}le="{bound}"}}', running))
        name, _, labels = head.partition("_bucket{")
        out.append((f"{name}_count{{{labels.rstrip(',')}}}", running))
    return sorted(out, key=lambda item: _order(item[0]))


class Metrics:
    def __init__(self, redis: Redis | None, flush_interval: float = 1.0):
        self.redis = redis
        self.flush_interval = flush_interval
        self._buffer: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        self._add(f"{name}{{{_labels(labels)}}}", amount)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Count into the smallest bucket that holds ``seconds``; ``render`` makes them cumulative."""
        base = _labels(labels)
        sep = "," if base else ""
        index = bisect.bisect_left(BUCKETS, seconds)
        bound = f"{BUCKETS[index]}" if index < len(BUCKETS) else "+Inf"
        self._buffer_add(f'{name}_bucket{{{base}{sep}le="{bound}"}}', 1)
        self._add(f"{name}_sum{{{base}}}", seconds)

    def _buffer_add(self, field: str, amount: float) -> None:
        with self._lock:
            self._buffer[field] += amount

    def _add(self, field: str, amount: float) -> None:
        self._buffer_add(field, amount)
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, defaultdict(float)
            self._last_flush = time.monotonic()
        if not pending or self.redis is None:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for field, amount in pending.items():
                pipe.hincrbyfloat(KEY, field, amount)
            pipe.execute()
        except RedisError:
            log.warning("metrics not flushed to Redis", extra=fields(dropped_series=len(pending)))

    def render(self) -> str:
        self.flush()
        stored: Mapping[bytes, bytes] = self.redis.hgetall(KEY) if self.redis is not None else {}  # type: ignore[assignment]  # bytes: no decode_responses
        series: dict[str, list[str]] = defaultdict(list)
        for field, number in _cumulative(stored):
            name = field.split("{", 1)[0]
            family = next((f for f in HELP if name == f or name.startswith(f + "_")), name)
            series[family].append(f"{field} {int(number) if number.is_integer() else number}")
        lines = []
        for family in sorted(series):
            kind, text = HELP.get(family, ("untyped", family))
            lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}", *series[family]]
        return "\n".join(lines) + "\n"
