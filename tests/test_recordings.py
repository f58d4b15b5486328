"""Recordings: storage, signed links, the fetch job's paths, serving with Range, retention, the CLI."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integration.errors import InvalidResponse, OperatorUnavailable
from integration.ledger.db import make_engine
from integration.ledger.recordings import RecordingLedger, public_id
from integration.ledger.tables import calls
from integration.recordings.fetch import WAIT_WINDOW, fetch_recording
from integration.recordings.links import LinkSigner
from integration.recordings.storage import LocalStore
from integration.runtime import Runtime
from integration.services.calls import run_sync
from integration.services.recordings import clean_recordings
from integration.services.recordings import fetch_recording as fetch_recording_now
from integration.settings import load_settings
from tests.conftest import LINK_KEY, ROOT

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OTHER_KEY = "another-recording-link-key-9876543210fedcba"


# --- storage and links -------------------------------------------------------------------------


def test_a_file_becomes_visible_only_when_complete(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(RuntimeError), store.writer("a.mp3") as sink:
        sink.write(b"ID3 half a recording")
        raise RuntimeError("the download broke")
    assert not store.exists("a.mp3") and list(tmp_path.iterdir()) == []
    with store.writer("a.mp3") as sink:
        sink.write(b"ID3 whole")
    assert store.open("a.mp3").read() == b"ID3 whole" and [p.name for p in tmp_path.iterdir()] == ["a.mp3"]
    with pytest.raises(ValueError):
        store.path("../etc/passwd")


def test_abandoned_partial_files_are_removed_once_old(tmp_path):
    (tmp_path / ".x.mp3.abc.partial").write_bytes(b"ID3")
    store = LocalStore(tmp_path)
    assert store.remove_abandoned(older_than=3600) == 0
    assert store.remove_abandoned(older_than=-1) == 1 and list(tmp_path.iterdir()) == []


def _query(url: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))


def test_links_verify_with_every_key_and_only_unchanged():
    old = LinkSigner([OTHER_KEY], "https://bridge.example")
    rotated = LinkSigner([LINK_KEY, OTHER_KEY], "https://bridge.example")
    url = old.url("abc", 0)
    assert url.startswith("https://bridge.example/recordings/abc.mp3?sig=")
    sig = _query(url)["sig"]
    assert rotated.verify("abc", sig, None, time.time())  # a link from before the rotation still works
    assert rotated.verify("abc", _query(rotated.url("abc", 0))["sig"], None, time.time())
    assert not rotated.verify("abd", sig, None, time.time())
    assert not rotated.verify("abc", sig[:-1] + ("A" if sig[-1] != "A" else "B"), None, time.time())
    assert not rotated.verify("abc", None, None, time.time())
    assert (
        not LinkSigner([], "https://x").verify("abc", sig, None, 0) and LinkSigner([], "https://x").url("a", 0) is None
    )


def test_expiring_links():
    signer = LinkSigner([LINK_KEY], "https://b", ttl=60)
    params = _query(signer.url("abc", 1000))
    assert params["exp"] == "1060"
    assert signer.verify("abc", params["sig"], params["exp"], 1059)
    assert not signer.verify("abc", params["sig"], params["exp"], 1061)
    assert not signer.verify("abc", params["sig"], "99999999", 1000)  # a longer life is not for sale


# --- the fetch job ------------------------------------------------------------------------------


@pytest.fixture
def rt(service_env, redis_conn, tmp_path):
    env = service_env | {"RECORDINGS_DIR": str(tmp_path / "recordings"), "RECORDING_LINK_KEYS": LINK_KEY}
    runtime = Runtime(load_settings(env, dotenv="/nonexistent/.env"))
    yield runtime
    runtime.engine.dispose()


def _add_call(rt: Runtime, record_file_id: str) -> str:
    call_id = f"rec:{record_file_id}"
    with rt.engine.begin() as connection:
        connection.execute(
            calls.insert().values(
                id=call_id, line="4990000000", direction="inbound", status="answered", started_at=NOW,
                duration=30, ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False,
                record_file_id=record_file_id, first_seen_at=NOW,
            )
        )  # fmt: skip
    rt.recording_ledger.ensure([(call_id, record_file_id)], datetime.now(UTC))
    return call_id


def test_a_recording_is_stored_once_with_its_hash(rt, control):
    spec = control.post("recordings", {"size": 200_000, "seed": 4})
    call_id = _add_call(rt, spec["id"])
    assert fetch_recording_now(rt, call_id) == "stored"
    recording = rt.recording_ledger.get(call_id)
    assert (recording.size, recording.sha256, recording.attempts) == (200_000, spec["sha256"], 1)
    stored = rt.recording_store.open(recording.storage_key).read()
    assert hashlib.sha256(stored).hexdigest() == spec["sha256"] and stored[:3] == b"ID3"
    assert fetch_recording_now(rt, call_id) == "stored"  # a second run downloads nothing
    assert control.get("stats")["request/getcallrecordfile"] == 1


def test_not_ready_yet_is_retried_later_then_stored(rt, control):
    spec = control.post("recordings", {"size": 5000, "ready_in": 3600})
    call_id = _add_call(rt, spec["id"])
    assert (
        fetch_recording(call_id, ledger=rt.recording_ledger, operator=rt.operator, store=rt.recording_store, now=NOW)
        == "pending"
    )
    recording = rt.recording_ledger.get(call_id)
    assert recording.last_error == "not ready yet" and recording.next_attempt_at > NOW and recording.attempts == 1
    assert not list(Path(rt.settings.recordings_dir).iterdir())
    control.post("clock", {"shift": 7200})
    assert fetch_recording_now(rt, call_id) == "stored"


def test_operator_faults_are_retried_not_failed(rt, control):
    spec = control.post("recordings", {"size": 5000})
    call_id = _add_call(rt, spec["id"])
    control.post("faults", {"method": "request/getcallrecordfile", "kind": "500", "count": 10})
    rt.operator.sleep = lambda seconds: None
    assert fetch_recording_now(rt, call_id) == "pending"
    assert "HTTP 500" in rt.recording_ledger.get(call_id).last_error


class BrokenOperator:
    def __init__(self, error: Exception):
        self.error = error

    def download_recording(self, record_file_id, sink):
        sink.write(b"<html>")
        raise self.error


def test_an_answer_that_is_not_audio_fails_at_once_and_visibly(rt):
    call_id = _add_call(rt, "f00d")
    broken = BrokenOperator(InvalidResponse("the recording is not audio (no ID3 tag or MPEG frame header)"))
    status = fetch_recording(call_id, ledger=rt.recording_ledger, operator=broken, store=rt.recording_store, now=NOW)
    recording = rt.recording_ledger.get(call_id)
    assert status == recording.status == "failed" and "not audio" in recording.last_error
    assert rt.recording_ledger.counts() == {"failed": 1}
    assert not list(Path(rt.settings.recordings_dir).iterdir())


def test_faults_give_up_after_the_wait_window(rt):
    call_id = _add_call(rt, "beef")
    broken = BrokenOperator(OperatorUnavailable("the operator failed (HTTP 503)"))
    later = rt.recording_ledger.get(call_id).created_at + WAIT_WINDOW
    status = fetch_recording(call_id, ledger=rt.recording_ledger, operator=broken, store=rt.recording_store, now=later)
    assert status == "failed" and rt.recording_ledger.get(call_id).status == "failed"


def test_the_ledger_on_both_databases(database_url):
    ledger = RecordingLedger(make_engine(database_url))
    with ledger.engine.begin() as connection:
        connection.execute(
            calls.insert().values(
                id="rec:1", line="4990000000", direction="inbound", status="answered", started_at=NOW,
                duration=3, ext_raw="101", ext_internal=True, record_file_id="1", first_seen_at=NOW,
            )
        )  # fmt: skip
    assert ledger.missing() == [("rec:1", "1")]
    ledger.ensure(ledger.missing(), NOW)
    ledger.ensure([("rec:1", "1")], NOW)  # twice: still one
    assert ledger.missing() == [] and [r.call_id for r in ledger.due(NOW)] == ["rec:1"]
    assert ledger.by_public_id(public_id("rec:1")).record_file_id == "1"
    assert ledger.mark_stored("rec:1", 10, "ab" * 32, "x.mp3", NOW) and not ledger.mark_stored("rec:1", 1, "", "", NOW)
    assert ledger.stored_for(["rec:1", "rec:2"])["rec:1"].size == 10
    assert [r.call_id for r in ledger.unannounced()] == ["rec:1"]
    ledger.mark_announced("rec:1")
    assert ledger.unannounced() == [] and [r.call_id for r in ledger.stored_before(NOW + timedelta(1))] == ["rec:1"]
    assert ledger.mark_deleted("rec:1", NOW) and ledger.counts() == {"deleted": 1}
    ledger.engine.dispose()


# --- serving ------------------------------------------------------------------------------------


@pytest.fixture
def served(rt, control, app):
    """A stored recording of a synced sandbox call, and its signed URL path."""
    control.post("calls/generate", {"count": 6, "days": 0.5, "recording_ratio": 1.0, "recording_size": 3000, "seed": 2})
    run_sync(rt)
    truth = next(c for c in control.get("calls") if c["record_file_id"])
    call_id = f"rec:{truth['record_file_id']}"
    assert fetch_recording_now(rt, call_id) == "stored"
    url = rt.recording_url(call_id)
    return url[url.index("/recordings/") :], truth, call_id


@pytest.fixture
def app(rt):
    from integration import create_app

    return create_app(rt.settings)


def test_the_signed_link_serves_the_sandbox_bytes_with_ranges(served, app):
    path, truth, _ = served
    http = app.test_client()
    whole = http.get(path)
    assert whole.status_code == 200 and whole.mimetype == "audio/mpeg"
    assert hashlib.sha256(whole.data).hexdigest() == truth["recording_sha256"]
    assert whole.headers["Accept-Ranges"] == "bytes" and truth["recording_sha256"] in whole.headers["ETag"]
    size = len(whole.data)
    tail = http.get(path, headers={"Range": "bytes=100-"})
    assert tail.status_code == 206 and tail.data == whole.data[100:]
    assert tail.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    suffix = http.get(path, headers={"Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.data == whole.data[-500:]
    assert suffix.headers["Content-Range"] == f"bytes {size - 500}-{size - 1}/{size}"
    assert http.get(path, headers={"If-None-Match": whole.headers["ETag"]}).status_code == 304
    assert http.get(path, headers={"Range": f"bytes={size + 10}-"}).status_code == 416


def test_unreadable_ranges_get_the_whole_file(served, app):
    """RFC 9110 §14.2: a Range header the server cannot read is ignored: 200, not 416."""
    path, truth, _ = served
    http = app.test_client()
    for header in ("items=0-10", "bytes=abc", "bytes=", "bytes=5-2", "bytes=1-2,,x", "bytes=٠-٥"):
        whole = http.get(path, headers={"Range": header})
        assert whole.status_code == 200, header
        assert hashlib.sha256(whole.data).hexdigest() == truth["recording_sha256"]


def test_bad_signatures_are_403_whether_or_not_the_recording_exists(served, app):
    path, _, _ = served
    http = app.test_client()
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for url in (tampered, path.split("?")[0], "/recordings/" + "0" * 32 + ".mp3?sig=abc"):
        answer = http.get(url)
        assert answer.status_code == 403 and answer.mimetype == "application/problem+json"


def test_a_signed_link_to_a_deleted_recording_is_404_after_retention(served, app, rt, monkeypatch):
    path, _, call_id = served
    import integration.services.recordings as recordings

    object.__setattr__(rt.settings, "recording_retention_days", 1)
    monkeypatch.setattr(recordings, "utc_now", lambda: datetime.now(UTC) + timedelta(days=2))
    assert clean_recordings(rt) == 1
    assert rt.recording_ledger.get(call_id).status == "deleted" and not list(Path(rt.settings.recordings_dir).iterdir())
    answer = app.test_client().get(path)
    assert answer.status_code == 404 and answer.mimetype == "application/problem+json"


def test_the_local_crm_shows_the_link_on_the_activity(served, app, rt):
    from integration.services.deliveries import deliver_call as deliver_now
    from tests.conftest import API_TOKEN

    _, _, call_id = served
    assert deliver_now(rt, call_id) == "delivered"
    items = app.test_client().get("/api/activities", headers={"Authorization": f"Bearer {API_TOKEN}"}).json["items"]
    by_call = {item["call_id"]: item for item in items}
    assert by_call[call_id]["recording_url"] == rt.recording_url(call_id)


# --- the CLI, and a process killed mid-download --------------------------------------------------


def test_killed_mid_download_leaves_nothing_visible_and_the_backfill_finishes(rt, control, service_env, tmp_path):
    spec = control.post("recordings", {"size": 60_000_000, "seed": 9})
    call_id = _add_call(rt, spec["id"])
    env = service_env | {"RECORDINGS_DIR": rt.settings.recordings_dir, "RECORDING_LINK_KEYS": LINK_KEY}
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    code = (
        "from integration.jobs import fetch_recording; from integration.runtime import Runtime; "
        f"from integration.settings import load_settings; fetch_recording(Runtime(load_settings()), {call_id!r})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=full_env, start_new_session=True)
    folder = Path(rt.settings.recordings_dir)
    deadline = time.time() + 60
    while not (folder.is_dir() and any(p.stat().st_size > 1_000_000 for p in folder.iterdir())):
        assert time.time() < deadline and process.poll() is None, "the download never started"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    assert not rt.recording_store.exists(f"{public_id(call_id)}.mp3")
    assert all(p.name.endswith(".partial") for p in folder.iterdir())
    assert rt.recording_ledger.get(call_id).status == "pending"
    day = NOW.astimezone(rt.settings.tz).date().isoformat()
    from tests.conftest import run_cli

    result = run_cli("recordings", "fetch", "--date", day, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 call(s) with a recording; 1 stored" in result.stdout
    recording = rt.recording_ledger.get(call_id)
    assert recording.status == "stored" and recording.sha256 == spec["sha256"]


def test_the_cli_refuses_a_bad_date(service_env):
    from tests.conftest import run_cli

    result = run_cli("recordings", "fetch", "--date", "2026-02-30", env=service_env)
    assert result.returncode != 0 and "not a calendar date" in result.stderr
