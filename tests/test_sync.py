"""Call history → ledger: keys, mapping, cursor, overlap, backfill, one at a time."""

from __future__ import annotations

import gc
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from integration.errors import OperatorUnavailable
from integration.ledger.callbacks import CallbackLedger
from integration.ledger.calls import CallLedger
from integration.ledger.db import make_engine, upgrade
from integration.models import Call, CallbackRequest, CallbackStatus, CallRow, CallStatus, Direction
from integration.runtime import Runtime
from integration.services import calls
from integration.settings import load_settings
from integration.sync import (
    call_from_row,
    call_key,
    fewer_young_collections,
    link_callbacks,
    store_calls,
    sync_calls,
)
from tests.conftest import run_cli

T = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def row(**kw) -> CallRow:
    values = dict(started_at=T, line="4990000000", direction=Direction.INBOUND, ext_num="89161234567", duration=30)
    return CallRow(**(values | kw))


# --- mapping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "e164", "internal"),
    [
        ("89161234567", "+79161234567", False),
        ("79161234567", "+79161234567", False),
        ("+79161234567", "+79161234567", False),
        ("9161234567", "+79161234567", False),
        ("810442079460958", "+442079460958", False),
        ("101", None, True),
        ("8916123456", "+78916123456", False),
        ("anonymous", None, False),
        ("", None, False),
    ],
)
def test_every_ext_num_format_is_normalised_and_the_raw_form_kept(ext, e164, internal):
    call = call_from_row(row(ext_num=ext), "RU")
    assert (call.ext_e164, call.ext_internal, call.ext_raw) == (e164, internal, ext)


@pytest.mark.parametrize(
    ("duration", "is_read", "status"),
    [
        (30, None, CallStatus.ANSWERED),
        (0, None, CallStatus.MISSED),
        (0, 0, CallStatus.VOICEMAIL),
        (0, 1, CallStatus.VOICEMAIL),
    ],
)
def test_status(duration, is_read, status):
    assert call_from_row(row(duration=duration, is_read=is_read), "RU").status is status


def test_every_field_of_a_row_lands_in_its_own_field():
    source = row(line="4950000001", direction=Direction.OUTBOUND, ext_num="+79161234567", duration=0, is_read=1)
    source.service, source.record_file_id = "local", "bec3e80f"
    call = call_from_row(source, "RU")
    assert (call.id, call.line, call.direction, call.status) == (
        "rec:bec3e80f",
        "4950000001",
        Direction.OUTBOUND,
        "voicemail",
    )
    assert (call.started_at, call.duration, call.ext_raw, call.ext_e164) == (T, 0, "+79161234567", "+79161234567")
    assert (call.ext_internal, call.service, call.record_file_id, call.is_read) == (False, "local", "bec3e80f", 1)
    assert call.callback_request_id is None


def test_keys_never_change_between_releases():
    """The ledger, the CRM ids and webhook-ids all hang on these: a new formula would log every call again."""
    assert call_key(row()) == "h:88c3b142771548d6dd92a8e7f80559516074723e"
    quiet = row(direction=Direction.OUTBOUND, line=None, ext_num="101", duration=0)
    assert call_key(quiet) == "h:ffb4dfc35a7e5c29000e4f69216ca412c415d566"


def test_keys_are_stable_and_never_number_and_time_alone():
    assert call_key(row()) == call_key(row())
    assert call_key(row(record_file_id="bec3e80f")) == "rec:bec3e80f"
    variants = [
        row(line="4950000000"),
        row(direction=Direction.OUTBOUND),
        row(duration=31),
        row(ext_num="+79161234567"),
        row(started_at=T + timedelta(seconds=1)),
    ]
    assert len({call_key(v) for v in variants} | {call_key(row())}) == len(variants) + 1


# --- the ledger -------------------------------------------------------------------------------


@pytest.fixture
def ledger(database_url):
    engine = make_engine(database_url)
    yield CallLedger(engine)
    engine.dispose()


def test_insert_new_reports_only_new_calls(ledger):
    first = call_from_row(row(), "RU")
    second = call_from_row(row(duration=99), "RU")
    assert ledger.insert_new([first, first], T) == [first.id]
    assert ledger.insert_new([first, second], T) == [second.id]
    assert ledger.get(first.id) == first
    assert isinstance(ledger.get(first.id), Call) and ledger.count() == 2


def test_a_big_batch_is_inserted_in_several_statements_and_reports_its_new_calls_in_order(ledger):
    calls = [call_from_row(row(duration=n + 1), "RU") for n in range(6000)]  # > 2 SQLite statements
    known = calls[::3]
    assert ledger.insert_new(known, T) == [c.id for c in known]
    assert ledger.insert_new(calls, T) == [c.id for i, c in enumerate(calls) if i % 3]
    assert ledger.count() == 6000 and ledger.get(calls[-1].id) == calls[-1]


def test_two_writers_of_overlapping_batches_each_report_only_what_they_stored(ledger):
    for round_ in range(3):
        calls = [call_from_row(row(duration=n + 1, line=f"49900000{round_:02d}"), "RU") for n in range(4000)]
        reported, start = [], threading.Barrier(2)

        def write(batch, reported=reported, start=start):
            start.wait()
            reported.append(ledger.insert_new(batch, T))

        writers = [threading.Thread(target=write, args=(batch,)) for batch in (calls[:2500], calls[1500:])]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        first, second = (set(ids) for ids in reported)
        assert first | second == {c.id for c in calls} and not first & second


def test_a_batch_of_more_keys_than_one_statement_takes(ledger):
    calls = [call_from_row(row(duration=n + 1), "RU") for n in range(33_000)]  # > SQLite's 32,766 parameters
    assert len(ledger.insert_new(calls[:20_000], T)) == 20_000
    assert ledger.insert_new(calls, T) == [c.id for c in calls[20_000:]]


def test_every_field_of_a_batch_comes_back_as_it_went_in(ledger):
    calls = [
        call_from_row(
            row(
                started_at=T + timedelta(seconds=n, microseconds=n),
                line=("4990000000", "4950000000")[n % 2],
                direction=(Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN)[n % 3],
                ext_num=("89161234567", "101", "810442079460958", "anonymous", "")[n % 5],
                duration=(0, 7, 2**31 - 1)[n % 3],
                service=(None, "local", "international")[n % 3],
                record_file_id=None if n % 4 else f"bec3{n}",
                is_read=(None, 0, 1)[n % 3],
            ),
            "RU",
        )
        for n in range(300)
    ]
    assert ledger.insert_new(calls, T) == [c.id for c in calls]
    assert sorted(ledger.between(T, T + timedelta(hours=1)), key=lambda c: c.id) == sorted(calls, key=lambda c: c.id)


def test_stored_chunk_by_chunk_each_call_is_new_once_and_chunks_come_in_order(ledger):
    rows = [row(duration=n + 1) for n in range(10)]
    rows.append(rows[1])  # the operator repeating a row in a later chunk
    chunks = list(store_calls(rows, ledger, "RU", T, chunk=3))
    assert [[c.ext_raw for c in calls] for calls, _ in chunks] == [["89161234567"] * 3] * 3 + [["89161234567"] * 2]
    assert [c.duration for calls, _ in chunks for c in calls] == [*range(1, 11), 2]
    assert [len(fresh) for _, fresh in chunks] == [3, 3, 3, 1]
    assert list(store_calls(rows, ledger, "RU", T, chunk=4))[0][1] == [] and ledger.count() == 10


def test_a_failed_chunk_is_raised_and_the_chunks_before_it_stay_stored(ledger, monkeypatch):
    insert_new, attempts = ledger.insert_new, []

    def failing_third_chunk(calls, now):
        attempts.append(calls)
        if len(attempts) == 3:
            raise OSError("disk full")
        return insert_new(calls, now)

    monkeypatch.setattr(ledger, "insert_new", failing_third_chunk)
    seen = []
    with pytest.raises(OSError, match="disk full"):
        for calls, _ in store_calls([row(duration=n + 1) for n in range(10)], ledger, "RU", T, chunk=3):
            seen.append(len(calls))
    assert seen == [3, 3] and ledger.count() == 6
    assert len(attempts) == 3  # the fourth chunk was made but never written


def test_the_young_generation_is_collected_less_often_only_while_a_slice_is_synced(ledger):
    default, seen = gc.get_threshold(), []

    class Operator:
        def iter_call_list_slice(self, lines, lower, upper):
            seen.append(gc.get_threshold())
            return iter([row(duration=n + 1) for n in range(5)])

    window = {"tz": ZoneInfo("Europe/Moscow"), "region": "RU", "overlap": timedelta(0), "first_window": timedelta(0)}
    result = sync_calls(Operator(), ledger, ["4990000000"], now=T, since=T - timedelta(hours=1), **window)
    assert len(result.new_ids) == 5 and seen == [(50_000, *default[1:])]
    assert gc.get_threshold() == default
    with pytest.raises(OSError), fewer_young_collections():
        raise OSError("the ledger went away")
    assert gc.get_threshold() == default


def test_an_in_memory_database_is_written_from_the_calling_thread():
    engine = make_engine("sqlite://")
    upgrade(engine)
    ledger = CallLedger(engine)
    assert not ledger.writes_from_any_thread
    assert [len(fresh) for _, fresh in store_calls([row(duration=n + 1) for n in range(5)], ledger, "RU", T, 2)] == [
        2,
        2,
        1,
    ]
    assert ledger.count() == 5


def placed(callbacks: CallbackLedger, request_id: str, to: str, at: datetime, line: str = "4990000000") -> None:
    request = CallbackRequest(request_id, "webhook", line, to, "8" + to[2:], at, status=CallbackStatus.PLACED)
    callbacks.add(replace(request, placing_at=at))


def test_outbound_calls_are_linked_to_the_click_to_calls_they_came_from(ledger):
    callbacks = CallbackLedger(ledger.engine)
    placed(callbacks, "early", "+79161234567", T - timedelta(minutes=8))
    placed(callbacks, "late", "+79161234567", T + timedelta(minutes=30))
    placed(callbacks, "other-line", "+79161234567", T, line="4950000000")
    placed(callbacks, "too-old", "+79260000000", T - timedelta(minutes=11))
    placed(callbacks, "spare", "+79990000000", T)
    out = {"direction": Direction.OUTBOUND}
    made = [
        call_from_row(row(ext_num="89161234567", **out), "RU"),  # ← early
        call_from_row(row(ext_num="89161234567", duration=5, **out), "RU"),  # early is taken: nothing
        call_from_row(row(ext_num="89161234567", started_at=T + timedelta(minutes=31), **out), "RU"),  # ← late
        call_from_row(row(ext_num="89260000000", **out), "RU"),  # too old
        call_from_row(row(ext_num="89990000000"), "RU"),  # inbound
    ]
    ledger.insert_new(made, T)
    link_callbacks(made, ledger, callbacks)
    assert [ledger.get(call.id).callback_request_id for call in made] == ["early", None, "late", None, None]
    waiting = callbacks.placed_between(T - timedelta(hours=1), T + timedelta(hours=1))
    assert [r.id for r in waiting][-1] == "too-old" and {r.id for r in waiting} == {"spare", "other-line", "too-old"}
    link_callbacks(made, ledger, callbacks)  # a second pass links nothing twice
    assert ledger.get(made[1].id).callback_request_id is None


def test_cursors_only_move_forward(ledger):
    ledger.advance(["4990000000", "4950000000"], T, T)
    ledger.advance(["4990000000"], T - timedelta(hours=1), T)
    ledger.advance(["4950000000"], T + timedelta(hours=1), T)
    assert ledger.cursors(["4990000000", "4950000000", "4950000001"]) == {
        "4990000000": T,
        "4950000000": T + timedelta(hours=1),
    }


# --- syncing against the sandbox --------------------------------------------------------------


@pytest.fixture
def rt(service_env, redis_conn):
    runtime = Runtime(load_settings(service_env | {"SYNC_FIRST_WINDOW": str(22 * 86400)}, dotenv="/x"))
    runtime.operator.sleep = lambda seconds: None
    yield runtime
    runtime.engine.dispose()


def canonical(control) -> dict[str, dict]:
    return {c["record_file_id"] or f"{c['num']}|{c['started_at'][:19]}": c for c in control.get("calls")}


def test_first_sync_stores_every_call_once_with_canonical_values(rt, control):
    control.post("calls/generate", {"count": 300, "days": 21, "seed": 11})
    result = calls.run_sync(rt)
    assert (result.found, len(result.new_ids)) == (300, 300) and result.moved_cursor
    again = calls.run_sync(rt, result.start, result.end)  # the same window once more: nothing new
    assert again.found == 300 and again.new_ids == []
    expected = canonical(control)
    for call in rt.call_ledger.between(T - timedelta(days=60), T + timedelta(days=60)):
        truth = expected[call.record_file_id or f"{call.line}|{call.started_at.isoformat()[:19]}"]
        assert call.started_at.isoformat()[:19] == truth["started_at"][:19]
        assert call.direction == (Direction.OUTBOUND if truth["direction"] == 1 else Direction.INBOUND)
        assert (call.duration, call.ext_raw, call.ext_e164) == (truth["duration"], truth["ext_num"], truth["ext_e164"])
    assert rt.call_ledger.count() == 300


def test_overlap_catches_late_rows_and_the_nightly_recheck_the_rest(rt, control):
    calls.run_sync(rt)
    now = datetime.now(UTC)
    control.post(
        "calls/generate",
        {
            "count": 3,
            "since": (now - timedelta(minutes=90)).isoformat(),
            "until": (now - timedelta(minutes=60)).isoformat(),
        },
    )
    assert len(calls.run_sync(rt).new_ids) == 3  # an hour late: inside the 2-hour overlap
    control.post(
        "calls/generate",
        {"count": 2, "since": (now - timedelta(hours=5)).isoformat(), "until": (now - timedelta(hours=4)).isoformat()},
    )
    assert calls.run_sync(rt).new_ids == []  # four hours late: outside the overlap
    backfill = calls.run_sync(rt, now - timedelta(hours=6), now)
    assert len(backfill.new_ids) == 2


def test_the_cursor_moves_only_after_the_calls_are_committed(rt, control):
    control.post("calls/generate", {"count": 20, "days": 3, "seed": 5})
    control.post("faults", {"method": "request/getcalllist", "kind": "html502", "count": None})
    with pytest.raises(OperatorUnavailable):
        calls.run_sync(rt)
    assert rt.call_ledger.cursors(rt.settings.operator_numbers) == {}
    requests.delete(control.url + "/_sandbox/faults", timeout=5)
    result = calls.run_sync(rt)
    assert len(result.new_ids) == 20 and rt.call_ledger.count() == 20


def test_backfill_beyond_the_operator_depth_says_so_and_keeps_the_cursor(rt, control):
    calls.run_sync(rt)
    cursor = rt.call_ledger.cursors(rt.settings.operator_numbers)
    now = datetime.now(UTC)
    control.post("calls/generate", {"count": 10, "days": 25, "seed": 2})
    result = calls.run_sync(rt, now - timedelta(days=40), now - timedelta(days=1))
    assert result.out_of_reach_before is not None and result.out_of_reach_before > now - timedelta(days=32)
    assert not result.moved_cursor
    assert rt.call_ledger.cursors(rt.settings.operator_numbers) == cursor


def test_a_backfill_after_a_gap_does_not_move_the_cursor(rt, control):
    now = datetime.now(UTC)
    rt.call_ledger.advance(rt.settings.operator_numbers, now - timedelta(days=10), now)
    result = calls.run_sync(rt, now - timedelta(days=3), now - timedelta(days=2))
    assert not result.moved_cursor
    assert set(rt.call_ledger.cursors(rt.settings.operator_numbers).values()) == {now - timedelta(days=10)}


def test_midnight_and_month_boundary_in_the_operator_zone(rt, control):
    # 1 November 00:00 in Moscow is 31 October 21:00 UTC.
    boundary = datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    if datetime.now(UTC) - boundary > timedelta(days=28):
        pytest.skip("the month boundary is out of the operator's depth by now")
    control.post(
        "calls/generate",
        {
            "count": 12,
            "since": (boundary - timedelta(seconds=3)).isoformat(),
            "until": (boundary + timedelta(seconds=3)).isoformat(),
            "seed": 9,
        },
    )
    calls.run_sync(rt, boundary - timedelta(minutes=1), boundary + timedelta(minutes=1))
    stored = sorted(
        c.started_at for c in rt.call_ledger.between(boundary - timedelta(minutes=1), boundary + timedelta(minutes=1))
    )
    expected = sorted(datetime.fromisoformat(c["started_at"]).replace(microsecond=0) for c in control.get("calls"))
    assert stored == expected and len(stored) == 12
    assert any(t < boundary for t in stored) and any(t >= boundary for t in stored)


def test_only_one_sync_runs_at_a_time(rt, redis_conn):
    lock = redis_conn.lock(calls.SYNC_LOCK, timeout=30)
    assert lock.acquire()
    try:
        assert calls.run_sync(rt) is None
    finally:
        lock.release()


def test_sync_command(service_env, control):
    control.post("calls/generate", {"count": 15, "days": 0.5, "seed": 4})
    result = run_cli("sync", env=service_env)
    assert result.returncode == 0, result.stderr
    assert "15 call(s) found, 15 new" in result.stdout
    old = run_cli("sync", "--since", "2020-01-01", env=service_env)
    assert old.returncode == 0 and "out of reach" in old.stderr and "0 new" in old.stdout
    assert "Traceback" not in old.stderr
    bad = run_cli("sync", "--since", "2026-11-20", "--until", "2026-11-10", env=service_env)
    assert bad.returncode == 2 and "--since must be before --until" in bad.stderr


@pytest.mark.slow
def test_two_workers_sync_on_schedule_once_per_interval(service_env, control, redis_conn):
    import time

    from tests.conftest import start_worker

    control.post("calls/generate", {"count": 5, "days": 0.2, "seed": 8})
    env = service_env | {"SYNC_INTERVAL": "2"}
    workers = [start_worker(env), start_worker(env)]
    try:
        started = time.time()
        engine = make_engine(env["DATABASE_URL"])
        ledger = CallLedger(engine)
        while ledger.count() < 5:
            assert time.time() - started < 30, "the scheduled sync never ran"
            time.sleep(0.2)
        time.sleep(8)
        elapsed = time.time() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
        engine.dispose()
    runs = float(redis_conn.hget("vats:metrics", 'vats_jobs_total{job="sync_calls",outcome="ok"}') or 0)
    assert 1 <= runs <= elapsed / 2 + 2, f"{runs} syncs in {elapsed:.0f} s with two schedulers"
    assert ledger.count() == 5
