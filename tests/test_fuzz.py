"""Fuzzing the live app from its own ``/openapi.json`` with schemathesis.

A real gunicorn serves the app (real Redis, a fresh SQLite ledger, the sandbox as the operator)
with every authentication path switched on. Each documented operation gets the examples of the
document, schemathesis' coverage cases and generated ones (valid and invalid), seeded with a
dictionary of edge values (other scripts' digits, extreme dates, huge numbers, bracketed names).
Two passes: one with valid credentials on every request — a Standard Webhooks signature over the
exact bytes sent, the bearer token, the Bitrix24 token, the amoCRM path secret, signed recording
links, an allowed Origin — so the inputs reach the code behind the checks, and one with the
credentials as generated (missing, wrong). Every answer must be documented (status, content type,
body) and no 5xx; errors must be ``application/problem+json``; CORS endpoints must answer an
allowed Origin with CORS headers, errors included; a malformed Range is ignored (RFC 9110), never
416; an accepted click-to-call reads back from ``/api/callbacks/{id}`` as documented. About 3,500
requests in under a minute on the 2-core machine when nothing fails (a failing operation stops
early); ``FUZZ_EXAMPLES`` (generated cases per operation and pass, default 80) and ``FUZZ_SEED``
for deeper or other runs. Hypothesis is derandomized and nothing is fed back from the answers, so
every run sends the same requests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from integration.ledger.tables import calls
from integration.phone import parse_phone
from integration.runtime import Runtime
from integration.services.deliveries import deliver_call as deliver_now
from integration.settings import load_settings
from integration.signatures import sign_headers
from tests.conftest import API_TOKEN, LINK_KEY, ROOT, SECRET

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "80"))  # generated cases per operation and pass
CORS_ORIGIN = "https://shop.example"
BITRIX24_TOKEN = "fuzz-bitrix24-application-token"
AMOCRM_SECRET = "fuzz-amocrm-path-secret"
AMOCRM_CLIENT_SECRET = "fuzz-amocrm-client-secret-0123456789"
CONTRACT = "4990000000"
CORS_PATHS = ("/callback-requests", "/webhooks/click-to-call", "/widget/amocrm/click-to-call")
SIGNED_PATHS = ("/webhooks/click-to-call", "/webhooks/events")
EDGES = [
    "²",
    "٣",
    "٨٩١٦١٢٣٤٥٦٧",
    "８９１６１２３４５６７",
    "+7 916 １２３-45-67",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "9" * 30,
    "9" * 400,
    "-1",
    "1e400",
    "a[b]",
    "leads",
    "x",
    "",
    "null",
    "bytes=abc",
    "bytes=5-1",
    "bytes=-0",
    "😀",
    "../",
    "%",
]
# Inputs whose text is read as a number, a date, a phone number or a range get the edge values as
# raw text too (valid or not for their schema); every other string and integer now and then.
EDGY_INPUTS = (
    "query.limit",
    "query.offset",
    "query.exp",
    "query.since",
    "query.until",
    "query.number",
    "query.phone",
    "header.Range",
    "header.webhook-timestamp",
    "body.to",
    "body.from",
    "body.phone",
)
CONFIG = {
    "seed": int(os.environ.get("FUZZ_SEED", "14")),
    "dictionaries": {"edges": {"values": EDGES}},
    "parameters": {name: {"dictionary": "edges", "probability": 0.3} for name in EDGY_INPUTS},
    "generation": {
        "mode": "all",
        "deterministic": True,
        "database": "none",
        "dictionaries": {
            "string": {"dictionary": "edges", "probability": 0.15},
            "integer": {"dictionary": "edges", "probability": 0.15},
        },
    },
    # Nothing fed back from answers (ids, error messages): the same inputs on every run.
    "phases": {
        "examples": {"extra-data-sources": {"responses": False}},
        "coverage": {"extra-data-sources": {"responses": False}},
        "fuzzing": {"extra-data-sources": {"responses": False}, "error-feedback": {"enabled": False}},
    },
    "request-timeout": 10,
    "warnings": False,
}


@dataclass
class Tally:
    """What one fuzzing pass sent and got."""

    name: str
    statuses: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def line(self) -> str:
        seen = ", ".join(f"{status}×{count}" for status, count in sorted(self.statuses.items()))
        return (
            f"fuzz {self.name}: {self.requests} requests, {self.server_errors} 5xx, "
            f"{time.perf_counter() - self.started:.1f} s ({seen})"
        )


class Summary:
    """Prints every pass's tally at the end of the session, after pytest's own summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.lines:
            terminalreporter.section("fuzzing")
            for text in self.lines:
                terminalreporter.write_line(text)


# --- the live app ------------------------------------------------------------------------------


@dataclass
class Live:
    url: str
    recording_id: str
    callback_id: str
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """``gunicorn wsgi:app`` on ``port`` of the loopback until the block ends."""
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):  # refused, or workers still booting
                if requests.get(url + "/healthz", timeout=5).ok:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def seed_ledger(env: dict[str, str]) -> str:
    """A call with a stored recording, its contact and its activity in the local CRM (so answers
    are checked with real rows); returns the recording's public id."""
    runtime = Runtime(load_settings(env, dotenv="/nonexistent/.env"))
    try:
        now = datetime.now(UTC)
        call_id = "rec:fuzz-recording"
        with runtime.engine.begin() as connection:
            connection.execute(
                calls.insert().values(
                    id=call_id, line=CONTRACT, direction="inbound", status="answered", started_at=now,
                    duration=30, ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False,
                    record_file_id="fuzz-recording", first_seen_at=now,
                )
            )  # fmt: skip
        runtime.recording_ledger.ensure([(call_id, "fuzz-recording")], now)
        audio = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40
        key = f"{runtime.recording_ledger.get(call_id).id}.mp3"
        with runtime.recording_store.writer(key) as file:
            file.write(audio)
        runtime.recording_ledger.mark_stored(call_id, len(audio), hashlib.sha256(audio).hexdigest(), key, now)
        runtime.crm.create_contact(parse_phone("+79161234567", "RU"), "Анна")
        assert deliver_now(runtime, call_id) == "delivered"
        return runtime.recording_ledger.get(call_id).id
    finally:
        runtime.engine.dispose()


def server_errors(log: Path) -> str:
    """The distinct exceptions the app logged, most frequent first."""
    lines = re.findall(r"^(\w[\w.]*(?:Error|Exception)\b[^\n]{0,160})$", log.read_text(errors="replace"), re.M)
    return "\n".join(f"  {count}× {line}" for line, count in Counter(lines).most_common())


@pytest.fixture
def live(service_env, redis_conn, tmp_path) -> Iterator[Live]:
    """The app under gunicorn with every authentication path on, a stored recording and a queued
    click-to-call to find."""
    users = tmp_path / "integration.toml"
    users.write_text(f'[users]\n"7" = "{CONTRACT}"\n')
    env = service_env | {
        "RECORDING_LINK_KEYS": LINK_KEY,
        "RECORDINGS_DIR": str(tmp_path / "recordings"),
        "CORS_ORIGINS": CORS_ORIGIN,
        "BITRIX24_APP_TOKEN": BITRIX24_TOKEN,
        "AMOCRM_WEBHOOK_SECRET": AMOCRM_SECRET,
        "AMOCRM_CLIENT_SECRET": AMOCRM_CLIENT_SECRET,
        "AMOCRM_BASE_URL": "https://acme.amocrm.ru",
        "WIDGET_CALL_LIMIT_PER_USER": "100000/hour",
        "CALLBACK_REQUEST_LIMIT_TOTAL": "100000/hour",
        "CALLBACK_REQUEST_LIMIT_PER_IP": "100000/hour",
        "INTEGRATION_CONFIG": str(users),
    }
    port = free_port()  # chosen first: PUBLIC_URL (the document's server, the links) is the server's own address
    env |= {"PUBLIC_URL": f"http://127.0.0.1:{port}"}
    recording_id = seed_ledger(env)
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, port, log) as url:
        body = json.dumps({"to": "+7 916 123-45-67", "from": CONTRACT}).encode()
        headers = sign_headers(SECRET, "fuzz-seed", body) | {"Content-Type": "application/json"}
        accepted = requests.post(url + "/webhooks/click-to-call", data=body, headers=headers, timeout=10)
        assert accepted.status_code == 202, accepted.text
        yield Live(url, recording_id, accepted.json()["id"], log)
    if errors := server_errors(log):
        print(f"the app logged:\n{errors}")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request) -> None:
    """schemathesis 4.32's fixture-loaded schemas rename the test node per operation through
    ``node._nodeid``, which pytest 9.2 no longer has (its ``nodeid`` is derived from ``_id``): give
    the node one to write to. The node's real id is unchanged."""
    request.node._nodeid = request.node.nodeid


@pytest.fixture
def live_schema(live: Live):
    return schemathesis.openapi.from_url(live.url + "/openapi.json", config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture
def tally(request) -> Iterator[Tally]:
    """Counts a pass's requests by status; printed after the pass and in the session summary."""
    result = Tally(request.node.name.removeprefix("test_fuzz_").replace("_", " "))
    yield result
    print(result.line())
    plugins = request.config.pluginmanager
    summary = plugins.get_plugin("vats-fuzz-summary") or Summary()
    if not plugins.is_registered(summary):
        plugins.register(summary, "vats-fuzz-summary")
    summary.lines.append(result.line())


# --- credentials -------------------------------------------------------------------------------


class StandardWebhooks(requests.auth.AuthBase):
    """Signs the exact bytes about to be sent (what schemathesis serialized)."""

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body or b""
        body = body.encode() if isinstance(body, str) else body
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return prepared  # not UTF-8: the server refuses it before any signature could match
        prepared.headers.update(sign_headers(SECRET, f"msg_{uuid.uuid4().hex}", body))
        return prepared


def link_signature(recording_id: str, expires: str) -> str:
    """The signature of a recording link (``integration.recordings.links``)."""
    digest = hmac.new(LINK_KEY.encode(), f"{recording_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def one_time_token(user_id: int = 7) -> str:
    """An amoCRM widget token (JWT, HS256, the integration's secret key)."""

    def part(data: dict | bytes) -> str:
        raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "https://acme.amocrm.ru", "aud": "https://acme.example", "jti": str(uuid.uuid4())}
    claims |= {"iat": now, "nbf": now, "exp": now + 600, "account_id": 1, "user_id": user_id}
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(AMOCRM_CLIENT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def with_credentials(case, live: Live) -> dict:
    """Valid credentials on ``case``, and for half the cases (by the generated path parameters)
    ids that exist; returns the transport's extra arguments."""
    path = case.operation.path
    extra: dict = {}
    if path in SIGNED_PATHS and case.method == "POST":
        extra["auth"] = StandardWebhooks()
    if path.startswith("/api/"):
        case.headers["Authorization"] = f"Bearer {API_TOKEN}"
    if path in CORS_PATHS:
        case.headers["Origin"] = CORS_ORIGIN
    if path == "/widget/amocrm/click-to-call" and case.method == "POST":
        case.headers["X-Auth-Token"] = one_time_token()
    if path == "/webhooks/bitrix24" and isinstance(case.body, dict):
        case.body["auth[application_token]"] = BITRIX24_TOKEN
    parameters = case.path_parameters or {}
    known = hashlib.sha256(repr(sorted(parameters.items())).encode()).digest()[0] % 2 == 0
    if "secret" in parameters:
        parameters["secret"] = AMOCRM_SECRET
    if known:
        for name, value in (("num", CONTRACT), ("request_id", live.callback_id), ("recording_id", live.recording_id)):
            if name in parameters:
                parameters[name] = value
    if "recording_id" in parameters:
        query = case.query if isinstance(case.query, dict) else {}
        expires = query.get("exp")
        query["sig"] = link_signature(str(parameters["recording_id"]), expires if isinstance(expires, str) else "")
        case.query = query
    return extra


def sendable_headers(case) -> None:
    """Header values go out as bytes: text beyond Latin-1 (a dictionary value) is sent as its
    UTF-8 bytes, as a raw client would, instead of failing in the HTTP client."""
    for name, value in list((case.headers or {}).items()):
        if isinstance(value, str):
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                case.headers[name] = value.encode("utf-8").decode("latin-1")


def refused_by_gunicorn(response: requests.Response) -> bool:
    """gunicorn's own HTML answer to a request it does not pass on (a request line over 4094
    bytes, an oversized header): the app never sees it, so the app's checks do not apply."""
    kind = response.headers.get("Content-Type", "")
    return response.status_code in (400, 414, 431) and kind.startswith("text/html")


# --- checks beyond the document ----------------------------------------------------------------


@schemathesis.check
def errors_are_problem_json(ctx, response, case) -> None:
    """Every 4xx and 5xx is ``application/problem+json`` with its own status in the body."""
    if response.status_code < 400:
        return
    kind = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    assert kind == "application/problem+json", f"{response.status_code} answered as {kind or 'no content type'}"
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"{response.status_code} with a body that is not JSON: {response.content[:200]!r}"
        ) from None
    assert isinstance(body, dict) and body.get("status") == response.status_code, body


@schemathesis.check
def cors_headers_on_every_answer(ctx, response, case) -> None:
    """An allowed Origin gets Access-Control-Allow-Origin on every answer of a browser endpoint."""
    origin = response.request.headers.get("Origin")
    if case.operation.path in CORS_PATHS and origin == CORS_ORIGIN and case.method in ("POST", "OPTIONS"):
        allowed = (response.headers.get("access-control-allow-origin") or [None])[0]
        assert allowed == origin, f"{response.status_code} without Access-Control-Allow-Origin for {origin}"


RANGE = re.compile(r"^bytes=\s*(\d+-\d*|-\d+)(\s*,\s*(\d+-\d*|-\d+))*\s*$")


@schemathesis.check
def malformed_range_is_ignored(ctx, response, case) -> None:
    """416 is for a satisfiable-looking range beyond the file; a malformed one is ignored (RFC 9110 §14.2)."""
    if response.status_code == 416:
        value = response.request.headers.get("Range", "")
        assert RANGE.match(value), f"416 for a malformed Range {value!r}: it must be ignored (200)"


ACCEPTING = ("/webhooks/click-to-call", "/callback-requests", "/webhooks/bitrix24", "/widget/amocrm/click-to-call")
_VALIDATORS: dict[int, Draft202012Validator] = {}


def callback_view_validator(document: dict) -> Draft202012Validator:
    """The document's schema of ``GET /api/callbacks/{request_id}``'s 200 answer."""
    validator = _VALIDATORS.get(id(document))
    if validator is None:
        registry = Registry().with_resource("urn:doc", Resource.from_contents(document, DRAFT202012))
        pointer = "paths/~1api~1callbacks~1{request_id}/get/responses/200/content/application~1json/schema"
        validator = _VALIDATORS[id(document)] = Draft202012Validator({"$ref": f"urn:doc#/{pointer}"}, registry=registry)
    return validator


@schemathesis.check
def accepted_requests_read_back_as_documented(ctx, response, case) -> None:
    """A click-to-call the app accepted reads back from ``/api/callbacks/{id}`` as documented
    (numbers in E.164, the contract number in 10 digits)."""
    if case.operation.path not in ACCEPTING or case.method != "POST" or response.status_code not in (200, 202):
        return
    if isinstance(case.body, dict) and case.body.get("website"):
        return  # the honeypot's answer is made up on purpose
    request_id = json.loads(response.content).get("id")
    if request_id is None:
        return  # an ignored Bitrix24 event
    origin = re.match(r"^https?://[^/]+", response.request.url).group(0)
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    stored = requests.get(f"{origin}/api/callbacks/{request_id}", headers=headers, timeout=10)
    assert stored.status_code == 200, (
        f"accepted {request_id}, then GET /api/callbacks/{request_id} is {stored.status_code}"
    )
    errors = [
        error.message for error in callback_view_validator(case.operation.schema.raw_schema).iter_errors(stored.json())
    ]
    assert not errors, f"accepted {request_id} reads back as {stored.text}: {errors}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    errors_are_problem_json,
    cors_headers_on_every_answer,
    malformed_range_is_ignored,
    accepted_requests_read_back_as_documented,
]

# --- the passes --------------------------------------------------------------------------------

schema = schemathesis.pytest.from_fixture("live_schema")
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.mark.slow
@pytest.mark.timeout(300)
@schema.parametrize()
@FUZZ
def test_fuzz_with_credentials(case, live, tally):
    sendable_headers(case)
    response = case.call(**with_credentials(case, live))
    tally.statuses[response.status_code] += 1
    if not refused_by_gunicorn(response):
        case.validate_response(response, checks=CHECKS)


@pytest.mark.slow
@pytest.mark.timeout(300)
@schema.include(path_regex=r"^/(webhooks|api|recordings|widget)/|^/callback-requests$").parametrize()
@FUZZ
def test_fuzz_without_credentials(case, live, tally):
    sendable_headers(case)
    response = case.call()
    tally.statuses[response.status_code] += 1
    if not refused_by_gunicorn(response):
        case.validate_response(response, checks=CHECKS)
