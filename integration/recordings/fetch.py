"""Recording fetch (flow 2, recordings), without Flask or RQ.

``fetch_recording`` downloads a call's recording with the client's streaming decode, which checks
that it is audio and hashes it on the way, into the store under a temporary name that becomes
visible only when complete; then the ledger records size and sha256. "Not ready yet" (the
operator answers 404) and operator faults are retried under the work items' retry policy, for
``WAIT_WINDOW`` (the fetch's window in ``integration.ledger.work``); answers that will never
become a recording fail at once. A stored recording is never fetched again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from integration.errors import OperatorError, RequestRejected
from integration.ledger.recordings import KIND, PENDING, STORED, RecordingLedger
from integration.ledger.work import window
from integration.logs import fields, log_failure
from integration.operator.client import OperatorClient
from integration.recordings.storage import RecordingStore

log = logging.getLogger(__name__)

WAIT_WINDOW = window(KIND)  # how long a recording may take to appear, faults included


def fetch_recording(
    call_id: str, *, ledger: RecordingLedger, operator: OperatorClient, store: RecordingStore, now: datetime
) -> str:
    """Fetch and store one call's recording unless done; returns its status afterwards."""
    recording = ledger.get(call_id)
    if recording is None or recording.status != PENDING:
        return recording.status if recording else "missing"
    key = f"{recording.id}.mp3"
    try:
        with store.writer(key) as sink:
            downloaded = operator.download_recording(recording.record_file_id, sink)
    except OperatorError as exc:
        not_ready = isinstance(exc, RequestRejected) and exc.status == 404
        reason = "not ready yet" if not_ready else str(exc)
        next_at = ledger.fail_attempt(call_id, reason, now, retryable=exc.retryable)
        about = {"call": call_id, "recording": recording.id, "attempt": recording.attempts + 1, "error": reason}
        if not_ready and next_at:  # routine: the operator makes a recording available after a while
            log.debug("recording not ready yet", extra=fields(**about))
        else:
            log_failure(log, "recording fetch", now, next_at, **about)
        return PENDING if next_at else "failed"
    ledger.mark_stored(call_id, downloaded.size, downloaded.sha256, key, now)
    log.info("recording stored", extra=fields(call=call_id, recording=recording.id, size=downloaded.size))
    return STORED
