"""The CRM backends by ``CRM_BACKEND`` name, and how each is built. Nothing outside this module
asks which CRM it has: callers use ``CrmAdapter`` and the capability interfaces of ``base``.

Adding a CRM: its adapter module, one builder and one line in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from redis import Redis

from integration.config import Settings
from integration.crm.amocrm.adapter import AmoCrm, AmoRest
from integration.crm.amocrm.auth import AmoOAuth, AmoTokens
from integration.crm.base import CrmAdapter
from integration.crm.bitrix24.adapter import Bitrix24Crm, Bitrix24Rest
from integration.crm.local.adapter import LocalCrm
from integration.crm.webhook.adapter import WebhookCrm
from integration.errors import ConfigError
from integration.ledger.deliveries import DeliveryLedger
from integration.ratelimit import Pacer

if TYPE_CHECKING:
    from sqlalchemy import Engine  # annotations only: the ledger builds the engine


class Resources(Protocol):
    """What a builder may use of the process's resources (``Runtime`` provides them)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def redis(self) -> Redis: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def delivery_ledger(self) -> DeliveryLedger: ...


def _required(value: str | None, name: str) -> str:
    """A setting ``load_settings`` already requires for this backend."""
    if not value:
        raise ConfigError([f"{name} is required for this CRM_BACKEND"])
    return value


def _local(resources: Resources) -> CrmAdapter:
    return LocalCrm(resources.engine)


def _webhook(resources: Resources) -> CrmAdapter:
    settings = resources.settings
    return WebhookCrm(
        _required(settings.crm_webhook_url, "CRM_WEBHOOK_URL"),
        _required(settings.crm_webhook_secret, "CRM_WEBHOOK_SECRET"),
    )


def _bitrix24(resources: Resources) -> CrmAdapter:
    settings = resources.settings
    pacer = Pacer(resources.redis, "vats:bitrix24:pace", settings.bitrix24_rate, burst=50)
    rest = Bitrix24Rest(_required(settings.bitrix24_webhook_url, "BITRIX24_WEBHOOK_URL"), pacer)
    return Bitrix24Crm(rest, resources.delivery_ledger, settings.bitrix24_default_user_id)


def amocrm_tokens(settings: Settings, redis: Redis) -> AmoTokens:
    """amoCRM's token pair in Redis: OAuth 2 credentials, or a long-lived token."""
    oauth = None
    if settings.amocrm_client_id:
        oauth = AmoOAuth(
            _required(settings.amocrm_base_url, "AMOCRM_BASE_URL"),
            settings.amocrm_client_id,
            _required(settings.amocrm_client_secret, "AMOCRM_CLIENT_SECRET"),
            _required(settings.amocrm_redirect_uri, "AMOCRM_REDIRECT_URI"),
        )
    return AmoTokens(redis, oauth, auth_code=settings.amocrm_auth_code, long_lived=settings.amocrm_long_lived_token)


def _amocrm(resources: Resources) -> CrmAdapter:
    settings = resources.settings
    pacer = Pacer(resources.redis, "vats:amocrm:pace", settings.amocrm_rate, burst=7)
    rest = AmoRest(
        _required(settings.amocrm_base_url, "AMOCRM_BASE_URL"), amocrm_tokens(settings, resources.redis), pacer
    )
    return AmoCrm(rest, resources.delivery_ledger)


BACKENDS: dict[str, Callable[[Resources], CrmAdapter]] = {
    "local": _local,
    "webhook": _webhook,
    "bitrix24": _bitrix24,
    "amocrm": _amocrm,
}


def build_crm(resources: Resources) -> CrmAdapter:
    """The adapter of ``CRM_BACKEND``."""
    return BACKENDS[resources.settings.crm_backend](resources)
