"""Loading the settings: the core concern schemas of ``integration.config`` and the CRM plugins'
schemas (from ``integration.crm.registry``), composed into one ``Settings``.

It sits above ``crm`` (it needs the plugins) and below everything that starts a process; the
low layers import only ``integration.config`` (the ``Settings`` type and the schemas).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from integration.config import (
    ACCOUNT,
    CONCERNS,
    DEPLOYMENT,
    TABLES,
    Choice,
    ConcernSchema,
    Settings,
    check_calls,
    load_structured,
    load_tables,
    problems_of,
    read_environment,
)
from integration.crm.registry import DEFAULT, PLUGINS
from integration.errors import ConfigError


class CrmBackendSchema(ConcernSchema):
    """Which CRM the account writes to: one of the registered plugins (per account)."""

    crm_backend = Choice(*PLUGINS, data_key="CRM_BACKEND")


# The core concerns with the CRM choice, in the order their problems are listed.
CORE: tuple[type[ConcernSchema], ...] = (*CONCERNS[:5], CrmBackendSchema, *CONCERNS[5:])


def concern_schemas() -> tuple[type[ConcernSchema], ...]:
    """Every schema: the core concerns, the CRM choice, then each CRM plugin's."""
    return (*CORE, *(plugin.settings_schema for plugin in PLUGINS.values()))


@functools.cache
def instance(schema: type[ConcernSchema]) -> ConcernSchema:
    """One instance of each schema per process: loading thousands of accounts' settings builds
    no schema twice (loading changes nothing in the schema)."""
    return schema()


def setting_names(scope: str) -> list[str]:
    """The public names of the ``deployment``-wide or per-``account`` settings."""
    if scope not in (DEPLOYMENT, ACCOUNT):
        raise ValueError(scope)
    return [name for schema in concern_schemas() if schema.scope == scope for name in schema.names()]


def load_document(source: Mapping[str, Any], problems: list[str], scope: str | None = None) -> dict[str, Any]:
    """The ``Settings`` values of a plain mapping of public names (the environment, or a stored
    document: the same schemas read both), of one ``scope`` or of both. Problems go to
    ``problems``, one line each."""
    values: dict[str, Any] = {}
    for schema in CORE:
        if scope is not None and schema.scope != scope:
            continue
        try:
            values.update(instance(schema).load(source))
        except ValidationError as exc:
            problems.extend(problems_of(exc))
            values.update(exc.valid_data if isinstance(exc.valid_data, dict) else {})
    backend = values.get("crm_backend", DEFAULT)
    values["crm_backend"] = backend
    crm: dict[str, Any] = {}
    for name, plugin in PLUGINS.items():
        own = plugin.settings_schema
        if name != backend and not any(key in source for key in own.names()):
            continue
        try:  # another CRM's settings (the amoCRM widget's, say) are checked when set, never required
            crm[name] = instance(own).load(source, partial=name != backend)
        except ValidationError as exc:
            problems.extend(problems_of(exc))
    values["crm_settings"] = crm
    problems.extend(check_calls(values))
    check = PLUGINS[backend].check
    if check is not None:
        problems.extend(check(values))
    return values


def secret_names() -> set[str]:
    """The public names whose values are secrets (the settings hidden from ``repr``)."""
    names = set()
    for schema in concern_schemas():
        target = getattr(schema, "settings_class", Settings)
        hidden = {name for name, spec in target.__dataclass_fields__.items() if not spec.repr}
        names |= {field.data_key or name for name, field in schema().fields.items() if name in hidden}
    return names


def account_settings(document: Mapping[str, Any], deployment: Settings, where: str = "account file") -> Settings:
    """An account's ``Settings``: the deployment-wide values of ``deployment`` (the environment)
    with the account document's per-account names and tables (``[users]``, ``[[rules]]``, …),
    read by the same schemas as the environment. Raises ``ConfigError`` listing every problem."""
    problems: list[str] = []
    deployment_names, account_names = set(setting_names(DEPLOYMENT)), set(setting_names(ACCOUNT))
    source = {}
    for name, value in document.items():
        if name in TABLES:
            continue
        if name in deployment_names:
            problems.append(f"{name} is deployment-wide: set it in the environment, not in an {where}")
        elif name not in account_names:
            problems.append(f"{name} is not a setting of an account")
        else:
            source[name] = value
    values = load_document(source, problems, scope=ACCOUNT)
    values.update(load_tables(document, where, values.get("operator_numbers", ()), problems))
    if problems:
        raise ConfigError(problems)
    shared = {name: getattr(deployment, name) for name in deployment_attributes()}
    return Settings(**shared | values)


def deployment_attributes() -> list[str]:
    """The ``Settings`` attributes of the deployment-wide concerns."""
    return [name for schema in CORE if schema.scope == DEPLOYMENT for name in schema().fields]


def load_settings(environ: Mapping[str, str] | None = None, dotenv: str | Path = ".env") -> Settings:
    """Parse and validate every setting; raise ``ConfigError`` listing all problems."""
    source = read_environment(environ, dotenv)
    problems: list[str] = []
    values = load_document(source, problems)
    values.update(load_structured(source, values, problems))
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def settings_or_exit(program: str) -> Settings:
    """``load_settings()``, or print every problem (one line each) and exit with code 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"{program} cannot start; fix these settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2) from None
