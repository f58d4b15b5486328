"""Settings read from the environment (and a ``.env`` file), validated at start-up.

``load_settings()`` collects every problem before failing, so a person fixing a deployment sees
all of them at once, one line each (``ConfigError.problems``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from dotenv import dotenv_values

from integration.errors import ConfigError, InvalidPhoneNumber
from integration.phone import contract_number, forwarding_digits
from integration.rules import BusinessHours, Rule, parse_business_hours, parse_rules

CONTRACT_NUMBER = re.compile(r"^[0-9]{10}$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class RateLimit:
    """``count`` requests per ``seconds``."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds} s"


@dataclass(frozen=True)
class Settings:
    """Validated settings. Secrets are kept out of ``repr``."""

    operator_authorization_token: str = field(repr=False)
    operator_numbers: tuple[str, ...]
    redis_url: str = "redis://localhost:6379/0"
    operator_api_url: str = "https://webapi.alloincognito.ru:4431"
    operator_timezone: str = "Europe/Moscow"
    default_region: str = "RU"
    operator_connect_timeout: float = 5.0
    operator_read_timeout: float = 30.0
    operator_max_retries: int = 3
    log_level: str = "INFO"
    database_url: str = "sqlite:///var/integration.db"
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    api_token: str | None = field(default=None, repr=False)
    public_url: str = "http://localhost:8000"
    callback_ttl: int = 60
    click_to_call_debounce: int = 15
    allow_premium_numbers: bool = False
    allow_international_numbers: bool = False
    callback_request_from: str | None = None
    callback_request_limit_per_number: RateLimit = RateLimit(3, 3600)
    callback_request_limit_per_ip: RateLimit = RateLimit(20, 3600)
    callback_request_limit_total: RateLimit = RateLimit(200, 3600)
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    trusted_proxies: int = 0
    worker_class: str = "simple"
    sync_interval: int = 60
    sync_overlap: int = 7200
    sync_first_window: int = 86400
    crm_backend: str = "local"
    crm_webhook_url: str | None = None
    crm_webhook_secret: str | None = field(default=None, repr=False)
    match_multiple: str = "most_recent"
    match_unknown: str = "skip"
    integration_config: str = "integration.toml"
    bitrix24_webhook_url: str | None = field(default=None, repr=False)  # its path holds a secret
    bitrix24_app_token: str | None = field(default=None, repr=False)
    bitrix24_default_user_id: str = "1"
    bitrix24_rate: float = 2.0
    amocrm_base_url: str | None = None
    amocrm_long_lived_token: str | None = field(default=None, repr=False)
    amocrm_client_id: str | None = None
    amocrm_client_secret: str | None = field(default=None, repr=False)
    amocrm_redirect_uri: str | None = None
    amocrm_auth_code: str | None = field(default=None, repr=False)
    amocrm_webhook_secret: str | None = field(default=None, repr=False)
    amocrm_account_id: str | None = None
    amocrm_rate: float = 7.0
    widget_call_limit_per_user: RateLimit = RateLimit(30, 60)
    recordings_dir: str = "var/recordings"
    recording_link_keys: tuple[str, ...] = field(default=(), repr=False)
    recording_link_ttl: int = 0
    recording_retention_days: int = 0
    users: dict[str, str] = field(default_factory=dict)
    forwarding: dict[str, str] = field(default_factory=dict)  # CRM user id → forwarding number (10 digits)
    business_hours: BusinessHours = BusinessHours()
    rules: tuple[Rule, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.operator_timezone)

    @property
    def users_by_line(self) -> dict[str, str]:
        """Contract number → the first CRM user it rings for (the responsible user of its calls)."""
        by_line: dict[str, str] = {}
        for user, number in self.users.items():
            by_line.setdefault(number, user)
        return by_line

    def own_number(self, raw: object) -> str:
        """``raw`` as a contract number (10 digits) that is one of ``OPERATOR_NUMBERS``;
        ``InvalidPhoneNumber`` says why not."""
        number = contract_number(raw, self.default_region)
        if number not in self.operator_numbers:
            raise InvalidPhoneNumber(raw, f"not one of OPERATOR_NUMBERS ({', '.join(self.operator_numbers)})")
        return number

    @property
    def form_number(self) -> str:
        """The contract number that rings for website "call me back" requests."""
        return self.callback_request_from or self.operator_numbers[0]


def _ascii_whole(value: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²' and other scripts' digits)."""
    return value.strip().isascii() and value.strip().isdigit()


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip().rstrip("/")


def _redis_url(value: str) -> str:
    if urlsplit(value.strip()).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value.strip()


def _numbers(value: str) -> tuple[str, ...]:
    numbers = tuple(n.strip() for n in value.split(",") if n.strip())
    if not numbers:
        raise ValueError("must list at least one contract number")
    bad = [n for n in numbers if not CONTRACT_NUMBER.match(n)]
    if bad:
        raise ValueError(f"each number must be 10 digits without the leading 8 (e.g. 4990000000); got {', '.join(bad)}")
    return tuple(dict.fromkeys(numbers))


def _contract_number(value: str) -> str:
    if not CONTRACT_NUMBER.match(value.strip()):
        raise ValueError("must be 10 digits without the leading 8 (e.g. 4990000000)")
    return value.strip()


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Europe/Moscow") from None
    return value.strip()


def _region(value: str) -> str:
    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("must be a two-letter region code such as RU")
    return region


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
    return number


def _count(value: str) -> int:
    if not _ascii_whole(value):
        raise ValueError("must be a whole number, 0 or more")
    return int(value)


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _whole(value: str) -> int:
    if not _ascii_whole(value):
        raise ValueError("must be a whole number of seconds")
    return int(value)


def _days(value: str) -> int:
    if not _ascii_whole(value):
        raise ValueError("must be a whole number of days (0: keep forever)")
    return int(value)


def _positive_whole(value: str) -> int:
    if not _ascii_whole(value) or int(value) == 0:
        raise ValueError("must be a whole number of seconds, at least 1")
    return int(value)


def _boolean(value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _secrets(value: str) -> tuple[str, ...]:
    secrets = tuple(value.split())
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise ValueError("must be whsec_… secrets separated by spaces")
        try:
            if not base64.b64decode(secret[6:] + "==", validate=False):
                raise ValueError
        except (ValueError, binascii.Error):
            raise ValueError("must be whsec_ followed by base64") from None
    return secrets


def _link_keys(value: str) -> tuple[str, ...]:
    keys = tuple(value.split())
    if not keys or any(len(key) < 32 for key in keys):
        raise ValueError(
            "must be keys of at least 32 characters separated by spaces (e.g. from `openssl rand -hex 32`)"
        )
    return keys


def _rate(value: str) -> RateLimit:
    count, _, period = value.strip().partition("/")
    if not _ascii_whole(count) or period.strip().lower() not in _PERIODS:
        raise ValueError("must look like 3/hour (per second, minute, hour or day)")
    return RateLimit(int(count), _PERIODS[period.strip().lower()])


def _account_id(value: str) -> str:
    if not re.fullmatch(r"[0-9]+", value.strip()) or int(value) == 0:
        raise ValueError("must be the amoCRM account's numeric id (account[id] in its webhooks)")
    return str(int(value))


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    if any(o != "*" and urlsplit(o).scheme not in ("http", "https") for o in origins):
        raise ValueError("must be origins such as https://example.com, comma-separated (or *)")
    return origins


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip() not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return value.strip()

    return parse


def _database_url(value: str) -> str:
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value.strip()):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return value.strip()


# (environment name, Settings field, parser, required); defaults live on the dataclass.
SETTINGS: list[tuple[str, str, Callable[[str], Any], bool]] = [
    ("OPERATOR_AUTHORIZATION_TOKEN", "operator_authorization_token", _text, True),
    ("OPERATOR_NUMBERS", "operator_numbers", _numbers, True),
    ("REDIS_URL", "redis_url", _redis_url, False),
    ("OPERATOR_API_URL", "operator_api_url", _url, False),
    ("OPERATOR_TIMEZONE", "operator_timezone", _timezone, False),
    ("DEFAULT_REGION", "default_region", _region, False),
    ("OPERATOR_CONNECT_TIMEOUT", "operator_connect_timeout", _positive_float, False),
    ("OPERATOR_READ_TIMEOUT", "operator_read_timeout", _positive_float, False),
    ("OPERATOR_MAX_RETRIES", "operator_max_retries", _count, False),
    ("LOG_LEVEL", "log_level", _log_level, False),
    ("DATABASE_URL", "database_url", _database_url, False),
    ("WEBHOOK_SECRET", "webhook_secrets", _secrets, False),
    ("API_TOKEN", "api_token", _text, False),
    ("PUBLIC_URL", "public_url", _url, False),
    ("CALLBACK_TTL", "callback_ttl", _whole, False),
    ("CLICK_TO_CALL_DEBOUNCE", "click_to_call_debounce", _whole, False),
    ("ALLOW_PREMIUM_NUMBERS", "allow_premium_numbers", _boolean, False),
    ("ALLOW_INTERNATIONAL_NUMBERS", "allow_international_numbers", _boolean, False),
    ("CALLBACK_REQUEST_FROM", "callback_request_from", _contract_number, False),
    ("CALLBACK_REQUEST_LIMIT_PER_NUMBER", "callback_request_limit_per_number", _rate, False),
    ("CALLBACK_REQUEST_LIMIT_PER_IP", "callback_request_limit_per_ip", _rate, False),
    ("CALLBACK_REQUEST_LIMIT_TOTAL", "callback_request_limit_total", _rate, False),
    ("CORS_ORIGINS", "cors_origins", _origins, False),
    ("MAX_BODY_BYTES", "max_body_bytes", _whole, False),
    ("TRUSTED_PROXIES", "trusted_proxies", _count, False),
    ("WORKER_CLASS", "worker_class", _choice("simple", "fork"), False),
    ("SYNC_INTERVAL", "sync_interval", _positive_whole, False),
    ("SYNC_OVERLAP", "sync_overlap", _whole, False),
    ("SYNC_FIRST_WINDOW", "sync_first_window", _whole, False),
    ("CRM_BACKEND", "crm_backend", _choice("local", "webhook", "bitrix24", "amocrm"), False),
    ("AMOCRM_BASE_URL", "amocrm_base_url", _url, False),
    ("AMOCRM_LONG_LIVED_TOKEN", "amocrm_long_lived_token", _text, False),
    ("AMOCRM_CLIENT_ID", "amocrm_client_id", _text, False),
    ("AMOCRM_CLIENT_SECRET", "amocrm_client_secret", _text, False),
    ("AMOCRM_REDIRECT_URI", "amocrm_redirect_uri", _url, False),
    ("AMOCRM_AUTH_CODE", "amocrm_auth_code", _text, False),
    ("AMOCRM_WEBHOOK_SECRET", "amocrm_webhook_secret", _text, False),
    ("AMOCRM_ACCOUNT_ID", "amocrm_account_id", _account_id, False),
    ("AMOCRM_RATE", "amocrm_rate", _positive_float, False),
    ("WIDGET_CALL_LIMIT_PER_USER", "widget_call_limit_per_user", _rate, False),
    ("BITRIX24_WEBHOOK_URL", "bitrix24_webhook_url", _url, False),
    ("BITRIX24_APP_TOKEN", "bitrix24_app_token", _text, False),
    ("BITRIX24_DEFAULT_USER_ID", "bitrix24_default_user_id", _text, False),
    ("BITRIX24_RATE", "bitrix24_rate", _positive_float, False),
    ("CRM_WEBHOOK_URL", "crm_webhook_url", _url, False),
    ("CRM_WEBHOOK_SECRET", "crm_webhook_secret", lambda value: _secrets(value)[0], False),
    ("MATCH_MULTIPLE", "match_multiple", _choice("most_recent", "all", "none"), False),
    ("MATCH_UNKNOWN", "match_unknown", _choice("skip", "create_contact", "create_lead"), False),
    ("INTEGRATION_CONFIG", "integration_config", _text, False),
    ("RECORDINGS_DIR", "recordings_dir", _text, False),
    ("RECORDING_LINK_KEYS", "recording_link_keys", _link_keys, False),
    ("RECORDING_LINK_TTL", "recording_link_ttl", _whole, False),
    ("RECORDING_RETENTION_DAYS", "recording_retention_days", _days, False),
]


def read_environment(environ: Mapping[str, str] | None = None, dotenv: str | Path = ".env") -> dict[str, str]:
    """The process environment over the values of a ``.env`` file (the environment wins)."""
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if Path(dotenv).is_file() else {}
    values.update(os.environ if environ is None else environ)
    return values


BACKEND_SETTINGS = {  # what each CRM backend cannot do without
    "webhook": [("CRM_WEBHOOK_URL", "crm_webhook_url"), ("CRM_WEBHOOK_SECRET", "crm_webhook_secret")],
    "bitrix24": [("BITRIX24_WEBHOOK_URL", "bitrix24_webhook_url")],
    "amocrm": [("AMOCRM_BASE_URL", "amocrm_base_url")],
}


def load_settings(environ: Mapping[str, str] | None = None, dotenv: str | Path = ".env") -> Settings:
    """Parse and validate every setting; raise ``ConfigError`` listing all problems."""
    source = read_environment(environ, dotenv)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, attr, parse, required in SETTINGS:
        raw = source.get(name)
        if raw is None or raw.strip() == "":
            if required:
                problems.append(f"{name} is required but not set")
            continue
        try:
            values[attr] = parse(raw)
        except ValueError as exc:
            # Parsers explain with "must …" and never echo a secret value.
            problems.append(f"{name} {exc}")
    backend = values.get("crm_backend", Settings.crm_backend)
    for name, attr in BACKEND_SETTINGS.get(backend, ()):
        if attr not in values and not any(p.startswith(name) for p in problems):
            problems.append(f"{name} is required when CRM_BACKEND is {backend}")
    if backend == "webhook" and values.get("match_unknown", "skip") != "skip":
        problems.append("MATCH_UNKNOWN must be skip with CRM_BACKEND webhook (the receiver creates contacts itself)")
    oauth = ("amocrm_client_id", "amocrm_client_secret", "amocrm_redirect_uri")
    if backend == "amocrm" and "amocrm_long_lived_token" not in values and not all(a in values for a in oauth):
        problems.append(
            "CRM_BACKEND amocrm needs AMOCRM_LONG_LIVED_TOKEN, or AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET "
            "and AMOCRM_REDIRECT_URI (with AMOCRM_AUTH_CODE for the first authorization)"
        )
    numbers = values.get("operator_numbers", ())
    if values.get("callback_request_from") and values["callback_request_from"] not in numbers:
        problems.append("CALLBACK_REQUEST_FROM must be one of OPERATOR_NUMBERS")
    path = Path(values.get("integration_config", Settings.integration_config))
    if path.is_file():
        values.update(_load_config(path, numbers, problems))
    elif "INTEGRATION_CONFIG" in source and source["INTEGRATION_CONFIG"].strip():
        problems.append(f"INTEGRATION_CONFIG names {path}, which does not exist")
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def _load_config(path: Path, numbers: tuple[str, ...], problems: list[str]) -> dict[str, Any]:
    """The TOML file: ``[users]``, ``[forwarding]``, ``[business_hours]`` and ``[[rules]]``."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"INTEGRATION_CONFIG ({path}) is not valid TOML: {exc}")
        return {}
    where = f"INTEGRATION_CONFIG ({path})"
    rules = parse_rules(document.get("rules"), problems, where)
    for rule in rules:
        for number in rule.numbers:
            if number not in numbers:
                problems.append(f"{where}: rule {rule.name!r}: {number} is not one of OPERATOR_NUMBERS")
    return {
        "users": _users(document.get("users", {}), path, numbers, problems),
        "forwarding": _forwarding(document.get("forwarding", {}), where, problems),
        "business_hours": parse_business_hours(document.get("business_hours"), problems, where),
        "rules": rules,
    }


def _forwarding(table: Any, where: str, problems: list[str]) -> dict[str, str]:
    """``[forwarding]``: CRM user id → the forwarding number that rings them in the PBX settings."""
    if not isinstance(table, dict):
        problems.append(f'{where}: [forwarding] must be a table of user id = "forwarding number"')
        return {}
    result = {}
    for user, number in table.items():
        digits = forwarding_digits(number)
        if digits is None:
            problems.append(
                f"{where}: forwarding.{user} must be a number like 9161234567, 89161234567 or +79161234567, got {number!r}"
            )
        else:
            result[str(user)] = digits
    return result


def _users(users: Any, path: Path, numbers: tuple[str, ...], problems: list[str]) -> dict[str, str]:
    """``[users]``: CRM user id → the contract number that rings for them."""
    if not isinstance(users, dict):
        problems.append(f'INTEGRATION_CONFIG ({path}): [users] must be a table of user id = "contract number"')
        return {}
    result = {}
    for user, number in users.items():
        if not isinstance(number, str) or number not in numbers:
            problems.append(
                f"INTEGRATION_CONFIG ({path}): users.{user} must be one of OPERATOR_NUMBERS, got {number!r}"
            )
        else:
            result[str(user)] = number
    return result


def settings_or_exit(program: str) -> Settings:
    """``load_settings()``, or print every problem (one line each) and exit with code 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"{program} cannot start; fix these settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2) from None
