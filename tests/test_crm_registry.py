"""The CRM registry: one plugin per CRM package, each built with the capabilities it declares;
each plugin's settings schema reads a stored document as it reads the environment; a CRM's
settings are required only when it is the backend; nothing outside the registry names a backend."""

from __future__ import annotations

import ast
import re
from dataclasses import asdict
from pathlib import Path

import pytest
from marshmallow import ValidationError

from integration.config import CONCERNS, problems_of
from integration.crm.base import BrowsesContacts, CreatesLeads, CrmPlugin, KnowsDeals, StoresSecrets, TakesEvents
from integration.crm.registry import PLUGINS, _registry
from integration.errors import ConfigError
from integration.runtime import Runtime
from integration.settings import CrmBackendSchema, load_settings, setting_names
from tests.conftest import ROOT, SECRET, SECRET_KEYS

CAPABILITIES = (TakesEvents, CreatesLeads, KnowsDeals, BrowsesContacts, StoresSecrets)
BACKEND_ENV = {
    "local": {},
    "webhook": {"CRM_WEBHOOK_URL": "https://crm.example/hook", "CRM_WEBHOOK_SECRET": SECRET},
    "bitrix24": {"BITRIX24_WEBHOOK_URL": "https://portal.bitrix24.ru/rest/1/abc/", "BITRIX24_RATE": "4"},
    "amocrm": {
        "AMOCRM_BASE_URL": "https://acme.amocrm.ru",
        "AMOCRM_LONG_LIVED_TOKEN": "long-lived",
        "AMOCRM_ACCOUNT_ID": "0042",
        "WIDGET_CALL_LIMIT_PER_USER": "5/minute",
    },
}
# The same settings as a stored document holds them (TOML's numbers and lists).
BACKEND_DOCUMENT = {
    "local": {},
    "webhook": {"CRM_WEBHOOK_URL": "https://crm.example/hook/", "CRM_WEBHOOK_SECRET": [SECRET]},
    "bitrix24": {"BITRIX24_WEBHOOK_URL": "https://portal.bitrix24.ru/rest/1/abc", "BITRIX24_RATE": 4},
    "amocrm": {
        "AMOCRM_BASE_URL": "https://acme.amocrm.ru",
        "AMOCRM_LONG_LIVED_TOKEN": "long-lived",
        "AMOCRM_ACCOUNT_ID": 42,
        "WIDGET_CALL_LIMIT_PER_USER": "5/minute",
    },
}
EXPECTED = {
    "local": {BrowsesContacts},
    "webhook": {TakesEvents},
    "bitrix24": {TakesEvents, CreatesLeads},
    "amocrm": {TakesEvents, CreatesLeads, KnowsDeals, StoresSecrets},
}


def load(env):
    return load_settings(env, dotenv="/nonexistent/.env")


def test_the_backend_choice_is_the_registry():
    assert CrmBackendSchema().load({"CRM_BACKEND": "amocrm"}) == {"crm_backend": "amocrm"}
    with pytest.raises(ValidationError) as refused:
        CrmBackendSchema().load({"CRM_BACKEND": "nope"})
    (line,) = problems_of(refused.value)
    assert line.startswith("CRM_BACKEND must be one of: ")
    assert set(line.split(": ", 1)[1].split(", ")) == set(PLUGINS) == set(EXPECTED)


def test_the_registry_refuses_what_is_not_a_plugin_or_a_name_twice():
    with pytest.raises(TypeError):
        _registry(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _registry(PLUGINS["local"], PLUGINS["local"])


@pytest.mark.parametrize("backend", PLUGINS)
def test_each_backend_is_built_with_the_capabilities_it_declares(sandbox_env, sqlite_url, backend):
    env = sandbox_env | {"CRM_BACKEND": backend, "DATABASE_URL": sqlite_url} | BACKEND_ENV[backend]
    runtime = Runtime(load(env))
    try:
        crm = runtime.crm
        assert crm.name == backend
        declared = set(PLUGINS[backend].capabilities)
        assert {capability for capability in CAPABILITIES if isinstance(crm, capability)} == declared
        assert declared == EXPECTED[backend]
    finally:
        runtime.engine.dispose()


@pytest.mark.parametrize("backend", PLUGINS)
def test_each_plugin_schema_reads_a_document_as_it_reads_the_environment(backend):
    schema = PLUGINS[backend].settings_schema
    from_env = schema().load(BACKEND_ENV[backend] | {"UNRELATED": "x", "AMOCRM_RATE": ""})
    from_document = schema().load(BACKEND_DOCUMENT[backend])
    assert from_env == from_document
    assert isinstance(from_env, schema.settings_class)


def test_core_concerns_read_a_document_as_they_read_the_environment():
    env = {
        "SECRET_KEYS": SECRET_KEYS,
        "OPERATOR_AUTHORIZATION_TOKEN": "t",
        "OPERATOR_NUMBERS": "4990000000, 4950000000",
        "OPERATOR_READ_TIMEOUT": "12.5",
        "ALLOW_PREMIUM_NUMBERS": "true",
        "CORS_ORIGINS": "https://a.example,https://b.example",
        "SYNC_INTERVAL": "30",
        "WEBHOOK_SECRET": f"{SECRET} {SECRET}",
        "RECORDING_LINK_KEYS": "k" * 32,
    }
    document = env | {
        "OPERATOR_NUMBERS": ["4990000000", "4950000000"],
        "OPERATOR_READ_TIMEOUT": 12.5,
        "ALLOW_PREMIUM_NUMBERS": True,
        "CORS_ORIGINS": ["https://a.example", "https://b.example"],
        "SYNC_INTERVAL": 30,
        "WEBHOOK_SECRET": [SECRET, SECRET],
        "RECORDING_LINK_KEYS": ["k" * 32],
    }
    for concern in CONCERNS:
        assert concern().load(env) == concern().load(document), concern


def test_a_crm_is_required_only_when_it_is_the_backend():
    base = {"OPERATOR_AUTHORIZATION_TOKEN": "t", "OPERATOR_NUMBERS": "4990000000", "SECRET_KEYS": SECRET_KEYS}
    # Another CRM's names set beside the backend: checked, never required.
    settings = load(base | {"AMOCRM_CLIENT_SECRET": "s", "BITRIX24_APP_TOKEN": "tok"})
    assert set(settings.crm_settings) == {"local", "bitrix24", "amocrm"}
    with pytest.raises(ConfigError) as caught:
        load(base | {"AMOCRM_RATE": "fast"})
    assert caught.value.problems == ["AMOCRM_RATE must be a positive number of seconds"]
    # As the backend: required, with the backend's own checks.
    with pytest.raises(ConfigError) as caught:
        load(base | {"CRM_BACKEND": "webhook", "MATCH_UNKNOWN": "create_lead"})
    assert caught.value.problems == [
        "CRM_WEBHOOK_URL is required when CRM_BACKEND is webhook",
        "CRM_WEBHOOK_SECRET is required when CRM_BACKEND is webhook",
        "MATCH_UNKNOWN must be skip with CRM_BACKEND webhook (the receiver creates contacts itself)",
    ]
    # Only the backend's (and set) CRM settings are loaded.
    assert set(load(base).crm_settings) == {"local"}


def test_account_and_deployment_settings_are_apart_and_each_name_belongs_to_one_schema():
    account, deployment = setting_names("account"), setting_names("deployment")
    assert not set(account) & set(deployment)
    assert len(account) == len(set(account))
    assert {"REDIS_URL", "DATABASE_URL", "PUBLIC_URL", "RECORDINGS_DIR"} <= set(deployment)
    assert {"OPERATOR_AUTHORIZATION_TOKEN", "CRM_BACKEND", "CRM_WEBHOOK_URL", "AMOCRM_BASE_URL"} <= set(account)


def test_every_plugin_is_a_plugin_with_its_package():
    for name, plugin in PLUGINS.items():
        assert isinstance(plugin, CrmPlugin) and plugin.name == name
        assert (ROOT / "integration" / "crm" / name / "__init__.py").is_file()
        assert all(re.fullmatch(r"integration\.web\.\w+:\w+", path) for path in plugin.blueprints)


def test_secrets_of_every_plugin_stay_out_of_repr():
    for backend in PLUGINS:
        loaded = PLUGINS[backend].settings_schema().load(BACKEND_ENV[backend])
        text = repr(loaded)
        for key, value in asdict(loaded).items():
            if key in ("url", "base_url", "rate", "account_id", "widget_call_limit_per_user"):
                continue
            assert not isinstance(value, str) or value not in text or value == "1", (backend, key)


BACKEND_NAMES = set(PLUGINS)


def _backend_comparisons(path: Path) -> list[str]:
    """Backend names compared (``== "bitrix24"``, ``in ("amocrm", …)``) and adapter classes asked
    for by ``isinstance``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                items = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                for item in items:
                    if isinstance(item, ast.Constant) and item.value in BACKEND_NAMES:
                        found.append(f"{path}:{node.lineno}: compares {item.value!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            kinds = ast.dump(node.args[1]) if len(node.args) > 1 else ""
            if re.search(r"'(LocalCrm|WebhookCrm|Bitrix24Crm|AmoCrm)'", kinds):
                found.append(f"{path}:{node.lineno}: isinstance of an adapter")
    return found


def test_nothing_outside_the_crm_packages_asks_which_crm_it_has():
    outside = [
        path
        for path in (ROOT / "integration").rglob("*.py")
        if "crm" not in path.relative_to(ROOT / "integration").parts[:1] and "sandbox" not in path.parts
    ]
    assert outside
    found = [line for path in outside for line in _backend_comparisons(path)]
    assert found == []
    # ... and the settings do not list the backends: the registry does.
    for module in ("config.py", "settings.py", "app.py", "runtime.py"):
        text = (ROOT / "integration" / module).read_text(encoding="utf-8")
        assert not re.search(r"[\"'](webhook|bitrix24|amocrm)[\"']\s*[,:)]", text), module
