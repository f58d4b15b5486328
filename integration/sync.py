"""Call history → ledger (flow 2), without Flask or RQ.

``sync_calls`` polls ``getcalllist`` from the stored cursor minus an overlap window (late rows
still appear), in slices of at most a day with every contract line in one request, inserts only
the calls not seen before and moves the cursor after each slice's commit. A call's key is stable:
the recording id when there is one, else a hash of line, start, direction, number and duration.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from integration.ledger.callbacks import LINK_AFTER, LINK_BEFORE, CallbackLedger
from integration.ledger.calls import CallLedger
from integration.logs import fields
from integration.models import Call, CallbackRequest, CallRow, CallStatus, Direction
from integration.operator.client import OperatorClient
from integration.operator.periods import CLAMP_MARGIN, earliest_available, split_period
from integration.phone import reported_number
from integration.timeutil import utc_isoformat

log = logging.getLogger(__name__)


def call_key(row: CallRow) -> str:
    """The recording id when present, else a hash of the row's identity (never number and time alone)."""
    if row.record_file_id:
        return f"rec:{row.record_file_id}"
    identity = f"{row.line or ''}|{utc_isoformat(row.started_at)}|{row.direction}|{row.ext_num}|{row.duration}"
    return "h:" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def call_from_row(row: CallRow, region: str) -> Call:
    """An operator row as a ledger call: E.164 whenever the number parses, the raw form kept."""
    e164, internal = reported_number(row.ext_num, region)
    if row.duration > 0:
        status = CallStatus.ANSWERED
    elif row.is_read is not None:
        status = CallStatus.VOICEMAIL
    else:
        status = CallStatus.MISSED
    # Positional, in the fields' order: keyword arguments cost a dataclass twice as much (≈ 1 µs).
    return Call(
        call_key(row),  # id
        row.line or "",  # line
        row.direction,
        status,
        row.started_at,
        row.duration,
        row.ext_num,  # ext_raw
        e164,
        internal,
        row.service,
        row.record_file_id,
        row.is_read,
    )


# A backfill reads a day at a time: no single answer of a month's calls for the operator to build
# and us to hold, and its progress is committed a day at a time.
SLICE = timedelta(days=1)
CHUNK = 10_000  # calls normalised while the ledger writes the chunk before


def store_calls(
    rows: Iterable[CallRow], ledger: CallLedger, region: str, now: datetime, chunk: int = CHUNK
) -> Iterator[tuple[list[Call], list[str]]]:
    """Normalise operator rows and store the calls not seen before, a chunk at a time; yields each
    chunk's calls and the ids of those that were new, chunk by chunk in order.

    One background thread writes a chunk while the next is normalised: the database's own work
    (SQLite's statements, which run without the GIL, or PostgreSQL's in its server) overlaps
    Python's. Each chunk is its own transaction: a failed one raises here before a later one is
    written, and what the chunks before it stored stays stored (inserted once, whoever retries).
    """
    rows = iter(rows)
    with ThreadPoolExecutor(1, thread_name_prefix="ledger-writer") as writer:
        submit = writer.submit if ledger.writes_from_any_thread else _now
        writing = None  # the chunk being written, and its future new ids
        while batch := list(islice(rows, chunk)):
            calls = [call_from_row(row, region) for row in batch]
            written = writing and (writing[0], writing[1].result())  # a failed write stops the chunks after it
            writing = calls, submit(ledger.insert_new, calls, now)
            if written:
                yield written
        if writing:
            yield writing[0], writing[1].result()


@contextmanager
def fewer_young_collections(every: int = 50_000) -> Iterator[None]:
    """Collect CPython's youngest generation every ``every`` new objects instead of every 700.

    A month's slice makes millions of small objects (rows, then calls) that live until their chunk
    is written; at the default the collector scans them again and again, ≈ 10 – 15 % of a sync.
    Restored on the way out.
    """
    saved = gc.get_threshold()
    gc.set_threshold(max(every, saved[0]), *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _now(function: Callable, *args) -> Future:
    """``Executor.submit`` that runs ``function`` at once in this thread."""
    done: Future = Future()
    try:
        done.set_result(function(*args))
    except Exception as exc:
        done.set_exception(exc)
    return done


def only(calls: list[Call], ids: Iterable[str]) -> list[Call]:
    """The calls whose id is among ``ids``, in their order."""
    wanted = set(ids)
    return [call for call in calls if call.id in wanted]


def link_callbacks(new_calls: list[Call], ledger: CallLedger, callbacks: CallbackLedger) -> None:
    """Tie outbound calls to the placed click-to-call requests they came from: the newest request
    from the call's line to its number placed up to ``LINK_BEFORE`` before it started (or
    ``LINK_AFTER`` after), each request to one call. One query for all the calls."""
    outbound = [call for call in new_calls if call.direction is Direction.OUTBOUND and call.ext_e164]
    if not outbound:
        return
    earliest = min(call.started_at for call in outbound) - LINK_BEFORE
    latest = max(call.started_at for call in outbound) + LINK_AFTER
    waiting: dict[tuple[str, str], list[CallbackRequest]] = {}
    for request in callbacks.placed_between(earliest, latest):  # newest first
        waiting.setdefault((request.phone_from, request.phone_to), []).append(request)
    for call in outbound:
        candidates = waiting.get((call.line, call.ext_e164 or ""), [])
        for request in candidates:
            placing_at = request.placing_at
            if placing_at and call.started_at - LINK_BEFORE <= placing_at <= call.started_at + LINK_AFTER:
                ledger.link_callback(call.id, request.id)
                candidates.remove(request)
                break


def log_slice(since: datetime, until: datetime, found: int, stored: Counter[str]) -> None:
    """One INFO line per line that got new calls in the slice; a slice with nothing new is a
    routine tick (DEBUG)."""
    if not stored:
        log.debug("no new calls", extra=fields(found=found, since=since, until=until))
    for line, count in sorted(stored.items()):
        log.info("calls stored", extra=fields(line=line, stored=count, since=since, until=until))


@dataclass
class SyncResult:
    start: datetime
    end: datetime
    found: int = 0
    new_ids: list[str] = field(default_factory=list)
    out_of_reach_before: datetime | None = None  # asked for history older than the operator keeps
    moved_cursor: bool = False  # the sync cursor advanced


def sync_window(
    cursors: dict[str, datetime], lines: Sequence[str], now: datetime, overlap: timedelta, first_window: timedelta
) -> datetime:
    """Where a regular sync starts: the oldest line cursor minus the overlap."""
    if len(cursors) < len(lines):  # a line never synced: look back the first window for all
        return now - first_window - overlap
    return min(cursors.values()) - overlap


def sync_calls(
    operator: OperatorClient,
    ledger: CallLedger,
    lines: Sequence[str],
    *,
    now: datetime,
    tz: ZoneInfo,
    region: str,
    overlap: timedelta,
    first_window: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
    callbacks: CallbackLedger | None = None,
    on_stored: Callable[[list[str]], None] = lambda new_ids: None,
) -> SyncResult:
    """Bring the ledger up to date for ``[since, until)`` (default: from the cursor to now).

    With ``callbacks``, each new outbound call is linked to the click-to-call that made it.
    ``on_stored(new_ids)`` follows each slice's commit, so what a slice stored is handed on even
    when a later slice fails.
    """
    regular = since is None
    cursors = ledger.cursors(lines)
    start = since if since is not None else sync_window(cursors, lines, now, overlap, first_window)
    end = min(until or now, now)
    result = SyncResult(start=start, end=end)
    earliest = earliest_available(now, tz) + CLAMP_MARGIN
    if start < earliest:
        result.out_of_reach_before = earliest
    # A backfill moves the cursor only when it joins up with it; a gap must never be skipped.
    moves_cursor = regular or (len(cursors) == len(lines) and start <= min(cursors.values()))
    begin = max(start, earliest)
    if begin >= end:
        return result
    for lower, upper in split_period(begin, end, now, tz, span=SLICE):
        found, new_ids, stored = 0, [], Counter[str]()
        with fewer_young_collections():  # a month's rows and calls are millions of small objects
            for calls, fresh in store_calls(operator.iter_call_list_slice(lines, lower, upper), ledger, region, now):
                found += len(calls)
                new_ids += fresh
                if fresh:
                    new_calls = only(calls, fresh)
                    stored.update(call.line for call in new_calls)
                    if callbacks is not None:
                        link_callbacks(new_calls, ledger, callbacks)
        on_stored(new_ids)
        if moves_cursor:
            ledger.advance(lines, upper, now)  # only after the calls are committed
            # A cursor never moves back: it moved when a line had none, or one older than this.
            result.moved_cursor |= any(line not in cursors or cursors[line] < upper for line in lines)
        result.found += found
        result.new_ids += new_ids
        log_slice(lower, upper, found, stored)
    return result
