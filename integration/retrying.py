"""In-process retries of one request: the one mechanism the operator client and the CRM
adapters use (``tenacity``).

``retrying(...)(attempt)`` calls ``attempt`` up to ``tries`` times while ``when(error)`` says its
failure is worth an immediate repeat, sleeping ``wait`` seconds between tries through the
caller's ``sleep`` (tests pass a recorder) and logging one DEBUG line per retry: ``<what>
retried`` with the caller's fields, ``attempt`` (the try that failed, from 1), ``retry_in`` and
``error`` (the error's class). When the tries run out, or ``when`` says no, the last error is
raised as it is, never wrapped.

These are seconds-long waits inside one job. Whether the work is tried again later, from the
ledger, is the error's ``retryable`` (``integration.errors``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from integration.logs import fields

Wait = Callable[[RetryCallState], float]


def retrying(
    *,
    tries: int,
    when: Callable[[BaseException], bool],
    wait: Wait,
    sleep: Callable[[float], None],
    log: logging.Logger,
    what: str,
    **about: Any,
) -> Retrying:
    def log_retry(state: RetryCallState) -> None:
        error = type(state.outcome.exception()).__name__ if state.outcome else None
        log.debug(
            f"{what} retried",
            extra=fields(**about, attempt=state.attempt_number, retry_in=state.upcoming_sleep, error=error),
        )

    return Retrying(
        stop=stop_after_attempt(tries),
        retry=retry_if_exception(when),
        wait=wait,
        sleep=lambda seconds: sleep(float(seconds)),
        before_sleep=log_retry,
        reraise=True,
    )


def retry_after_or(fallback: Wait) -> Wait:
    """The failure's own ``retry_after`` seconds when it carries one (``RateLimited`` from a
    ``Retry-After`` header), otherwise ``fallback``."""

    def wait(state: RetryCallState) -> float:
        retry_after = getattr(state.outcome.exception(), "retry_after", None) if state.outcome else None
        return fallback(state) if retry_after is None else retry_after

    return wait
