"""Reading what a client sent. One rule: **an exception while reading input is the client's 4xx**.

Query parameters, headers and bodies are read inside ``reading(field)``, which turns any failure
of a parser (a superscript digit, a 30-digit offset, a year 0, a body nested 10,000 deep) into a
422 problem naming the field, never a 500. Bodies are parsed by ``json_body``; chunked bodies are
held to ``MAX_BODY_BYTES`` by ``ChunkedBodyLimit`` before Flask reads them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from marshmallow import ValidationError

from integration.errors import InvalidPhoneNumber
from integration.web.errors import Problem

MAX_JSON_DEPTH = 32
_WHOLE = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() also takes '²' and '٣'


@contextmanager
def reading(field: str) -> Iterator[None]:
    """Any error raised inside becomes a 422 naming ``field``."""
    try:
        yield
    except (ValidationError, Problem):
        raise
    except InvalidPhoneNumber as exc:
        raise ValidationError({field: [exc.reason]}) from None
    except UnicodeError:
        raise ValidationError({field: ["contains characters this field does not take"]}) from None
    except ValueError as exc:  # our parsers' messages are written for the sender
        raise ValidationError({field: [str(exc)]}) from None
    except (ArithmeticError, LookupError, TypeError, RecursionError):
        raise ValidationError({field: ["is not a value this field takes (out of range or malformed)"]}) from None


def whole_number(raw: str, low: int, high: int) -> int:
    """``raw`` as a whole number in ``[low, high]``, written in 1–12 ASCII digits."""
    if not _WHOLE.fullmatch(raw) or not low <= int(raw) <= high:
        raise ValueError(f"must be a whole number from {low} to {high}")
    return int(raw)


def json_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object nested at most ``MAX_JSON_DEPTH`` deep (400 / 422 otherwise)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise Problem(400, "Malformed JSON", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _body_problem("must be a JSON object")
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise _too_deep()
    return data


def _too_deep() -> Problem:
    return _body_problem(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")


def _body_problem(message: str) -> Problem:
    return Problem(422, "Invalid request", f"the body {message}", errors={"body": [message]})


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


class ChunkedBodyLimit:
    """WSGI middleware: a body sent without ``Content-Length`` (chunked) is read up to ``limit``
    bytes here; a longer one is answered 413. (Werkzeug would silently cut it at the limit.)"""

    def __init__(self, app, limit: int, too_large):
        self.app, self.limit, self.too_large = app, limit, too_large

    def __call__(self, environ: dict, start_response):
        if not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            body = _read_up_to(environ["wsgi.input"], self.limit + 1)
            if len(body) > self.limit:
                return self.too_large(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["wsgi.input_terminated"]
            environ.pop("HTTP_TRANSFER_ENCODING", None)  # else Werkzeug ignores the length
        return self.app(environ, start_response)


def _read_up_to(stream, size: int) -> bytes:
    """Up to ``size`` bytes of ``stream`` (a raw stream's ``read`` may return one chunk only)."""
    parts: list[bytes] = []
    while size > 0 and (part := stream.read(size)):
        parts.append(part)
        size -= len(part)
    return b"".join(parts)
