"""Numbers read from the console's query strings and forms: a bad one falls back, never a 500."""

from __future__ import annotations

from flask import request


def whole(text: str | None, most: int, default: int = 0) -> int:
    """``text`` as a whole number within ``0 … most`` (ASCII digits only), else ``default``."""
    if text and text.isascii() and text.isdigit() and len(text) <= len(str(most)) and int(text) <= most:
        return int(text)
    return default


def page_number() -> int:
    """The ``page`` query parameter (1 … 999,999; 1 when missing or bad)."""
    return whole(request.args.get("page"), 999_999, 1) or 1
