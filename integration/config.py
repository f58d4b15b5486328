"""Settings: one marshmallow schema per concern, and the ``Settings`` object the code reads.

Each concern schema (``OperatorSchema``, ``DeploymentSchema``, …) loads a plain mapping of the
public names (``OPERATOR_NUMBERS``, ``REDIS_URL``, …): the environment today, a stored account
document tomorrow, the same way (values may be text, as in the environment, or TOML's numbers,
booleans and lists). A concern is either deployment-wide or per account (``ConcernSchema.scope``);
an account document may hold only the per-account ones. Each CRM plugin brings its own schema
(``integration.crm.<name>``); ``integration.settings.load_settings`` composes them all, collects
every problem (one line each, ``"NAME must …"``; a secret's value is never echoed) and builds
``Settings``: a flat facade whose attribute names the code has always used, plus ``crm_settings``
(each loaded CRM plugin's own settings object).

This module sits at the bottom of the layers: it imports no CRM and no loader.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from dotenv import dotenv_values
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

from integration.errors import InvalidPhoneNumber
from integration.phone import contract_number, forwarding_digits
from integration.rules import BusinessHours, Rule, parse_business_hours, parse_rules
from integration.secretbox import key_problem

CONTRACT_NUMBER = re.compile(r"^[0-9]{10}$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEPLOYMENT, ACCOUNT = "deployment", "account"


@dataclass(frozen=True)
class RateLimit:
    """``count`` requests per ``seconds``."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds} s"


@dataclass(frozen=True)
class Settings:
    """Validated settings (the concern schemas' values side by side). Secrets are kept out of
    ``repr``. The CRM's own settings are in ``crm_settings``, by plugin name."""

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
    account_concurrency: int = 2
    account_callback_concurrency: int = 4
    sync_interval: int = 60
    sync_overlap: int = 7200
    sync_first_window: int = 86400
    crm_backend: str = "local"
    # Plugin name → its settings object: the backend's always, another CRM's when any of its
    # names is set (the amoCRM widget works beside any backend). Secrets stay out of their repr.
    crm_settings: Mapping[str, Any] = field(default_factory=dict)
    match_multiple: str = "most_recent"
    match_unknown: str = "skip"
    integration_config: str = "integration.toml"
    recordings_dir: str = "var/recordings"
    recording_link_keys: tuple[str, ...] = field(default=(), repr=False)
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
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


# --- Fields: one per kind of value. Each explains a refusal with "must …" and never echoes it.


class SettingField(fields.Field):
    """A setting's value from text (the environment) or from a document's TOML/JSON value (a
    number, a boolean, a list): both are read as the same text, so both give the same result."""

    separator = ","  # joins a document's list into the text the environment would hold
    default_error_messages = {"required": "is required but not set", "null": "is required but not set"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            text = str(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(item, (str, int)) for item in value):
            text = self.separator.join(str(item) for item in value)
        else:
            raise ValidationError("must be text, a number, true/false or a list")
        try:
            return self.parse(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def parse(self, text: str) -> Any:
        raise NotImplementedError


def _ascii_whole(value: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²' and other scripts' digits)."""
    return value.strip().isascii() and value.strip().isdigit()


class Text(SettingField):
    def parse(self, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be empty")
        return text.strip()


class Url(SettingField):
    def parse(self, text: str) -> str:
        parts = urlsplit(text.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return text.strip().rstrip("/")


class RedisUrl(SettingField):
    def parse(self, text: str) -> str:
        if urlsplit(text.strip()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return text.strip()


class DatabaseUrl(SettingField):
    def parse(self, text: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", text.strip()):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return text.strip()


class ContractNumbers(SettingField):
    def parse(self, text: str) -> tuple[str, ...]:
        numbers = tuple(n.strip() for n in text.split(",") if n.strip())
        if not numbers:
            raise ValueError("must list at least one contract number")
        bad = [n for n in numbers if not CONTRACT_NUMBER.match(n)]
        if bad:
            raise ValueError(
                f"each number must be 10 digits without the leading 8 (e.g. 4990000000); got {', '.join(bad)}"
            )
        return tuple(dict.fromkeys(numbers))


class ContractNumber(SettingField):
    def parse(self, text: str) -> str:
        if not CONTRACT_NUMBER.match(text.strip()):
            raise ValueError("must be 10 digits without the leading 8 (e.g. 4990000000)")
        return text.strip()


class TimeZone(SettingField):
    def parse(self, text: str) -> str:
        try:
            ZoneInfo(text.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Moscow") from None
        return text.strip()


class Region(SettingField):
    def parse(self, text: str) -> str:
        region = text.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter region code such as RU")
        return region


class PositiveSeconds(SettingField):
    """A positive number (of seconds, or of requests per second for a CRM's pace)."""

    def parse(self, text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            number = 0.0
        if not number > 0:
            raise ValueError("must be a positive number of seconds")
        return number


class Whole(SettingField):
    """A whole number, 0 or more; ``unit`` words the refusal (``seconds``, ``days (0: …)``)."""

    def __init__(self, unit: str = "", *, at_least: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.unit, self.at_least = unit, at_least

    def parse(self, text: str) -> int:
        if not _ascii_whole(text) or int(text) < self.at_least:
            if not self.unit:
                raise ValueError("must be a whole number, 0 or more")
            least = f", at least {self.at_least}" if self.at_least else ""
            raise ValueError(f"must be a whole number of {self.unit}{least}")
        return int(text)


class Boolean(SettingField):
    def parse(self, text: str) -> bool:
        value = text.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")


class Choice(SettingField):
    def __init__(self, *allowed: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.allowed = allowed

    def parse(self, text: str) -> str:
        if text.strip() not in self.allowed:
            raise ValueError(f"must be one of: {', '.join(self.allowed)}")
        return text.strip()


class LogLevel(Choice):
    def __init__(self, **kwargs: Any):
        super().__init__("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", **kwargs)

    def parse(self, text: str) -> str:
        if text.strip().upper() not in self.allowed:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return text.strip().upper()


class WebhookSecrets(SettingField):
    """``whsec_…`` Standard Webhooks secrets, space-separated (rotation); ``single``: the first."""

    separator = " "

    def __init__(self, *, single: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.single = single

    def parse(self, text: str) -> tuple[str, ...] | str:
        secrets = tuple(text.split())
        for secret in secrets:
            if not secret.startswith("whsec_"):
                raise ValueError("must be whsec_… secrets separated by spaces")
            try:
                if not base64.b64decode(secret[6:] + "==", validate=False):
                    raise ValueError
            except (ValueError, binascii.Error):
                raise ValueError("must be whsec_ followed by base64") from None
        return secrets[0] if self.single else secrets


class LinkKeys(SettingField):
    separator = " "

    def parse(self, text: str) -> tuple[str, ...]:
        keys = tuple(text.split())
        if not keys or any(len(key) < 32 for key in keys):
            raise ValueError(
                "must be keys of at least 32 characters separated by spaces (e.g. from `openssl rand -hex 32`)"
            )
        return keys


class SecretKeys(SettingField):
    """Fernet keys (``integration.secretbox``), space-separated: the first seals, every one opens."""

    separator = " "

    def parse(self, text: str) -> tuple[str, ...]:
        keys = tuple(text.split())
        for number, key in enumerate(keys, start=1):
            problem = key_problem(key)
            if problem:
                raise ValueError(
                    f"must be keys of 32 url-safe base64 bytes separated by spaces: key {number} {problem}"
                )
        return keys


class Rate(SettingField):
    def parse(self, text: str) -> RateLimit:
        count, _, period = text.strip().partition("/")
        if not _ascii_whole(count) or period.strip().lower() not in _PERIODS:
            raise ValueError("must look like 3/hour (per second, minute, hour or day)")
        return RateLimit(int(count), _PERIODS[period.strip().lower()])


class Origins(SettingField):
    def parse(self, text: str) -> tuple[str, ...]:
        origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
        if any(o != "*" and urlsplit(o).scheme not in ("http", "https") for o in origins):
            raise ValueError("must be origins such as https://example.com, comma-separated (or *)")
        return origins


# --- Concern schemas. A field's data_key is the public name; its attribute the Settings name.


class ConcernSchema(Schema):
    """One concern's settings. Names of other concerns are left alone (``EXCLUDE``: the
    environment holds everything); an empty value counts as not set."""

    scope: ClassVar[str] = ACCOUNT

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_empty(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None and not (isinstance(v, str) and not v.strip())}

    @classmethod
    def names(cls) -> list[str]:
        """The public names this schema reads, in order."""
        return [f.data_key or name for name, f in cls().fields.items()]


class OperatorSchema(ConcernSchema):
    """The operator contract: its token, numbers, stand, and how we talk to it (per account)."""

    operator_authorization_token = Text(data_key="OPERATOR_AUTHORIZATION_TOKEN", required=True)
    operator_numbers = ContractNumbers(data_key="OPERATOR_NUMBERS", required=True)
    operator_api_url = Url(data_key="OPERATOR_API_URL")
    operator_timezone = TimeZone(data_key="OPERATOR_TIMEZONE")
    default_region = Region(data_key="DEFAULT_REGION")
    operator_connect_timeout = PositiveSeconds(data_key="OPERATOR_CONNECT_TIMEOUT")
    operator_read_timeout = PositiveSeconds(data_key="OPERATOR_READ_TIMEOUT")
    operator_max_retries = Whole(data_key="OPERATOR_MAX_RETRIES")


class DeploymentSchema(ConcernSchema):
    """Where the deployment keeps its data and how it runs (deployment-wide)."""

    scope = DEPLOYMENT
    redis_url = RedisUrl(data_key="REDIS_URL")
    database_url = DatabaseUrl(data_key="DATABASE_URL")
    public_url = Url(data_key="PUBLIC_URL")
    log_level = LogLevel(data_key="LOG_LEVEL")
    worker_class = Choice("simple", "fork", data_key="WORKER_CLASS")
    account_concurrency = Whole("jobs", at_least=1, data_key="ACCOUNT_CONCURRENCY")
    account_callback_concurrency = Whole("jobs", at_least=1, data_key="ACCOUNT_CALLBACK_CONCURRENCY")
    max_body_bytes = Whole("bytes", data_key="MAX_BODY_BYTES")
    trusted_proxies = Whole(data_key="TRUSTED_PROXIES")
    recordings_dir = Text(data_key="RECORDINGS_DIR")
    integration_config = Text(data_key="INTEGRATION_CONFIG")
    secret_keys = SecretKeys(data_key="SECRET_KEYS", required=True)


class WebhooksSchema(ConcernSchema):
    """Who may call us: inbound webhook signatures and the API's bearer token (per account)."""

    webhook_secrets = WebhookSecrets(data_key="WEBHOOK_SECRET")
    api_token = Text(data_key="API_TOKEN")


class CallsSchema(ConcernSchema):
    """Click-to-call and the public "call me back" form: expiry, debounce, toll-fraud flags,
    limits, browser origins (per account)."""

    callback_ttl = Whole("seconds", data_key="CALLBACK_TTL")
    click_to_call_debounce = Whole("seconds", data_key="CLICK_TO_CALL_DEBOUNCE")
    allow_premium_numbers = Boolean(data_key="ALLOW_PREMIUM_NUMBERS")
    allow_international_numbers = Boolean(data_key="ALLOW_INTERNATIONAL_NUMBERS")
    callback_request_from = ContractNumber(data_key="CALLBACK_REQUEST_FROM")
    callback_request_limit_per_number = Rate(data_key="CALLBACK_REQUEST_LIMIT_PER_NUMBER")
    callback_request_limit_per_ip = Rate(data_key="CALLBACK_REQUEST_LIMIT_PER_IP")
    callback_request_limit_total = Rate(data_key="CALLBACK_REQUEST_LIMIT_TOTAL")
    cors_origins = Origins(data_key="CORS_ORIGINS")


class SyncSchema(ConcernSchema):
    """Polling the call history (per account)."""

    sync_interval = Whole("seconds", at_least=1, data_key="SYNC_INTERVAL")
    sync_overlap = Whole("seconds", data_key="SYNC_OVERLAP")
    sync_first_window = Whole("seconds", data_key="SYNC_FIRST_WINDOW")


class MatchingSchema(ConcernSchema):
    """How a call finds its CRM contact (per account)."""

    match_multiple = Choice("most_recent", "all", "none", data_key="MATCH_MULTIPLE")
    match_unknown = Choice("skip", "create_contact", "create_lead", data_key="MATCH_UNKNOWN")


class RecordingsSchema(ConcernSchema):
    """Signed recording links and how long recordings are kept (deployment-wide)."""

    scope = DEPLOYMENT
    recording_link_keys = LinkKeys(data_key="RECORDING_LINK_KEYS")
    recording_link_ttl = Whole("seconds", data_key="RECORDING_LINK_TTL")
    recording_retention_days = Whole("days (0: keep forever)", data_key="RECORDING_RETENTION_DAYS")


# In the order their problems are listed. CRM_BACKEND and each CRM's schema come from the CRM
# registry (``integration.settings`` composes them).
CONCERNS: tuple[type[ConcernSchema], ...] = (
    OperatorSchema,
    DeploymentSchema,
    WebhooksSchema,
    CallsSchema,
    SyncSchema,
    MatchingSchema,
    RecordingsSchema,
)


def problems_of(error: ValidationError) -> list[str]:
    """One line per problem of a concern schema's ``ValidationError``: ``"NAME must …"``."""
    messages = error.messages if isinstance(error.messages, dict) else {"": error.messages}
    lines = []
    for name, texts in messages.items():
        for text in texts if isinstance(texts, list) else [texts]:
            lines.append(f"{name} {text}" if name and name != "_schema" else str(text))
    return lines


def read_environment(environ: Mapping[str, str] | None = None, dotenv: str | Path = ".env") -> dict[str, str]:
    """The process environment over the values of a ``.env`` file (the environment wins)."""
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if Path(dotenv).is_file() else {}
    values.update(os.environ if environ is None else environ)
    return values


def check_calls(values: Mapping[str, Any]) -> list[str]:
    """Checks across concerns: the form's number must be one of the contract's."""
    numbers = values.get("operator_numbers", ())
    if values.get("callback_request_from") and values["callback_request_from"] not in numbers:
        return ["CALLBACK_REQUEST_FROM must be one of OPERATOR_NUMBERS"]
    return []


def load_structured(source: Mapping[str, str], values: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """``INTEGRATION_CONFIG``'s tables, when the file is there (its absence is a problem only
    when the name is set)."""
    path = Path(values.get("integration_config", Settings.integration_config))
    if path.is_file():
        return _load_config(path, values.get("operator_numbers", ()), problems)
    if "INTEGRATION_CONFIG" in source and str(source["INTEGRATION_CONFIG"]).strip():
        problems.append(f"INTEGRATION_CONFIG names {path}, which does not exist")
    return {}


def _load_config(path: Path, numbers: tuple[str, ...], problems: list[str]) -> dict[str, Any]:
    """The TOML file: ``[users]``, ``[forwarding]``, ``[business_hours]`` and ``[[rules]]``."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"INTEGRATION_CONFIG ({path}) is not valid TOML: {exc}")
        return {}
    return load_tables(document, f"INTEGRATION_CONFIG ({path})", numbers, problems)


TABLES = ("users", "forwarding", "business_hours", "rules")


def load_tables(
    document: Mapping[str, Any], where: str, numbers: tuple[str, ...], problems: list[str]
) -> dict[str, Any]:
    """The structured settings of a TOML document (``INTEGRATION_CONFIG``, or an account file):
    ``[users]``, ``[forwarding]``, ``[business_hours]`` and ``[[rules]]``."""
    rules = parse_rules(document.get("rules"), problems, where)
    for rule in rules:
        for number in rule.numbers:
            if number not in numbers:
                problems.append(f"{where}: rule {rule.name!r}: {number} is not one of OPERATOR_NUMBERS")
    return {
        "users": _users(document.get("users", {}), where, numbers, problems),
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


def _users(users: Any, where: str, numbers: tuple[str, ...], problems: list[str]) -> dict[str, str]:
    """``[users]``: CRM user id → the contract number that rings for them."""
    if not isinstance(users, dict):
        problems.append(f'{where}: [users] must be a table of user id = "contract number"')
        return {}
    result = {}
    for user, number in users.items():
        if not isinstance(number, str) or number not in numbers:
            problems.append(f"{where}: users.{user} must be one of OPERATOR_NUMBERS, got {number!r}")
        else:
            result[str(user)] = number
    return result
