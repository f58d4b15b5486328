"""The one in-process retry mechanism: tries, waits through the injected sleep, one log line
per retry, and the last error raised as it is."""

from __future__ import annotations

import logging

import pytest
from tenacity import wait_exponential

from integration.errors import OperatorUnavailable, RateLimited, RequestRejected
from integration.retrying import retry_after_or, retrying

log = logging.getLogger("tests.retrying")


def failing(*errors):
    """An attempt that raises ``errors`` in turn, then returns "ok"; ``calls`` counts the tries."""
    pending = list(errors)

    def attempt():
        attempt.calls += 1
        if pending:
            raise pending.pop(0)
        return "ok"

    attempt.calls = 0
    return attempt


def policy(slept, tries=4, when=lambda exc: isinstance(exc, (OperatorUnavailable, RateLimited))):
    wait = retry_after_or(wait_exponential(multiplier=1))
    return retrying(tries=tries, when=when, wait=wait, sleep=slept.append, log=log, what="test call", method="m")


def test_retries_with_the_waits_then_succeeds(caplog):
    slept: list[float] = []
    attempt = failing(OperatorUnavailable(), RateLimited(retry_after=7.5), OperatorUnavailable())
    with caplog.at_level(logging.DEBUG, logger="tests.retrying"):
        assert policy(slept)(attempt) == "ok"
    assert attempt.calls == 4 and slept == [1.0, 7.5, 4.0]
    assert all(type(seconds) is float for seconds in slept)
    lines = [(r.getMessage(), r.fields) for r in caplog.records]
    assert lines[1] == ("test call retried", {"method": "m", "attempt": 2, "retry_in": 7.5, "error": "RateLimited"})
    assert len(lines) == 3


def test_the_last_error_is_raised_as_it_is_when_the_tries_run_out():
    slept: list[float] = []
    last = OperatorUnavailable("third")
    attempt = failing(OperatorUnavailable("first"), OperatorUnavailable("second"), last)
    with pytest.raises(OperatorUnavailable) as caught:
        policy(slept, tries=3)(attempt)
    assert caught.value is last and attempt.calls == 3 and slept == [1.0, 2.0]


def test_an_error_not_worth_repeating_is_raised_at_once():
    slept: list[float] = []
    attempt = failing(RequestRejected(status=400))
    with pytest.raises(RequestRejected):
        policy(slept)(attempt)
    assert attempt.calls == 1 and slept == []
