"""The call listing's filters, read from query parameters: shared by ``/api/calls`` and the
console's calls page, so both take the same values and refuse the same way (a
``ValidationError`` naming the field)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import ValidationError

from integration.config import Settings
from integration.ledger.calls import DELIVERY_STATES, call_filters
from integration.phone import parse_phone
from integration.timeutil import parse_moment
from integration.web.inputs import reading

CHOICES = {
    "direction": ("inbound", "outbound"),
    "status": ("answered", "missed", "voicemail"),
    "delivery": DELIVERY_STATES,
}


def call_conditions(args: Mapping[str, str], settings: Settings) -> list:
    """SQL conditions for ``line``, ``number`` (any format), ``direction``, ``status``,
    ``delivery``, ``since`` and ``until`` (YYYY-MM-DD in the operator's zone, or ISO 8601).
    Every field's problem is named at once."""
    problems: dict[str, list[str]] = {}

    def read(name: str, parse: Callable[[str], Any]) -> Any:
        if not args.get(name):
            return None
        try:
            with reading(name):
                return parse(args[name])
        except ValidationError as exc:
            problems.update(exc.normalized_messages())
            return None

    def one_of(name: str) -> Callable[[str], str]:
        def parse(value: str) -> str:
            if value not in CHOICES[name]:
                raise ValueError(f"must be one of: {', '.join(CHOICES[name])}")
            return value

        return parse

    def line(value: str) -> str:
        if value not in settings.operator_numbers:
            raise ValueError("must be one of OPERATOR_NUMBERS")
        return value

    filters = {
        "line": read("line", line),
        "match_key": read("number", lambda value: parse_phone(value, settings.default_region).match_key),
        "direction": read("direction", one_of("direction")),
        "status": read("status", one_of("status")),
        "delivery": read("delivery", one_of("delivery")),
        "since": read("since", lambda value: parse_moment(value, settings.tz)),
        "until": read("until", lambda value: parse_moment(value, settings.tz, end=True)),
    }
    if problems:
        raise ValidationError(problems)
    return call_filters(**filters)
