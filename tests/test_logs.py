"""Logs: one line per event with its ids as fields, no secrets, request lines redacted, quiet
workers at INFO (real ``worker.py`` and ``gunicorn`` processes)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests
from gunicorn.glogging import SafeAtoms

from integration.config import Settings
from integration.logs import (
    HANDLER_NAME,
    REQUEST_LINE_REDACTOR,
    REQUEST_LOGGERS,
    RQ_LOGGERS,
    FieldsFormatter,
    log_failure,
    setup_logging,
)
from integration.redaction import KnownSecrets
from integration.settings import load_settings
from tests.conftest import LINK_KEY, ROOT, SECRET_KEYS, app_for, serve

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)")
AMO_SECRET = "amo-path-secret-7f3e9a"
SIG = "sigvalue9d8c7b6a"


def make_settings(**env: str) -> Settings:
    return load_settings(
        {
            "OPERATOR_AUTHORIZATION_TOKEN": "operator-authorization-token",
            "SECRET_KEYS": SECRET_KEYS,
            "OPERATOR_NUMBERS": "4990000000",
            "API_TOKEN": "api-token-for-the-crm",
            **env,
        },
        dotenv="/nonexistent/.env",
    )


def record(message: str, *, name: str = "integration.sync", exc_info=None, **values) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, exc_info)
    if values:
        made.fields = values
    return made


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put back what ``setup_logging`` changes: the root logger, RQ's level, the request loggers."""
    names = ("", *RQ_LOGGERS, *REQUEST_LOGGERS)
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    filtered = {name: REQUEST_LINE_REDACTOR in logging.getLogger(name).filters for name in REQUEST_LOGGERS}
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
    for name, had in filtered.items():
        if not had:
            logging.getLogger(name).removeFilter(REQUEST_LINE_REDACTOR)


# --- the line ---------------------------------------------------------------------------------


def test_a_line_is_the_event_then_its_ids_as_fields():
    since = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    line = FieldsFormatter().format(
        record("calls stored", line="4990000000", stored=41, since=since, until=since.replace(hour=16))
    )
    match = LINE.fullmatch(line)
    assert match, line
    assert match.groups() == (
        "INFO",
        "integration.sync",
        "calls stored line=4990000000 stored=41 since=2026-11-30T15:00:00+00:00 until=2026-11-30T16:00:00+00:00",
    )


def test_values_with_spaces_are_quoted_and_a_line_stays_one_line():
    line = FieldsFormatter().format(
        record(
            "delivery failed", call="h:1", error='the CRM said "no"\nand closed', empty="", reason=None, retry_in=2.0
        )
    )
    assert "\n" not in line
    assert line.endswith(' delivery failed call=h:1 error="the CRM said \\"no\\"\\nand closed" empty="" retry_in=2')


def test_rq_colours_are_dropped():
    assert (
        FieldsFormatter()
        .format(record("\x1b[32mdefault\x1b[39;49;00m: Job OK", name="rq.worker"))
        .endswith("rq.worker: default: Job OK")
    )


def test_a_secret_passed_by_mistake_is_redacted():
    settings = make_settings(
        BITRIX24_WEBHOOK_URL="https://acme.bitrix24.ru/rest/1/abcdef123456/", CRM_BACKEND="bitrix24"
    )
    formatter = FieldsFormatter(KnownSecrets.of(settings))
    named_like_a_secret = formatter.format(record("renewed", token="eyJhbGciOi.x.y", api_key="k-123"))
    assert named_like_a_secret.endswith("renewed token=[redacted] api_key=[redacted]")
    by_value = formatter.format(record(f"using {settings.api_token}", line=settings.operator_authorization_token))
    assert by_value.endswith("using [redacted] line=[redacted]")
    assert "api-token-for-the-crm" not in by_value and "operator-authorization-token" not in by_value
    try:
        raise ConnectionError("Max retries exceeded with url: /rest/1/abcdef123456/profile.json?auth=1&sig=f00d")
    except ConnectionError:
        with_traceback = formatter.format(record("unhandled error", exc_info=sys.exc_info()))
    assert "Traceback" in with_traceback and "abcdef123456" not in with_traceback and "f00d" not in with_traceback
    assert "url: [redacted]/profile.json?auth=1&sig=[redacted]" in with_traceback


def test_a_failure_to_retry_is_a_warning_and_giving_up_an_error(caplog):
    log = logging.getLogger("integration.test")
    now = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    with caplog.at_level(logging.DEBUG, logger="integration.test"):
        log_failure(log, "delivery", now, now.replace(second=3), call="h:1", attempt=1, error="503")
        log_failure(log, "delivery", now, None, call="h:1", attempt=9, error="410")
    retried, given_up = caplog.records
    assert (retried.levelname, retried.getMessage(), retried.fields) == (
        "WARNING",
        "delivery failed",
        {"call": "h:1", "attempt": 1, "error": "503", "retry_in": 3.0},
    )
    assert (given_up.levelname, given_up.getMessage(), given_up.fields) == (
        "ERROR",
        "delivery given up",
        {"call": "h:1", "attempt": 9, "error": "410"},
    )


# --- the set-up -------------------------------------------------------------------------------


def test_setup_installs_one_handler_and_sets_rq_one_step_quieter(restored_logging):
    setup_logging(make_settings(LOG_LEVEL="INFO"))
    setup_logging(make_settings(LOG_LEVEL="INFO"))  # create_app runs again: nothing doubles
    root = logging.getLogger()
    assert [h.get_name() for h in root.handlers].count(HANDLER_NAME) == 1
    assert root.level == logging.INFO
    assert logging.getLogger("rq.worker").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("rq.job").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("rq.queue").getEffectiveLevel() == logging.WARNING
    for name in REQUEST_LOGGERS:
        assert logging.getLogger(name).filters.count(REQUEST_LINE_REDACTOR) == 1
    setup_logging(make_settings(LOG_LEVEL="DEBUG"))
    assert logging.getLogger("rq.worker").getEffectiveLevel() == logging.DEBUG
    setup_logging(make_settings(LOG_LEVEL="ERROR"))
    assert logging.getLogger("rq.worker").getEffectiveLevel() == logging.ERROR


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_gunicorn_access_atoms_are_redacted_in_any_format(restored_logging):
    setup_logging(make_settings())
    access = logging.getLogger("gunicorn.access")
    collected = Collected()
    access.addHandler(collected)
    propagate, access.propagate = access.propagate, False
    atoms = SafeAtoms(
        {
            "r": f"GET /recordings/x.mp3?sig={SIG}&exp=1 HTTP/1.1",
            "U": "/recordings/x.mp3",
            "q": f"sig={SIG}&exp=1",
            "f": "https://crm.example/page?access_token=tok3n",
            "{authorization}i": "Bearer api-token-for-the-crm",
            "{cookie}i": "session=c00kie",
            "{user-agent}i": "curl/8",
            "{query_string}e": f"sig={SIG}&exp=1",
            "{raw_uri}e": f"/webhooks/amocrm/{AMO_SECRET}",
        }
    )
    custom = '%(r)s|%(U)s|%(q)s|"%(f)s"|%({Authorization}i)s|%({cookie}i)s|%({User-Agent}i)s|%({QUERY_STRING}e)s|%({raw_uri}e)s|%({x-none}i)s'
    try:
        access.info(custom, atoms)
    finally:
        access.removeHandler(collected)
        access.propagate = propagate
    assert collected.lines == [
        "GET /recordings/x.mp3?sig=[redacted]&exp=1 HTTP/1.1|/recordings/x.mp3|sig=[redacted]&exp=1"
        '|"https://crm.example/page?access_token=[redacted]"|[redacted]|[redacted]|curl/8|sig=[redacted]&exp=1'
        "|/webhooks/amocrm/[redacted]|-"
    ]


def test_werkzeug_request_lines_are_redacted(service_env, redis_conn, caplog):
    env = service_env | {"AMOCRM_WEBHOOK_SECRET": AMO_SECRET}
    with app_for(env) as app, serve(app) as base, caplog.at_level(logging.INFO, logger="werkzeug"):
        assert requests.post(f"{base}/webhooks/amocrm/{AMO_SECRET}", data={"x": "1"}, timeout=10).status_code == 200
        requests.get(f"{base}/recordings/x.mp3?sig={SIG}&exp=1", timeout=10)
    lines = [FieldsFormatter().format(r) for r in caplog.records if r.name == "werkzeug"]  # werkzeug colours some
    assert any('"POST /webhooks/amocrm/[redacted] HTTP/1.1" 200' in line for line in lines), lines
    assert any('"GET /recordings/x.mp3?sig=[redacted]&exp=1 HTTP/1.1"' in line for line in lines), lines
    assert AMO_SECRET not in caplog.text and SIG not in caplog.text


# --- real processes ---------------------------------------------------------------------------


class Output:
    """A process's stdout and stderr together, line by line as written, with when each came."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def since(self, moment: float) -> list[str]:
        return [line for at, line in self.lines if at >= moment]

    def wait_for(self, wanted: Callable[[str], bool], count: int = 1, timeout: float = 20) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for _, line in self.lines if wanted(line)]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"not written within {timeout} s; the output so far:\n{self.text}")

    def join(self) -> None:
        self._thread.join(10)


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Output]]:
    """``python <args>`` in its own process group, stdout and stderr read together; the whole
    group is killed afterwards (RQ forks its scheduler)."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **env}
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(process)
    try:
        yield process, output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        output.join()


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(15)


@pytest.mark.slow
def test_an_idle_worker_writes_nothing_at_info(service_env, redis_conn, control, tmp_path):
    control.post("calls/generate", {"count": 6, "days": 0.05, "recording_ratio": 0})
    env = service_env | {"LOG_LEVEL": "INFO", "SYNC_INTERVAL": "2", "RECORDINGS_DIR": str(tmp_path / "recordings")}
    with running(["worker.py"], env) as (worker, output):
        output.wait_for(lambda line: "calls stored" in line)
        time.sleep(1.5)  # the first sync's deliveries
        idle_from = time.monotonic()
        time.sleep(12)  # six syncs, two sweeps, the scheduler ticking every second
        idle = output.since(idle_from)
        stop(worker)
    assert idle == [], output.text
    parsed = [LINE.fullmatch(line) for _, line in output.lines]
    assert all(parsed), output.text  # every line is ours: RQ's own handler and its lines are gone
    events = [match.groups() for match in parsed]
    assert events[0][:2] == ("INFO", "worker") and events[0][2].startswith("worker starting "), output.text
    assert events[-1][:2] == ("INFO", "worker") and events[-1][2].startswith("worker stopped "), output.text
    for level, _, message in events[1:-1]:
        assert level == "INFO" and message.startswith(("operator token renewed ", "calls stored ")), output.text
    stored = re.findall(r"calls stored line=(\d{10}) stored=(\d+) since=\S+ until=\S+$", output.text, re.MULTILINE)
    assert sum(int(count) for _, count in stored) == 6, output.text


@pytest.mark.slow
def test_a_worker_at_debug_logs_its_ticks(service_env, redis_conn, tmp_path):
    env = service_env | {"LOG_LEVEL": "DEBUG", "SYNC_INTERVAL": "1", "RECORDINGS_DIR": str(tmp_path / "recordings")}
    with running(["worker.py"], env) as (worker, output):
        output.wait_for(lambda line: "integration.sync: no new calls" in line, count=2)
        output.wait_for(lambda line: "integration.services.sweeper: due work queued" in line)
        output.wait_for(lambda line: "integration.scheduler: periodic job enqueued job=periodic-sync_calls-" in line)
        output.wait_for(lambda line: re.search(r"rq\.worker: .*Job OK \(periodic-sync_calls-", line) is not None)
        stop(worker)


@pytest.mark.slow
def test_gunicorn_access_log_shows_no_url_secret(service_env, redis_conn):
    env = service_env | {"AMOCRM_WEBHOOK_SECRET": AMO_SECRET, "RECORDING_LINK_KEYS": LINK_KEY}
    args = ["-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:0", "--access-logfile", "-", "wsgi:app"]
    with running(args, env) as (server, output):
        (listening,) = output.wait_for(lambda line: "Listening at: http://" in line)
        base = re.search(r"http://[\d.]+:\d+", listening).group(0)
        assert requests.post(f"{base}/webhooks/amocrm/{AMO_SECRET}", data={"x": "1"}, timeout=10).status_code == 200
        assert requests.get(f"{base}/recordings/x.mp3?sig={SIG}&exp=1", timeout=10).status_code in (403, 404)
        output.wait_for(lambda line: "/recordings/" in line)
        stop(server)
    assert AMO_SECRET not in output.text and SIG not in output.text, output.text
    assert '"POST /webhooks/amocrm/[redacted] HTTP/1.1" 200' in output.text, output.text
    assert '"GET /recordings/x.mp3?sig=[redacted]&exp=1 HTTP/1.1"' in output.text, output.text
