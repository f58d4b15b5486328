"""amoCRM / Kommo: call notes through the REST API v4 with OAuth 2 (or a long-lived token), lead
webhooks at ``POST /webhooks/amocrm/<secret>``, and the widget's click-to-call with one-time
tokens at ``POST /widget/amocrm/click-to-call`` (which works beside any backend)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from integration.config import PositiveSeconds, Rate, RateLimit, SettingField, Settings, Text, Url
from integration.crm.amocrm.adapter import AmoCrm, AmoRest
from integration.crm.amocrm.auth import AmoOAuth, AmoTokens
from integration.crm.base import (
    CreatesLeads,
    CrmAdapter,
    CrmPlugin,
    CrmSettingsSchema,
    KnowsDeals,
    Resources,
    StoresSecrets,
    TakesEvents,
    backend_settings,
    crm_settings,
)
from integration.ratelimit import Pacer
from integration.secretbox import SecretBox


@dataclass(frozen=True)
class AmoCrmSettings:
    base_url: str | None = None
    long_lived_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    auth_code: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    account_id: str | None = None
    rate: float = 7.0
    widget_call_limit_per_user: RateLimit = RateLimit(30, 60)


class AccountId(SettingField):
    def parse(self, text: str) -> str:
        if not re.fullmatch(r"[0-9]+", text.strip()) or int(text) == 0:
            raise ValueError("must be the amoCRM account's numeric id (account[id] in its webhooks)")
        return str(int(text))


class AmoCrmSettingsSchema(CrmSettingsSchema):
    backend = "amocrm"
    settings_class = AmoCrmSettings

    base_url = Url(data_key="AMOCRM_BASE_URL", required=True)
    long_lived_token = Text(data_key="AMOCRM_LONG_LIVED_TOKEN")
    client_id = Text(data_key="AMOCRM_CLIENT_ID")
    client_secret = Text(data_key="AMOCRM_CLIENT_SECRET")
    redirect_uri = Url(data_key="AMOCRM_REDIRECT_URI")
    auth_code = Text(data_key="AMOCRM_AUTH_CODE")
    webhook_secret = Text(data_key="AMOCRM_WEBHOOK_SECRET")
    account_id = AccountId(data_key="AMOCRM_ACCOUNT_ID")
    rate = PositiveSeconds(data_key="AMOCRM_RATE")
    widget_call_limit_per_user = Rate(data_key="WIDGET_CALL_LIMIT_PER_USER")

    def check(self, data: Mapping[str, Any]) -> list[str]:
        oauth = ("client_id", "client_secret", "redirect_uri")
        if "long_lived_token" not in data and not all(name in data for name in oauth):
            return [
                "CRM_BACKEND amocrm needs AMOCRM_LONG_LIVED_TOKEN, or AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET "
                "and AMOCRM_REDIRECT_URI (with AMOCRM_AUTH_CODE for the first authorization)"
            ]
        return []


def settings_of(settings: Settings) -> AmoCrmSettings | None:
    """amoCRM's settings when it is the backend or any AMOCRM_* name is set (the widget)."""
    return crm_settings(settings, "amocrm", AmoCrmSettings)


def amocrm_tokens(settings: AmoCrmSettings, redis: Redis, box: SecretBox, key: str = "vats:amocrm:tokens") -> AmoTokens:
    """amoCRM's token pair in Redis: OAuth 2 credentials, or a long-lived token."""
    oauth = None
    if settings.client_id and settings.base_url and settings.client_secret and settings.redirect_uri:
        oauth = AmoOAuth(settings.base_url, settings.client_id, settings.client_secret, settings.redirect_uri)
    return AmoTokens(redis, oauth, box=box, key=key, auth_code=settings.auth_code, long_lived=settings.long_lived_token)


def build(resources: Resources) -> CrmAdapter:
    settings = backend_settings(resources, "amocrm", AmoCrmSettings)
    assert settings.base_url is not None  # required when it is the backend
    pacer = Pacer(resources.redis, resources.key("vats:amocrm:pace"), settings.rate, burst=7)
    rest = AmoRest(
        settings.base_url,
        amocrm_tokens(settings, resources.redis, resources.secret_box, resources.key("vats:amocrm:tokens")),
        pacer,
    )
    return AmoCrm(rest, resources.delivery_ledger)


PLUGIN = CrmPlugin(
    name="amocrm",
    label="amoCRM / Kommo (REST API v4)",
    settings_schema=AmoCrmSettingsSchema,
    build=build,
    capabilities=(TakesEvents, CreatesLeads, KnowsDeals, StoresSecrets),
    blueprints=("integration.web.amocrm:amocrm", "integration.web.widget:widget"),
)
