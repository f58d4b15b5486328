"""The exception tree: every project error is an ``IntegrationError`` and says whether it is
``retryable`` (the same work may succeed if tried again later)."""

from __future__ import annotations

from io import BytesIO

import pytest
import responses

from integration.crm.amocrm.widget_tokens import TokenRefused
from integration.crm.base import CrmError
from integration.crm.bitrix24.adapter import Bitrix24Error
from integration.errors import (
    AuthorizationRevoked,
    ConfigError,
    IntegrationDisabled,
    IntegrationError,
    InvalidPhoneNumber,
    InvalidResponse,
    OperatorAuthError,
    OperatorError,
    OperatorUnavailable,
    OutcomeUnknown,
    PeriodError,
    RateLimited,
    RequestRejected,
    TokenInvalid,
)
from integration.operator.recording import RecordingFormatError
from integration.signatures import InvalidSignature
from integration.vats.files import FileError
from integration.vats.plan import NotVerified, Plan, PlanRefused, SettingsBusy
from tests.operator.helpers import API, envelope, make_rig

RETRYABLE = [
    OperatorError(),
    OperatorAuthError(),
    TokenInvalid(),
    AuthorizationRevoked(),
    IntegrationDisabled(),
    RateLimited(retry_after=5),
    OperatorUnavailable(),
    OperatorUnavailable("the recording download was cut off", partial=True),  # the caller tries later
    OutcomeUnknown(),
    SettingsBusy("another change is still running"),
    CrmError("CRM answered 503"),
    Bitrix24Error("QUERY_LIMIT_EXCEEDED", code="QUERY_LIMIT_EXCEEDED", description="", retryable=True),
    PlanRefused(Plan(num="4990000000", base="a", live_base="b", desired={})),  # stale: read again
]
PERMANENT = [
    IntegrationError("the operator returned no settings"),
    ConfigError(["OPERATOR_NUMBERS is required"]),
    InvalidPhoneNumber("x", "not a number"),
    PeriodError("reversed"),
    RequestRejected(status=400),
    InvalidResponse(),
    CrmError("the webhook backend cannot create contacts", retryable=False),
    Bitrix24Error("WRONG_AUTH_TYPE", code="WRONG_AUTH_TYPE", description="", retryable=False),
    PlanRefused(Plan(num="4990000000", base="a", live_base="a", desired={}, problems=["overlap"])),
    NotVerified("4990000000", []),
    TokenRefused("expired"),
    InvalidSignature("no valid signature"),
    RecordingFormatError("not audio"),
    FileError("not valid YAML"),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_retryable_errors(error):
    assert isinstance(error, IntegrationError) and error.retryable is True


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors(error):
    assert isinstance(error, IntegrationError) and error.retryable is False


def test_an_instance_may_decide_otherwise():
    assert RequestRejected(status=404, retryable=True).retryable
    assert not OperatorUnavailable(retryable=False).retryable
    assert not RequestRejected.retryable and OperatorError.retryable  # the classes keep their default


@responses.activate
def test_a_recording_not_made_yet_is_retryable_a_missing_setting_is_not():
    responses.get(API + "request/getcallrecordfile", status=404, json=envelope(code=404, message="not found"))
    responses.post(API + "Vats/settings/get", status=404, json=envelope(code=404, message="not found"))
    rig = make_rig()
    with pytest.raises(RequestRejected) as recording:
        rig.client.download_recording("x", BytesIO())
    with pytest.raises(RequestRejected) as settings:
        rig.client.get_pbx_settings(["4990000000"])
    assert recording.value.retryable and not settings.value.retryable
    assert len(responses.calls) == 2  # neither is repeated in-process
