"""Streaming decode of ``getcallrecordfile``: base64 mp3 inside JSON, never held whole.

The answer is scanned as it arrives. Everything except the ``fileContent`` string is kept (it is
small) and parsed as JSON at the end; the ``fileContent`` string is base64-decoded in chunks
straight into the caller's sink. Peak memory is one network chunk, not the recording.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Iterable
from typing import BinaryIO

from integration.errors import IntegrationError
from integration.operator.schemas import RECORD_CONTENT_FIELD

MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
_KEY = RECORD_CONTENT_FIELD.encode()
_OUTSIDE, _STRING, _CONTENT = range(3)


class RecordingFormatError(IntegrationError, ValueError):
    """The answer is not a well-formed recording document."""


def looks_like_mp3(head: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start."""
    return head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


class RecordingDecoder:
    """Feed it the raw answer in chunks; it writes the decoded mp3 to ``sink``."""

    def __init__(self, sink: BinaryIO):
        self.sink = sink
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.found_content = False
        self._state = _OUTSIDE
        self._envelope: list[bytes] = []
        self._envelope_size = 0
        self._string = bytearray()
        self._after_key: bytearray | None = None  # text seen after a "fileContent" key
        self._b64_carry = b""
        self._escape_carry = b""
        self._head = b""

    def feed_all(self, chunks: Iterable[bytes]) -> dict:
        for chunk in chunks:
            if chunk:
                self.feed(chunk)
        return self.close()

    def feed(self, chunk: bytes) -> None:
        pos, end = 0, len(chunk)
        while pos < end:
            if self._state == _CONTENT:
                pos = self._feed_content(chunk, pos)
            elif self._state == _STRING:
                pos = self._feed_string(chunk, pos)
            else:
                pos = self._feed_outside(chunk, pos)

    def close(self) -> dict:
        """Finish; return the envelope (with ``fileContent`` emptied) parsed as JSON."""
        if self._state != _OUTSIDE:
            raise RecordingFormatError("the answer ended in the middle of a string")
        try:
            document = json.loads(b"".join(self._envelope))
        except ValueError:
            raise RecordingFormatError("the answer is not valid JSON") from None
        if not isinstance(document, dict):
            raise RecordingFormatError("the answer is not a JSON object")
        return document

    # -- states --

    def _keep(self, data: bytes) -> None:
        self._envelope_size += len(data)
        if self._envelope_size > MAX_ENVELOPE_BYTES:
            raise RecordingFormatError(
                f"no '{RECORD_CONTENT_FIELD}' field found in the first {MAX_ENVELOPE_BYTES} bytes"
            )
        self._envelope.append(data)

    def _feed_outside(self, chunk: bytes, pos: int) -> int:
        quote = chunk.find(b'"', pos)
        text = chunk[pos:] if quote < 0 else chunk[pos:quote]
        self._keep(text)
        if self._after_key is not None:
            self._after_key += text
        if quote < 0:
            return len(chunk)
        if self._after_key is not None and self._after_key.strip() == b":":
            self._state = _CONTENT
            self.found_content = True
            self._keep(b'"')
        else:
            self._state = _STRING
            self._string.clear()
        self._after_key = None
        return quote + 1

    def _feed_string(self, chunk: bytes, pos: int) -> int:
        while True:
            quote = chunk.find(b'"', pos)
            if quote < 0:
                self._string += chunk[pos:]
                return len(chunk)
            self._string += chunk[pos:quote]
            backslashes = len(self._string) - len(self._string.rstrip(b"\\"))
            if backslashes % 2:  # an escaped quote inside the string
                self._string += b'"'
                pos = quote + 1
                continue
            self._keep(b'"' + bytes(self._string) + b'"')
            self._after_key = bytearray() if self._string == _KEY else None
            self._state = _OUTSIDE
            return quote + 1

    def _feed_content(self, chunk: bytes, pos: int) -> int:
        quote = chunk.find(b'"', pos)
        segment = chunk[pos:] if quote < 0 else chunk[pos:quote]
        self._decode(segment, final=quote >= 0)
        if quote < 0:
            return len(chunk)
        self._keep(b'"')
        self._state = _OUTSIDE
        return quote + 1

    def _decode(self, segment: bytes, final: bool) -> None:
        data = self._escape_carry + segment
        self._escape_carry = b""
        if b"\\" in data:
            if data.endswith(b"\\") and not final:
                self._escape_carry, data = b"\\", data[:-1]
            # JSON may escape '/' and break long base64 into lines.
            data = data.replace(b"\\/", b"/").replace(b"\\n", b"").replace(b"\\r", b"")
            if b"\\" in data:
                raise RecordingFormatError("unexpected escape sequence in the recording's base64")
        data = self._b64_carry + data
        usable = len(data) if final else len(data) - len(data) % 4
        self._b64_carry = data[usable:]
        if not usable:
            return
        try:
            decoded = binascii.a2b_base64(data[:usable], strict_mode=True)
        except binascii.Error:
            raise RecordingFormatError("the recording's content is not valid base64") from None
        if self.size < 4:
            self._head += decoded[:4]
            if len(self._head) >= 4 and not looks_like_mp3(self._head):
                raise RecordingFormatError("the recording is not audio (no ID3 tag or MPEG frame header)")
        self.sha256.update(decoded)
        self.size += len(decoded)
        self.sink.write(decoded)
