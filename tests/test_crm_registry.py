"""The CRM registry builds every CRM_BACKEND, and each adapter declares its capabilities by the
interfaces it implements (callers never ask which CRM they have)."""

from __future__ import annotations

import pytest

from integration.config import SETTINGS, load_settings
from integration.crm.base import BrowsesContacts, CreatesLeads, KnowsDeals, TakesEvents
from integration.crm.registry import BACKENDS
from integration.runtime import Runtime
from tests.conftest import SECRET

CAPABILITIES = (TakesEvents, CreatesLeads, KnowsDeals, BrowsesContacts)
BACKEND_ENV = {
    "local": {},
    "webhook": {"CRM_WEBHOOK_URL": "https://crm.example/hook", "CRM_WEBHOOK_SECRET": SECRET},
    "bitrix24": {"BITRIX24_WEBHOOK_URL": "https://portal.bitrix24.ru/rest/1/abc/"},
    "amocrm": {"AMOCRM_BASE_URL": "https://acme.amocrm.ru", "AMOCRM_LONG_LIVED_TOKEN": "long-lived"},
}
EXPECTED = {
    "local": {BrowsesContacts},
    "webhook": {TakesEvents},
    "bitrix24": {TakesEvents, CreatesLeads},
    "amocrm": {TakesEvents, CreatesLeads, KnowsDeals},
}


def test_every_backend_the_settings_accept_is_registered():
    parse = next(parser for name, _, parser, _ in SETTINGS if name == "CRM_BACKEND")
    for name in BACKENDS:
        assert parse(name) == name
    with pytest.raises(ValueError) as refused:
        parse("nope")
    assert set(str(refused.value).split(": ", 1)[1].split(", ")) == set(BACKENDS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_is_built_with_its_capabilities(sandbox_env, sqlite_url, backend):
    env = sandbox_env | {"CRM_BACKEND": backend, "DATABASE_URL": sqlite_url} | BACKEND_ENV[backend]
    runtime = Runtime(load_settings(env, dotenv="/nonexistent/.env"))
    try:
        crm = runtime.crm
        assert crm.name == backend
        assert {capability for capability in CAPABILITIES if isinstance(crm, capability)} == EXPECTED[backend]
    finally:
        runtime.engine.dispose()
