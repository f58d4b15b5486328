"""Inbound payloads (marshmallow): click-to-call and the website "call me back" form."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from integration.callbacks import ClickToCall
from integration.config import Settings
from integration.errors import InvalidPhoneNumber
from integration.phone import NumberType, Phone, contract_number, parse_dialable


def destination(raw: Any, settings: Settings) -> Phone:
    """A number we may dial, under the toll-fraud rules of the settings."""
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise ValidationError("must be a phone number as text")
    try:
        phone = parse_dialable(raw, settings.default_region)
    except InvalidPhoneNumber as exc:
        raise ValidationError(exc.reason) from None
    if phone.type is NumberType.PREMIUM_RATE and not settings.allow_premium_numbers:
        raise ValidationError("premium-rate numbers are not dialled (ALLOW_PREMIUM_NUMBERS is off)")
    if phone.region != settings.default_region and not settings.allow_international_numbers:
        raise ValidationError(
            f"international numbers are not dialled (ALLOW_INTERNATIONAL_NUMBERS is off; this one is in {phone.region or 'another zone'})"
        )
    return phone


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
        errors: dict[str, list[str]] = {}
        phone_from = None
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
        if errors:
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
