"""The generic ``webhook`` CRM: Standard-Webhooks-signed events POSTed to ``CRM_WEBHOOK_URL``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from integration.config import Url, WebhookSecrets
from integration.crm.base import CrmAdapter, CrmPlugin, CrmSettingsSchema, Resources, TakesEvents, backend_settings
from integration.crm.webhook.adapter import WebhookCrm


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str = field(repr=False)


class WebhookSettingsSchema(CrmSettingsSchema):
    backend = "webhook"
    settings_class = WebhookSettings

    url = Url(data_key="CRM_WEBHOOK_URL", required=True)
    secret = WebhookSecrets(single=True, data_key="CRM_WEBHOOK_SECRET", required=True)


def build(resources: Resources) -> CrmAdapter:
    settings = backend_settings(resources, "webhook", WebhookSettings)
    return WebhookCrm(settings.url, settings.secret)


def check(values: Mapping[str, Any]) -> list[str]:
    if values.get("match_unknown", "skip") != "skip":
        return ["MATCH_UNKNOWN must be skip with CRM_BACKEND webhook (the receiver creates contacts itself)"]
    return []


PLUGIN = CrmPlugin(
    name="webhook",
    label="signed events POSTed to CRM_WEBHOOK_URL",
    settings_schema=WebhookSettingsSchema,
    build=build,
    capabilities=(TakesEvents,),
    check=check,
)
