"""Settings read from the environment (and a ``.env`` file), validated at start-up.

``load_settings()`` collects every problem before failing, so a person fixing a deployment sees
all of them at once, one line each (``ConfigError.problems``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from dotenv import dotenv_values

from integration.errors import ConfigError

CONTRACT_NUMBER = re.compile(r"^\d{10}$")


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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.operator_timezone)


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
    if not value.strip().isdigit():
        raise ValueError("must be a whole number, 0 or more")
    return int(value)


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


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
]


def read_environment(environ: Mapping[str, str] | None = None, dotenv: str | Path = ".env") -> dict[str, str]:
    """The process environment over the values of a ``.env`` file (the environment wins)."""
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if Path(dotenv).is_file() else {}
    values.update(os.environ if environ is None else environ)
    return values


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
