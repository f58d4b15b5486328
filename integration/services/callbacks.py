"""Click-to-call in the worker: place one request at most once, tell the CRM how it ended,
and mark requests a killed worker left ``placing`` as ``unknown``."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from integration import callbacks
from integration.accounts import AccountError
from integration.crm.base import TakesEvents
from integration.ledger.callbacks import accounts_placing
from integration.ledger.outbox import event_id
from integration.ledger.work import WorkKind
from integration.logs import fields
from integration.models import CallbackRequest
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

FINISHED = {"placed", "failed", "expired", "unknown"}


def place_callback(rt: Runtime, request_id: str) -> CallbackRequest | None:
    """Place the request (None: no such request); a CRM that takes events hears how it ended
    (``callback.finished``, sent and retried through the outbox)."""
    request = rt.intake.accepted(request_id) or rt.callback_ledger.get(request_id)
    if request is None:
        log.error("callback request not found; nothing placed", extra=fields(callback=request_id))
        return None
    result = callbacks.place_callback(request, rt.callback_ledger, rt.operator, ttl=rt.settings.callback_ttl)
    level = logging.INFO if result.status.value == "placed" else logging.WARNING
    log.log(
        level,
        f"callback {result.status.value}",
        extra=fields(callback=result.id, line=result.phone_from, reason=result.reason),
    )
    if isinstance(rt.crm, TakesEvents) and result.status.value in FINISHED:
        event = event_id("callback.finished", result.id)
        rt.outbox.add(event, "callback.finished", result.id, callbacks.public_view(result), utc_now())
        rt.queue_work(WorkKind.SEND_EVENT, event)
    return result


def stuck_after(rt: Runtime) -> timedelta:
    """How long a ``placing`` request may last: the operator call's own time limit, plus slack."""
    settings = rt.settings
    return timedelta(
        seconds=(settings.operator_connect_timeout + settings.operator_read_timeout)
        * (settings.operator_max_retries + 1)
        + 30
    )


def reap_stuck_callbacks(rt: Runtime) -> int:
    """Requests left in ``placing`` by a killed worker become ``unknown`` (never re-placed)."""
    now = utc_now()
    reaped = rt.callback_ledger.reap_placing(now - stuck_after(rt), now)
    for request_id in reaped:
        log.warning("callback interrupted while placing; marked unknown", extra=fields(callback=request_id))
    return len(reaped)


def reap_accounts(runtimes: AccountRuntimes) -> int:
    """``reap_stuck_callbacks`` in every served account with a request ``placing``."""
    reaped = 0
    for account in accounts_placing(runtimes.default.engine):
        with contextlib.suppress(AccountError):
            reaped += reap_stuck_callbacks(runtimes.get(account))
    return reaped
