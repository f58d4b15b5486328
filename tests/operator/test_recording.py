"""The streaming base64-in-JSON decoder, whatever the chunk boundaries."""

from __future__ import annotations

import base64
import json
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.operator.recording import RecordingDecoder, RecordingFormatError, looks_like_mp3

MP3_HEAD = b"\xff\xfb\x90\x64"


def document(content: bytes, *, escape: bool = False, wrap: int = 0, before: str = "", after: str = "") -> bytes:
    encoded = base64.b64encode(content).decode()
    if wrap:
        encoded = "\\r\\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap))
    if escape:
        encoded = encoded.replace("/", "\\/")
    head = json.dumps(
        {"error": {"errorCode": 0, "errorMessage": 'a "quoted" \\ fileContent'}, "result": {"file_NAME": "x.mp3"}}
    )
    return (head[:-2] + f', {before}"fileContent" :  "{encoded}"{after}}}}}').encode()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@settings(max_examples=200, deadline=None)
@given(
    content=st.binary(min_size=0, max_size=2000).map(lambda b: MP3_HEAD + b),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    escape=st.booleans(),
    wrap=st.sampled_from([0, 4, 76]),
)
def test_any_chunking_decodes_exactly(content, cuts, escape, wrap):
    raw = document(content, escape=escape, wrap=wrap, before='"other": "fileContent", ', after=', "requestHash": "a=="')
    sink = BytesIO()
    decoder = RecordingDecoder(sink)
    envelope = decoder.feed_all(split(raw, cuts))
    assert sink.getvalue() == content
    assert decoder.size == len(content)
    assert envelope["result"]["file_NAME"] == "x.mp3"
    assert envelope["result"]["fileContent"] == ""
    assert envelope["result"]["requestHash"] == "a=="
    assert envelope["error"]["errorMessage"] == 'a "quoted" \\ fileContent'


def test_non_audio_is_refused_early():
    decoder = RecordingDecoder(BytesIO())
    with pytest.raises(RecordingFormatError, match="not audio"):
        decoder.feed_all([document(b"PK\x03\x04 a zip file")])


def test_invalid_base64_is_refused():
    with pytest.raises(RecordingFormatError, match="base64"):
        RecordingDecoder(BytesIO()).feed_all([b'{"fileContent": "ID3!!!!"}'])


def test_truncated_answer_is_refused():
    with pytest.raises(RecordingFormatError, match="ended"):
        RecordingDecoder(BytesIO()).feed_all([document(MP3_HEAD * 10)[:40]])


def test_answer_without_content_field_is_bounded():
    decoder = RecordingDecoder(BytesIO())
    envelope = decoder.feed_all([b'{"error": {"errorCode": 5, "errorMessage": "no such record"}, "result": null}'])
    assert not decoder.found_content and envelope["error"]["errorCode"] == 5


def test_null_content_is_not_mistaken_for_a_string():
    decoder = RecordingDecoder(BytesIO())
    envelope = decoder.feed_all([b'{"result": {"fileContent": null, "file_NAME": "a"}}'])
    assert not decoder.found_content and envelope["result"]["file_NAME"] == "a"


@pytest.mark.parametrize(
    ("head", "ok"),
    [(b"ID3\x04", True), (b"\xff\xfb\x90\x64", True), (b"\xff\xf3\x00\x00", True), (b"RIFF", False), (b"<htm", False)],
)
def test_mp3_sniffing(head, ok):
    assert looks_like_mp3(head) is ok
