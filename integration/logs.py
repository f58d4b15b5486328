"""Logging for every process: one line per event, its ids as ``key=value`` fields, no secrets.

``setup_logging(settings)`` is called by ``create_app`` and ``worker.py``. A line reads
``2026-11-30 18:02:11 INFO integration.sync: calls stored line=4990000000 stored=41 since=… until=…``;
code logs an event with its fields as ``log.info("calls stored", extra=fields(line=…, stored=41))``.
Never pass a secret: should one slip in anyway, a field named like a secret (``token``, ``key``, …)
and any value of a secret setting are shown as ``[redacted]``, and so are URL secrets.

RQ's own per-job lines are at INFO; its loggers are set one step quieter (WARNING) unless
LOG_LEVEL is DEBUG, so an idle worker writes nothing at INFO. The request lines of gunicorn's
access log and of werkzeug (``flask run``) go through ``RequestLineRedactor``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from integration.config import Settings
from integration.redaction import REDACTED, KnownSecrets, is_secret_name, redact_url

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
HANDLER_NAME = "vats-bridge"
REQUEST_LOGGERS = ("gunicorn.access", "gunicorn.error", "werkzeug")
# RQ's parent logger, and those RQ gives a level of their own (rq.worker at import, the others
# when a worker starts); the rest of RQ's loggers (rq.queue, rq.registry, …) follow "rq".
RQ_LOGGERS = ("rq", "rq.worker", "rq.job", "rq.scheduler")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PLAIN = re.compile(r"[^\s\"=\\]+")  # a value written without quotes


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """``extra=`` for a log call: the event's ids and figures (``None`` values are left out)."""
    return {"fields": values}


def log_failure(logger: logging.Logger, what: str, now: datetime, next_at: datetime | None, **values: Any) -> None:
    """``<what> failed`` at WARNING with ``retry_in`` (seconds) when it will be tried again at
    ``next_at``, else ``<what> given up`` at ERROR."""
    if next_at is None:
        logger.error(f"{what} given up", extra=fields(**values))
    else:
        retry_in = round((next_at - now).total_seconds(), 1)
        logger.warning(f"{what} failed", extra=fields(**values, retry_in=retry_in))


def render_fields(values: Mapping[str, Any]) -> str:
    """`` key=value`` pairs; values with spaces, quotes or ``=`` (or empty) quoted as JSON strings."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        if is_secret_name(key):
            text = REDACTED
        elif isinstance(value, datetime):
            text = value.isoformat(timespec="seconds")
        elif isinstance(value, float):
            text = f"{value:.3f}".rstrip("0").rstrip(".")
        else:
            text = str(value)
        parts.append(f" {key}={text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)}")
    return "".join(parts)


class FieldsFormatter(logging.Formatter):
    """``FORMAT`` plus the record's fields on the same line; secrets redacted from the whole text
    (tracebacks included)."""

    def __init__(self, secrets: KnownSecrets | None = None):
        super().__init__(FORMAT, DATE_FORMAT)
        self.secrets = secrets or KnownSecrets()

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        values = getattr(record, "fields", None)
        if isinstance(values, Mapping):
            line += render_fields(values)
        return _ANSI.sub("", line) if "\x1b" in line else line  # RQ colours its lines on a terminal

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets.redact(redact_url(super().format(record)))


class StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is written (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ and setStream assign it
        pass


@functools.lru_cache(maxsize=16)
def _atoms(log_format: str) -> tuple[str, ...]:
    """The atoms a gunicorn access-log format uses: ``%(r)s`` → ``r``, ``%({referer}i)s`` → ``{referer}i``."""
    return tuple(dict.fromkeys(re.findall(r"%\(([^)]+)\)", log_format)))


class RequestLineRedactor(logging.Filter):
    """Redacts URL secrets from request log lines before any handler formats them.

    gunicorn logs its access line as ``access_log.info(format, atoms)``: the atoms the format
    uses (``r``, ``U``, ``q``, ``f``, ``{header}i``, ``{variable}e``, …) are redacted, and a header
    or variable named like a secret (``Authorization``, ``Cookie``, …) is hidden whole. werkzeug
    and gunicorn's error log pass positional arguments: each text argument is redacted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, MutableMapping) and isinstance(record.msg, str):
            for atom in _atoms(record.msg):
                key = atom.lower() if atom.startswith("{") else atom  # gunicorn keeps these lowercased
                value = args.get(key)
                if isinstance(value, str):
                    secret = atom.startswith("{") and is_secret_name(atom[1 : atom.rfind("}")])
                    args[key] = REDACTED if secret and value != "-" else redact_url(value)
        elif isinstance(args, tuple):
            record.args = tuple(redact_url(arg) if isinstance(arg, str) else arg for arg in args)
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        return True


REQUEST_LINE_REDACTOR = RequestLineRedactor()


def rq_level(level: str) -> str:
    """The level for RQ's loggers: its per-job lines (INFO) show only when LOG_LEVEL is DEBUG."""
    return "WARNING" if level == "INFO" else level


def setup_logging(settings: Settings) -> None:
    """Every record at ``settings.log_level`` or above to stderr in ``FORMAT`` with fields; RQ's
    loggers at ``rq_level``; request lines redacted. Safe to call again (replaces its handler)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(FieldsFormatter(KnownSecrets.of(settings)))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in RQ_LOGGERS:
        logging.getLogger(name).setLevel(rq_level(settings.log_level))
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).addFilter(REQUEST_LINE_REDACTOR)
