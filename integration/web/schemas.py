"""Inbound payloads (marshmallow): click-to-call and the website "call me back" form."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from integration.callbacks import ClickToCall, dialable_destination
from integration.config import Settings
from integration.errors import InvalidPhoneNumber
from integration.phone import Phone, contract_number


def destination(raw: Any, settings: Settings) -> Phone:
    """A number we may dial, under the toll-fraud rules of the settings."""
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise ValidationError("must be a phone number as text")
    try:
        return dialable_destination(raw, settings)
    except InvalidPhoneNumber as exc:
        raise ValidationError(exc.reason) from None


class NumberField(fields.Field):
    """Text or a number; parsed later, with the settings at hand."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("must be a phone number as text")
        return str(value)


class SettingsSchema(Schema):
    def __init__(self, settings: Settings, **kwargs):
        self.settings = settings
        super().__init__(**kwargs)


class ClickToCallSchema(SettingsSchema):
    """``{"to": any format, "from": contract number | "user": CRM user id, "crm": {...}?}``."""

    class Meta:
        unknown = EXCLUDE

    to = NumberField(required=True)
    from_ = NumberField(data_key="from", load_default=None)
    user = NumberField(load_default=None)
    crm = fields.Dict(load_default=None, allow_none=True)

    @validates_schema
    def one_caller(self, data: dict, **kwargs) -> None:
        if (data.get("from_") is None) == (data.get("user") is None):
            raise ValidationError("give exactly one of 'from' (a contract number) or 'user' (a CRM user id)", "from")

    @post_load
    def make(self, data: dict, **kwargs) -> ClickToCall:
        errors: dict[str, Any] = {}
        phone_from: str | None = None
        if data["user"] is not None:
            phone_from = self.settings.users.get(data["user"])
            if phone_from is None:
                errors["user"] = [f"user {data['user']} has no contract number in INTEGRATION_CONFIG [users]"]
        else:
            try:
                phone_from = contract_number(data["from_"], self.settings.default_region)
            except InvalidPhoneNumber as exc:
                errors["from"] = [exc.reason]
            else:
                if phone_from not in self.settings.operator_numbers:
                    errors["from"] = ["is not one of this contract's numbers (OPERATOR_NUMBERS)"]
        try:
            phone_to = destination(data["to"], self.settings)
        except ValidationError as exc:
            errors["to"] = exc.messages
        if errors or phone_from is None:
            raise ValidationError(errors)
        return ClickToCall(phone_from=phone_from, destination=phone_to, crm_user=data["user"], crm_context=data["crm"])


class CallbackFormSchema(SettingsSchema):
    """The website form: phone, optional name, comment and page URL; ``website`` is a honeypot."""

    class Meta:
        unknown = EXCLUDE

    phone = NumberField(required=True)
    name = fields.Str(load_default=None, validate=validate.Length(max=200))
    comment = fields.Str(load_default=None, validate=validate.Length(max=2000))
    page_url = fields.Str(data_key="page_url", load_default=None, validate=validate.Length(max=2000))
    website = fields.Str(load_default="")  # bots fill every field; people never see this one

    @post_load
    def make(self, data: dict, **kwargs) -> dict:
        try:
            data["destination"] = destination(data["phone"], self.settings)
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from None
        return data


class DealClosedSchema(Schema):
    """``data`` of ``deal.closed``."""

    class Meta:
        unknown = INCLUDE

    deal_id = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    status = fields.Str(required=True, validate=validate.OneOf(["won", "lost"]))
    phones = fields.List(NumberField(), load_default=list)
    phone = NumberField(load_default=None)
    responsible_user = NumberField(load_default=None)


class CrmEventSchema(Schema):
    """``{"type": "deal.closed", "data": {…}}``; known types have their data checked too."""

    class Meta:
        unknown = EXCLUDE

    type = fields.Str(
        required=True,
        validate=validate.Regexp(
            r"^(?=.{1,64}\Z)[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\Z",
            error="must be an event type such as deal.closed (dotted lower-case, at most 64 characters)",
        ),
    )
    data = fields.Dict(required=True)

    KNOWN = {"deal.closed": DealClosedSchema}

    @post_load
    def check_data(self, event: dict, **kwargs) -> dict:
        schema = self.KNOWN.get(event["type"])
        if schema is not None:
            try:
                schema().load(event["data"])
            except ValidationError as exc:
                raise ValidationError({"data": exc.messages}) from None
        return event
