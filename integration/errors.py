"""The project's exception tree.

Every error the project raises on purpose is an ``IntegrationError``. ``retryable`` says whether
the same work may succeed if it is tried again later (a work item is rescheduled rather than
failed; a person may act within the retry window): a class attribute, overridden per instance
where the case decides (marked *). In-process retries of one HTTP call are narrower: see
``integration.retrying``::

    IntegrationError                           retryable
    ├── ConfigError                            no    settings missing or invalid (one line per problem)
    ├── InvalidPhoneNumber                     no    a number that cannot be used, with the reason
    ├── PeriodError                            no    a call-history period the operator cannot serve
    ├── InvalidSignature                       no    an inbound webhook's signature (signatures.py)
    ├── RecordingFormatError                   no    a recording answer that is not audio (operator/recording.py)
    ├── FileError                              no    an edited PBX settings file that cannot be read (vats/files.py)
    ├── TokenRefused                           no    an amoCRM widget's one-time token (crm/amocrm/widget_tokens.py)
    ├── PlanRefused                            *     PBX settings not applied: ``plan.stale`` (vats/plan.py)
    ├── SettingsBusy                           yes   another apply holds the number's lock (vats/plan.py)
    ├── NotVerified                            no    the operator reads back other settings (vats/plan.py)
    ├── CrmError                               *     the CRM did not take the request (crm/base.py)
    │   ├── CrmRateLimited                     yes   the CRM asked us to slow down (repeated in place first)
    │   └── Bitrix24Error                      *     with Bitrix24's ``error`` code (crm/bitrix24/adapter.py)
    └── OperatorError                          yes   anything the operator API answered or failed to answer
        ├── OperatorAuthError                  yes   the operator refused our credentials
        │   ├── TokenInvalid                   yes   an access/refresh token expired or was invalidated (401)
        │   └── AuthorizationRevoked           yes   the authorization token no longer works: a person must act
        ├── IntegrationDisabled                yes   the Integration API is switched off in the web cabinet (403)
        ├── RequestRejected                    no*   the operator refused the request (4xx, errorCode != 0);
        │                                            yes for a recording it has not made yet (404)
        ├── RateLimited                        yes   throttled (429); ``retry_after`` seconds when the operator says
        ├── OperatorUnavailable                yes   timeouts, connection errors, 5xx, HTML or empty bodies
        ├── OutcomeUnknown                     yes   a non-idempotent request may have reached the operator; a
        │                                            later try re-reads first (a click-to-call is never repeated)
        └── InvalidResponse                    no    a well-formed answer of the wrong shape (or not audio)

Operator errors carry the API method, the HTTP status and the operator's ``errorCode`` /
``errorMessage``. Their text never contains a token: messages are built from those fields only.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Base of every error the project raises on purpose; ``retryable``: the same work may
    succeed if it is tried again later."""

    retryable: bool = False


class ConfigError(IntegrationError):
    """Settings are missing or invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class InvalidPhoneNumber(IntegrationError, ValueError):
    """A phone number that cannot be parsed or used; ``reason`` says why."""

    def __init__(self, raw: object, reason: str):
        self.raw = raw
        self.reason = reason
        super().__init__(f"invalid phone number {raw!r}: {reason}")


class PeriodError(IntegrationError, ValueError):
    """A call-history period that is empty, reversed or deeper than the operator keeps."""


class OperatorError(IntegrationError):
    """The operator API failed; carries the method, HTTP status and operator error fields."""

    default_message = "operator request failed"
    retryable = True

    def __init__(
        self,
        message: str | None = None,
        *,
        method: str = "",
        status: int | None = None,
        error_code: int | None = None,
        error_message: str | None = None,
        retryable: bool | None = None,
    ):
        if retryable is not None:
            self.retryable = retryable
        self.method = method
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.message = message or self.default_message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.error_message and self.error_message != self.message:
            parts.append(f"— the operator says: {self.error_message}")
        details = []
        if self.method:
            details.append(f"method {self.method}")
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.error_code not in (None, 0):
            details.append(f"errorCode {self.error_code}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class OperatorAuthError(OperatorError):
    default_message = "the operator refused our credentials"


class TokenInvalid(OperatorAuthError):
    default_message = "the token expired or was invalidated"


class AuthorizationRevoked(OperatorAuthError):
    default_message = (
        "the authorization token no longer works: make a new one in the operator's web cabinet "
        "(Virtual PBX → Integration APIs → get authorization token), check that the "
        "Integration API switch is on, and set OPERATOR_AUTHORIZATION_TOKEN"
    )


class IntegrationDisabled(OperatorError):
    default_message = (
        "the Integration API is switched off for this contract: switch it on in the operator's "
        "web cabinet (Virtual PBX → Integration APIs)"
    )


class RequestRejected(OperatorError):
    default_message = "the operator rejected the request"
    retryable = False


class RateLimited(OperatorError):
    default_message = "the operator is throttling requests"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kw):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class OperatorUnavailable(OperatorError):
    """``request_sent``: the request may have reached the operator; ``partial``: a download had
    started writing into the caller's sink, so the client does not repeat it itself (the caller,
    who owns the sink, may try again later)."""

    default_message = "the operator is unavailable"

    def __init__(self, message: str | None = None, *, request_sent: bool = True, partial: bool = False, **kw):
        self.request_sent = request_sent
        self.partial = partial
        super().__init__(message, **kw)


class OutcomeUnknown(OperatorError):
    default_message = "the request may have reached the operator but no answer came back; it was not repeated"


class InvalidResponse(OperatorError):
    default_message = "the operator's answer has an unexpected shape"
    retryable = False
