"""The project's exception tree.

Every error the project raises on purpose is an ``IntegrationError``::

    IntegrationError
    ├── ConfigError                  settings missing or invalid (one line per problem)
    ├── InvalidPhoneNumber           a number that cannot be used, with the reason
    ├── PeriodError                  a call-history period the operator cannot serve
    └── OperatorError                anything the operator API answered or failed to answer
        ├── OperatorAuthError        the operator refused our credentials
        │   ├── TokenInvalid         an access/refresh token expired or was invalidated (401)
        │   └── AuthorizationRevoked the authorization token no longer works: a person must act
        ├── IntegrationDisabled      the Integration API is switched off in the web cabinet (403)
        ├── RequestRejected          the operator refused the request (4xx, errorCode != 0)
        ├── RateLimited              throttled (429); ``retry_after`` seconds when the operator says
        ├── OperatorUnavailable      timeouts, connection errors, 5xx, HTML or empty bodies
        ├── OutcomeUnknown           a non-idempotent request may have reached the operator
        └── InvalidResponse          a well-formed answer of the wrong shape (or not audio)

Operator errors carry the API method, the HTTP status and the operator's ``errorCode`` /
``errorMessage``. Their text never contains a token: messages are built from those fields only.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Base of every error the project raises on purpose."""


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

    def __init__(
        self,
        message: str | None = None,
        *,
        method: str = "",
        status: int | None = None,
        error_code: int | None = None,
        error_message: str | None = None,
    ):
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


class RateLimited(OperatorError):
    default_message = "the operator is throttling requests"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kw):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class OperatorUnavailable(OperatorError):
    """``request_sent``: the request may have reached the operator; ``retryable``: repeating
    the same call is safe (False once a download started writing to its sink)."""

    default_message = "the operator is unavailable"

    def __init__(self, message: str | None = None, *, request_sent: bool = True, retryable: bool = True, **kw):
        self.request_sent = request_sent
        self.retryable = retryable
        super().__init__(message, **kw)


class OutcomeUnknown(OperatorError):
    default_message = "the request may have reached the operator but no answer came back; it was not repeated"


class InvalidResponse(OperatorError):
    default_message = "the operator's answer has an unexpected shape"
