"""Bitrix24: call activities through the portal's inbound webhook (telephony.externalcall.*), and
its telephony events at ``POST /webhooks/bitrix24``."""

from __future__ import annotations

from dataclasses import dataclass, field

from integration.config import PositiveSeconds, Settings, Text, Url
from integration.crm.base import (
    CreatesLeads,
    CrmAdapter,
    CrmPlugin,
    CrmSettingsSchema,
    Resources,
    TakesEvents,
    backend_settings,
    crm_settings,
)
from integration.crm.bitrix24.adapter import Bitrix24Crm, Bitrix24Rest
from integration.ratelimit import Pacer


@dataclass(frozen=True)
class Bitrix24Settings:
    webhook_url: str | None = field(default=None, repr=False)  # its path holds a secret
    app_token: str | None = field(default=None, repr=False)
    default_user_id: str = "1"
    rate: float = 2.0


class Bitrix24SettingsSchema(CrmSettingsSchema):
    backend = "bitrix24"
    settings_class = Bitrix24Settings

    webhook_url = Url(data_key="BITRIX24_WEBHOOK_URL", required=True)
    app_token = Text(data_key="BITRIX24_APP_TOKEN")
    default_user_id = Text(data_key="BITRIX24_DEFAULT_USER_ID")
    rate = PositiveSeconds(data_key="BITRIX24_RATE")


def settings_of(settings: Settings) -> Bitrix24Settings | None:
    """Bitrix24's settings when it is the backend or any BITRIX24_* name is set."""
    return crm_settings(settings, "bitrix24", Bitrix24Settings)


def build(resources: Resources) -> CrmAdapter:
    settings = backend_settings(resources, "bitrix24", Bitrix24Settings)
    assert settings.webhook_url is not None  # required when it is the backend
    pacer = Pacer(resources.redis, resources.key("vats:bitrix24:pace"), settings.rate, burst=50)
    return Bitrix24Crm(Bitrix24Rest(settings.webhook_url, pacer), resources.delivery_ledger, settings.default_user_id)


PLUGIN = CrmPlugin(
    name="bitrix24",
    label="Bitrix24 (the portal's inbound webhook)",
    settings_schema=Bitrix24SettingsSchema,
    build=build,
    capabilities=(TakesEvents, CreatesLeads),
    blueprints=("integration.web.bitrix24:bitrix24",),
)
