"""HTTP client for every method of the operator's Integration API.

- ``Transport`` sends one request with timeouts and turns ``requests`` failures into
  ``OperatorUnavailable`` (noting whether the request may have reached the operator).
- ``raise_for_response`` is the one place where an HTTP answer becomes an exception.
- ``AuthApi`` makes and refreshes token pairs; ``OperatorClient`` calls the methods with a
  token from ``TokenManager``, retrying read-only calls with jittered backoff (``integration.retrying``)
  and never repeating ``callback/create`` or ``Vats/settings/set`` once they may have reached the operator.
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import requests
from marshmallow import Schema, ValidationError
from tenacity import Retrying, wait_random_exponential
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from integration.errors import (
    IntegrationDisabled,
    InvalidPhoneNumber,
    InvalidResponse,
    OperatorError,
    OperatorUnavailable,
    OutcomeUnknown,
    RateLimited,
    RequestRejected,
    TokenInvalid,
)
from integration.logs import fields
from integration.models import CallbackPlaced, CallFilter, CallRow, Direction, PbxSettings, RecordingFile, TokenPair
from integration.operator.auth import ACCESS_LIFETIME, REFRESH_LIFETIME, TokenManager, parse_expiry
from integration.operator.periods import split_period
from integration.operator.recording import RecordingDecoder, RecordingFormatError
from integration.operator.schemas import (
    CallbackResultSchema,
    CallListResultSchema,
    CallRowSchema,
    EnvelopeSchema,
    PbxSettingsResultSchema,
    RecordFileMetaSchema,
    TokenResponseSchema,
    format_operator_datetime,
)
from integration.retrying import retry_after_or, retrying
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
STREAM_CHUNK = 256 * 1024
MAX_ERROR_BODY = 64 * 1024

# Method names as the operator spells them (also the metric and error labels).
CREATE = "auth/integrationapi/create"
REFRESH = "auth/integrationapi/refresh"
CALLBACK_CREATE = "callback/create"
GET_CALL_LIST = "request/getcalllist"
GET_RECORD_FILE = "request/getcallrecordfile"
GET_RESULT_BY_HASH = "request/getrequestresultbyhash"
SETTINGS_GET = "Vats/settings/get"
SETTINGS_SET = "Vats/settings/set"


# --- one request --------------------------------------------------------------------------


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the failure certainly happened before the request left this machine."""
    if isinstance(
        exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.InvalidURL)
    ):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return isinstance(reason, ConnectTimeoutError)  # includes NewConnectionError (refused, DNS)
    return False


def cookieless_session() -> requests.Session:
    """A session that keeps no cookies, so that several contracts can share its connection pool
    without anything of one riding along with another's requests."""
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class Transport:
    """Sends one request to the operator with connect/read timeouts."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = (connect_timeout, read_timeout)

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    def send(
        self,
        method: str,
        http_method: str,
        bearer: str,
        *,
        params: dict | None = None,
        json: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
        try:
            return self.session.request(
                http_method,
                self.base_url + API_PREFIX + method,
                params=params,
                json=json,
                headers=headers,
                timeout=self.timeout,
                stream=stream,
            )
        except requests.RequestException as exc:
            # Only the exception's class goes into the text: requests' messages can carry URLs.
            raise OperatorUnavailable(
                f"no answer from the operator ({type(exc).__name__})", method=method, request_sent=not _never_sent(exc)
            ) from None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max((parsedate_to_datetime(value) - utc_now()).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


def parse_json(body: bytes) -> Any:
    """The body as JSON, or None when it is empty, HTML or otherwise not JSON."""
    try:
        return json.loads(body) if body and body.strip() else None
    except ValueError:
        return None


def raise_for_response(method: str, response: requests.Response, body: Any = ...) -> dict:
    """Map an HTTP answer to the exception tree, or return its envelope ``result`` object.

    This is the only function that looks at status codes. ``body`` is the parsed JSON when the
    caller already read it (streamed answers).
    """
    status = response.status_code
    if body is ...:
        body = parse_json(response.content)
    error_code, error_message, result = None, None, None
    if isinstance(body, dict):
        try:
            envelope = EnvelopeSchema().load(body)
        except ValidationError:
            envelope = {"error": {}, "result": None}
        error = envelope["error"] or {}
        error_code, error_message = error.get("error_code"), error.get("error_message")
        result = envelope["result"]
    fields: dict[str, Any] = {
        "method": method,
        "status": status,
        "error_code": error_code,
        "error_message": error_message,
    }

    if status == 401:
        raise TokenInvalid(**fields)
    if status == 403:
        raise IntegrationDisabled(**fields)
    if status == 429:
        raise RateLimited(retry_after=_retry_after(response), **fields)
    if 400 <= status < 500:
        # A recording the operator has not made yet is a 404 until it has: worth asking again later.
        raise RequestRejected(retryable=status == 404 and method == GET_RECORD_FILE, **fields)
    if status >= 500 or not 200 <= status < 300:
        raise OperatorUnavailable(f"the operator failed (HTTP {status})", **fields)
    if body is None:
        raise OperatorUnavailable("the operator's answer was empty or not JSON", **fields)
    if error_code not in (None, 0):
        raise RequestRejected(**fields)
    if not isinstance(body, dict):
        raise InvalidResponse("the operator's answer is not a JSON object", **fields)
    return result if isinstance(result, dict) else body


def rowset_of(result: Any) -> list:
    """The rows of ``getcalllist``'s result object, as the operator sent them (checked to be a list)."""
    return _load(CallListResultSchema(), result, GET_CALL_LIST)["rowset"] or []


def load_rows(rowset: list, tz: ZoneInfo) -> Iterator[CallRow]:
    """The rows as ``CallRow`` (times in UTC), each loaded as it is read. One malformed row must not
    hide the others, so it is logged (its fields' problems, never its numbers) and skipped."""
    schema = CallRowSchema(tz=tz)
    for index, raw in enumerate(rowset):
        try:
            yield schema.load_row(raw)
        except ValidationError as exc:
            log.warning("call-history row skipped", extra=fields(row=index, problems=_fields(exc.messages)))


def _load(schema: Schema, data: Any, method: str) -> Any:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidResponse(
            f"the operator's answer has an unexpected shape: {_fields(exc.messages)}", method=method
        ) from None


def _fields(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_fields(value)}" for key, value in messages.items())
    if isinstance(messages, list):
        return ", ".join(_fields(m) for m in messages)
    return str(messages)


# --- tokens -------------------------------------------------------------------------------


class AuthApi:
    """``auth/integrationapi/create`` and ``refresh``: one attempt each, no retries (the lock
    holder decides)."""

    def __init__(self, transport: Transport, tz: ZoneInfo, clock: Callable[[], datetime] = utc_now):
        self.transport = transport
        self.tz = tz
        self.clock = clock

    def create(self, authorization_token: str) -> TokenPair:
        return self._pair(CREATE, authorization_token)

    def refresh(self, refresh_token: str) -> TokenPair:
        return self._pair(REFRESH, refresh_token)

    def _pair(self, method: str, bearer: str) -> TokenPair:
        response = self.transport.send(method, "GET", bearer)
        body = raise_for_response(method, response)
        data = _load(TokenResponseSchema(), body, method)
        now = self.clock()
        return TokenPair(
            access_token=data["access_token"],
            access_expires_at=parse_expiry(data["access_expires"], data["access_token"], ACCESS_LIFETIME, now, self.tz),
            refresh_token=data["refresh_token"],
            refresh_expires_at=parse_expiry(
                data["refresh_expires"], data["refresh_token"], REFRESH_LIFETIME, now, self.tz
            ),
        )


# --- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How the client repeats a failed call: up to ``max_retries`` times, after a random wait
    of up to 0.5, 1, 2 … s (full jitter, capped at ``max_delay``) or the operator's
    ``Retry-After`` (a longer one is not waited for: ``RateLimited`` is raised)."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0

    def retrying(self, method: str, sleep: Callable[[float], None]) -> Retrying:
        def repeatable(exc: BaseException) -> bool:
            """A failure of this request itself (not of the token renewal it needed: ``AuthApi``'s
            calls are tried once) that the same request may not meet again."""
            if not isinstance(exc, OperatorError) or exc.method != method:
                return False
            if isinstance(exc, OperatorUnavailable):
                return not exc.partial
            return isinstance(exc, RateLimited) and (exc.retry_after or 0) <= self.max_delay

        return retrying(
            tries=self.max_retries + 1,
            when=repeatable,
            wait=retry_after_or(wait_random_exponential(multiplier=self.base_delay, max=self.max_delay)),
            sleep=sleep,
            log=log,
            what="operator call",
            method=method,
        )


# --- the client ---------------------------------------------------------------------------


class OperatorClient:
    """Every operator method, returning domain records."""

    def __init__(
        self,
        transport: Transport,
        tokens: TokenManager,
        *,
        tz: ZoneInfo,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.transport = transport
        self.tokens = tokens
        self.tz = tz
        self.retry = retry
        self.sleep = sleep
        self.clock = clock
        # Called after every attempt with (method, outcome, seconds): metrics hook.
        self.on_call: Callable[[str, str, float], None] = lambda method, outcome, seconds: None

    # -- methods --

    def create_callback(self, phone_to: str, phone_from: str) -> CallbackPlaced:
        """Ring ``phone_from`` (10 digits), then connect it to ``phone_to`` (``8…``/``810…``).

        Never repeated once it may have reached the operator: such failures raise ``OutcomeUnknown``.
        """
        params = {"PhoneTo": _ascii_digits(phone_to, "PhoneTo"), "PhoneFrom": _ascii_digits(phone_from, "PhoneFrom")}
        result = self._call(CALLBACK_CREATE, "GET", params=params, idempotent=False)
        return _load(CallbackResultSchema(), result, CALLBACK_CREATE)

    def get_call_list(
        self,
        nums: Sequence[str],
        start: datetime,
        end: datetime,
        filters: CallFilter = CallFilter(),
        *,
        clamp_to_depth: bool = False,
    ) -> list[CallRow]:
        """Calls of ``nums`` in ``[start, end)``, one request per month of the period."""
        rows: list[CallRow] = []
        for lower, upper in split_period(start, end, self.clock(), self.tz, clamp=clamp_to_depth):
            rows.extend(self.get_call_list_slice(nums, lower, upper, filters))
        return rows

    def get_call_list_slice(
        self, nums: Sequence[str], start: datetime, end: datetime, filters: CallFilter = CallFilter()
    ) -> list[CallRow]:
        """One ``getcalllist`` request for ``[start, end)`` (at most one month; not split)."""
        return list(self.iter_call_list_slice(nums, start, end, filters))

    def iter_call_list_slice(
        self, nums: Sequence[str], start: datetime, end: datetime, filters: CallFilter = CallFilter()
    ) -> Iterator[CallRow]:
        """``get_call_list_slice`` whose rows are loaded as they are read (a sync normalises and
        stores them in chunks meanwhile); the request is made and its answer checked at once."""
        body = {
            "nums": [_ascii_digits(num, "nums") for num in nums],
            "periodStart": format_operator_datetime(start, self.tz),
            # Second resolution, inclusive: the last whole second before ``end``.
            "periodEnd": format_operator_datetime(end - timedelta(microseconds=1), self.tz),
            "direction": {Direction.OUTBOUND: 1, Direction.INBOUND: 2}.get(filters.direction, 0)
            if filters.direction
            else 0,
            "durationFrom": filters.duration_from,
            "durationTo": filters.duration_to,
            "isCallRecord": 1 if filters.only_recorded else 0,
            "isRead": filters.is_read,
        }
        return load_rows(rowset_of(self._call(GET_CALL_LIST, "POST", json=body)), self.tz)

    def download_recording(self, record_file_id: str, sink: BinaryIO) -> RecordingFile:
        """Stream a recording's mp3 into ``sink`` (decoded in chunks, checked to be audio).

        Retrying after a partial download is the caller's choice: it owns the sink.
        """

        def handle(response: requests.Response) -> RecordingFile:
            if response.status_code != 200 or "json" not in response.headers.get("Content-Type", "json"):
                raise_for_response(
                    GET_RECORD_FILE, response, parse_json(response.raw.read(MAX_ERROR_BODY, decode_content=True))
                )
            decoder = RecordingDecoder(sink)
            try:
                document = decoder.feed_all(response.iter_content(STREAM_CHUNK))
            except RecordingFormatError as exc:
                raise InvalidResponse(str(exc), method=GET_RECORD_FILE) from None
            except requests.RequestException:
                raise OperatorUnavailable(
                    "the recording download was cut off", method=GET_RECORD_FILE, partial=True
                ) from None
            finally:
                response.close()
            result = raise_for_response(GET_RECORD_FILE, response, body=document)
            if not decoder.found_content:
                raise InvalidResponse("the answer carries no recording", method=GET_RECORD_FILE)
            if decoder.size < 4:
                raise InvalidResponse("the recording is empty or too short to be audio", method=GET_RECORD_FILE)
            meta = _load(RecordFileMetaSchema(), result, GET_RECORD_FILE)
            return RecordingFile(
                record_file_id=record_file_id,
                file_name=meta["file_name"],
                size=decoder.size,
                sha256=decoder.sha256.hexdigest(),
                request_hash=meta["request_hash"],
            )

        return self._call(GET_RECORD_FILE, "GET", params={"recordFileId": record_file_id}, stream=True, handle=handle)

    def get_request_result(self, request_hash: str) -> dict:
        """The stored result of an earlier request, raw (its shape is the original method's)."""
        return self._call(GET_RESULT_BY_HASH, "GET", params={"requestHash": request_hash})

    def get_pbx_settings(self, nums: Sequence[str]) -> list[PbxSettings]:
        result = self._call(SETTINGS_GET, "POST", json={"nums": [_ascii_digits(num, "nums") for num in nums]})
        return _load(PbxSettingsResultSchema(), result, SETTINGS_GET)["vats_settings"]

    def set_pbx_settings(self, vats_settings: list[dict]) -> dict:
        """Write settings documents (as read by ``get_pbx_settings``, edited). Never repeated."""
        return self._call(SETTINGS_SET, "POST", json={"vatsSettings": vats_settings}, idempotent=False)

    # -- machinery --

    def _call(
        self,
        method: str,
        http_method: str,
        *,
        params: dict | None = None,
        json: Any = None,
        idempotent: bool = True,
        stream: bool = False,
        handle: Callable[[requests.Response], Any] | None = None,
    ) -> Any:
        """One request, repeated as ``RetryPolicy`` allows. A 401 renews the token and repeats the
        request at once (once per call); a failure that may have reached the operator becomes
        ``OutcomeUnknown`` unless the request is ``idempotent``."""
        handle = handle or (lambda response: raise_for_response(method, response))
        reauthorized = False

        def attempt() -> Any:
            nonlocal reauthorized
            while True:
                token = self.tokens.access_token()
                started = time.monotonic()
                try:
                    result = handle(
                        self.transport.send(method, http_method, token, params=params, json=json, stream=stream)
                    )
                except OperatorError as exc:
                    self.on_call(method, type(exc).__name__, time.monotonic() - started)
                    if isinstance(exc, TokenInvalid) and not reauthorized:
                        reauthorized = True
                        self.tokens.handle_unauthorized(token)
                        continue
                    if isinstance(exc, OperatorUnavailable) and exc.request_sent and not idempotent:
                        raise OutcomeUnknown(method=exc.method, status=exc.status) from exc
                    raise
                self.on_call(method, "ok", time.monotonic() - started)
                return result

        return self.retry.retrying(method, self.sleep)(attempt)


def _ascii_digits(number: str, name: str) -> str:
    """``number`` when it is ASCII digits only: nothing else is ever sent as a number."""
    if not (isinstance(number, str) and number.isascii() and number.isdigit()):
        raise InvalidPhoneNumber(number, f"{name} must be ASCII digits only")
    return number
