"""One marshmallow schema per operator payload.

Every operator field name the project assumes lives in this module (``data_key``), so adjusting
to the real service is a one-line change here. Unknown fields are tolerated on purpose
(``unknown = INCLUDE`` where we keep them, ``EXCLUDE`` where we do not need them), and optional
fields never fail when missing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load, pre_load

from integration.models import CallbackPlaced, CallRow, Direction, PbxSettings

OPERATOR_DATETIME = "%Y-%m-%d %H:%M:%S"
_HMS = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")


_NO_OFFSET = timedelta(0)
MOSCOW = ZoneInfo("Europe/Moscow")


def parse_operator_datetime(value: str, tz: ZoneInfo) -> datetime:
    """``yyyy-mm-dd hh:mm:ss`` in the operator's zone, or ISO 8601 (with or without offset) → UTC."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.strptime(text, OPERATOR_DATETIME)
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    # Local wall time minus its offset: what replace(tzinfo=tz).astimezone(UTC) gives (fold 0),
    # at a third of the cost: every row of the call history comes through here.
    moment -= tz.utcoffset(moment) or _NO_OFFSET
    return datetime.combine(moment, moment.time(), UTC)


def format_operator_datetime(moment: datetime, tz: ZoneInfo) -> str:
    """An aware datetime as the operator writes it: local time in its zone."""
    return moment.astimezone(tz).strftime(OPERATOR_DATETIME)


class Text(fields.Field):
    """A string that the operator may also send as a number; empty means missing."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("must be text or a number")
        text = str(value).strip()
        return text or None


class LenientInt(fields.Field):
    """An integer sent as a number, a digit string, or ``hh:mm:ss`` (durations)."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise ValidationError("must be a number")
        text = str(value).strip()
        if match := _HMS.match(text):
            hours, minutes, seconds = map(int, match.groups())
            return hours * 3600 + minutes * 60 + seconds
        try:
            return int(value) if isinstance(value, int) else int(float(text))
        except (ValueError, OverflowError):  # "abc", "nan", "inf"
            raise ValidationError("must be a number") from None


class OperatorDateTime(fields.Field):
    """An operator date-time in its local zone; loads as an aware UTC datetime."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("must be a date-time string")
        try:
            return parse_operator_datetime(value, getattr(self.root, "tz", MOSCOW))
        except ValueError:
            raise ValidationError("must be 'yyyy-mm-dd hh:mm:ss' or ISO 8601") from None
        except OverflowError:  # 0001-01-01 00:00 in a zone east of UTC
            raise ValidationError("out of the range of dates") from None


class ZonedSchema(Schema):
    """A schema that knows the operator's time zone."""

    def __init__(self, *args, tz: ZoneInfo = MOSCOW, **kwargs):
        self.tz = tz
        super().__init__(*args, **kwargs)


# --- envelope ---------------------------------------------------------------------------------


class ErrorSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    error_code = LenientInt(data_key="errorCode", load_default=0)
    error_message = Text(data_key="errorMessage", load_default=None)


class EnvelopeSchema(Schema):
    """``{"error": {...}, "result": {...}}``; ``result`` is kept raw for the method's schema."""

    class Meta:
        unknown = EXCLUDE

    error = fields.Nested(ErrorSchema, load_default=dict, allow_none=True)
    result = fields.Raw(load_default=None, allow_none=True)

    @pre_load
    def require_object(self, data: Any, **kwargs) -> Any:
        if not isinstance(data, dict):
            raise ValidationError("the answer is not a JSON object")
        return data


# --- tokens -----------------------------------------------------------------------------------


class TokenResponseSchema(Schema):
    """``auth/integrationapi/create`` and ``refresh``. Expiry strings are parsed by ``auth``."""

    class Meta:
        unknown = EXCLUDE

    access_token = fields.Str(data_key="accessToken", required=True)
    access_expires = Text(data_key="accessTokenExpiredIn", load_default=None)
    refresh_token = fields.Str(data_key="refreshToken", required=True)
    refresh_expires = Text(data_key="refreshTokenExpiredIn", load_default=None)


# --- callback/create --------------------------------------------------------------------------


class CallbackResultSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    request_hash = Text(data_key="requestHash", load_default=None)

    @post_load
    def make(self, data: dict, **kwargs) -> CallbackPlaced:
        return CallbackPlaced(request_hash=data["request_hash"])


# --- request/getcalllist ----------------------------------------------------------------------

DIRECTIONS = {1: Direction.OUTBOUND, 2: Direction.INBOUND}
DIRECTION_WORDS = {
    "out": Direction.OUTBOUND,
    "outgoing": Direction.OUTBOUND,
    "in": Direction.INBOUND,
    "incoming": Direction.INBOUND,
}


class CallRowSchema(ZonedSchema):
    class Meta:
        unknown = INCLUDE

    call_date = OperatorDateTime(data_key="callDate", required=True)
    service = Text(data_key="service", load_default=None)
    ext_num = Text(data_key="extNum", load_default=None)
    num = Text(data_key="num", load_default=None)  # assumed
    direction = fields.Raw(data_key="direction", load_default=None)  # assumed: 1 out, 2 in
    duration = LenientInt(data_key="duration", load_default=0, allow_none=True)  # assumed: seconds; null → 0
    record_file_id = Text(data_key="recordFileId", load_default=None)  # assumed
    is_read = LenientInt(data_key="isRead", load_default=None)  # assumed

    @post_load
    def make(self, data: dict, **kwargs) -> CallRow:
        known = {"call_date", "service", "ext_num", "num", "direction", "duration", "record_file_id", "is_read"}
        return CallRow(
            started_at=data["call_date"],
            line=data["num"],
            direction=_direction(data["direction"]),
            ext_num=data["ext_num"] or "",
            duration=max(data["duration"] or 0, 0),
            service=data["service"],
            record_file_id=data["record_file_id"],
            is_read=data["is_read"],
            extra={k: v for k, v in data.items() if k not in known},
        )

    def load_row(self, raw: Any) -> CallRow:
        """``load`` for one row, without marshmallow's per-field machinery when the row has the
        usual shape (known keys, plain values): the same field functions, the same ``CallRow``
        (a property test compares the two). Anything unusual goes through ``load``."""
        if type(raw) is not dict or not raw.keys() <= _ROW_KEYS:
            return self.load(raw)
        get = raw.get
        date, duration, is_read = get("callDate"), get("duration", 0), get("isRead")
        try:
            if type(date) is not str or not (duration is None or type(duration) is int):
                raise _Unusual
            if not (is_read is None or type(is_read) is int):
                raise _Unusual
            service, ext_num = _plain_text(get("service")), _plain_text(get("extNum"))
            num, record_file_id = _plain_text(get("num")), _plain_text(get("recordFileId"))
            started_at = parse_operator_datetime(date, self.tz)
        except (_Unusual, ValueError, OverflowError):
            return self.load(raw)  # the general path: the field's ValidationError if there is one
        return CallRow(  # positional, in the fields' order: keyword arguments cost twice as much
            started_at,
            num,  # line
            _direction(get("direction")),
            ext_num or "",
            max(duration or 0, 0),
            service,
            record_file_id,
            is_read,
            {},  # extra
        )


class _Unusual(Exception):
    """A value ``load_row`` leaves to marshmallow."""


def _plain_text(value: Any) -> str | None:
    """``Text`` for the plain values of a usual row (str, int, None)."""
    if value is None:
        return None
    if type(value) is str:
        return value.strip() or None
    if type(value) is int:
        return str(value)
    raise _Unusual


_ROW_KEYS = frozenset({"callDate", "direction", "duration", "isRead", "service", "extNum", "num", "recordFileId"})


def _direction(value: Any) -> Direction:
    if type(value) is int:  # what the operator sends
        return DIRECTIONS.get(value, Direction.UNKNOWN)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in DIRECTION_WORDS:
            return DIRECTION_WORDS[word]
        value = int(word) if word.isascii() and word.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return DIRECTIONS.get(value, Direction.UNKNOWN)
    return Direction.UNKNOWN


class RowSet(fields.Field):
    """A list of rows, left as they are: ``CallRowSchema`` checks each one, and skips only that
    one when it is malformed (a list field would check 100,000 rows a second time, ≈ 3.5 µs each)."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> list:
        if not isinstance(value, list):
            raise ValidationError("must be a list of rows")
        return value


class CallListResultSchema(ZonedSchema):
    class Meta:
        unknown = EXCLUDE

    request_hash = Text(data_key="requestHash", load_default=None)
    rowset = RowSet(load_default=list, allow_none=True)


# --- request/getcallrecordfile (the metadata; fileContent is streamed by the client) ---------

RECORD_CONTENT_FIELD = "fileContent"


class RecordFileMetaSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    file_name = Text(data_key="file_NAME", load_default=None)
    request_hash = Text(data_key="requestHash", load_default=None)


# --- Vats/settings ----------------------------------------------------------------------------


class PbxSettingsSchema(Schema):
    class Meta:
        unknown = INCLUDE

    num = Text(data_key="num", required=True)
    name = Text(data_key="vatsName", load_default=None)
    mode_code = LenientInt(data_key="vatsModeCode", load_default=None)
    do_not_disturb = LenientInt(data_key="isDoNotDisturbMode", load_default=0)

    @post_load(pass_original=True)
    def make(self, data: dict, original: dict, **kwargs) -> PbxSettings:
        return PbxSettings(
            num=data["num"],
            name=data["name"],
            mode_code=data["mode_code"],
            do_not_disturb=bool(data["do_not_disturb"]),
            raw=original,
        )


class PbxSettingsResultSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    vats_settings = fields.List(fields.Nested(PbxSettingsSchema), data_key="vatsSettings", load_default=list)
