"""Every ledger is one account's: what account A writes, account B never reads or changes
(on SQLite and PostgreSQL), and the rows from before accounts are the ``default`` account's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integration.crm.local.adapter import LocalCrm
from integration.ledger.callbacks import CallbackLedger
from integration.ledger.calls import CallLedger, call_filters
from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.ledger.events import EventLedger
from integration.ledger.outbox import Outbox
from integration.ledger.recordings import RecordingLedger
from integration.ledger.work import WorkKey, WorkKind, WorkLedger
from integration.models import Activity, CallbackRequest, CallRow, Direction, Match, MatchKind
from integration.phone import parse_phone
from integration.sync import call_from_row

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def a_call(line: str, ext: str):
    return call_from_row(
        CallRow(
            started_at=NOW, line=line, direction=Direction.INBOUND, ext_num=ext, duration=42, record_file_id="f-" + line
        ),
        "RU",
    )


def everything_of(engine, account: str, line: str, ext: str) -> dict:
    """One of each kind of row for ``account``; returns the ids."""
    call = a_call(line, ext)
    calls = CallLedger(engine, account)
    assert calls.insert_new([call], NOW) == [call.id]
    calls.advance([line], NOW, NOW)
    DeliveryLedger(engine, account).ensure([call.id], "local", NOW)
    RecordingLedger(engine, account).ensure([(call.id, "f-" + line)], NOW)
    Outbox(engine, account).add(f"evt-{account}", "callback.finished", call.id, {}, NOW)
    EventLedger(engine, account).add(f"{account}/webhook:msg_1", "deal.closed", {"deal_id": "42"}, NOW)
    WorkLedger(engine, account).schedule(WorkKey(WorkKind.RULE_CALLBACK, f"{account}/webhook:msg_1", "r"), NOW, NOW)
    request = CallbackRequest(
        id=f"cb-{account}",
        source="webhook",
        phone_from=line,
        phone_to="+79161234567",
        operator_phone_to="89161234567",
        created_at=NOW,
    )
    CallbackLedger(engine, account).add(request)
    crm = LocalCrm(engine, account=account)
    crm.create_contact(parse_phone(ext), f"contact of {account}")
    crm.write_activity(
        Activity(
            call_id=call.id,
            contact_ids=(),
            direction=Direction.INBOUND,
            status=call.status,
            started_at=NOW,
            duration=42,
            line=line,
            ext_e164=call.ext_e164,
            ext_raw=ext,
        )
    )
    crm.attach_calls("42", [call.id], "ref")
    return {"call": call.id, "request": request.id}


def test_no_ledger_reads_or_changes_another_accounts_rows(database_url):
    engine = make_engine(database_url)
    mine = everything_of(engine, "default", "4990000000", "89161234567")
    theirs = everything_of(engine, "acme", "4991110000", "89161234567")
    later = NOW + timedelta(days=1)
    for account, own, other in (("default", mine, theirs), ("acme", theirs, mine)):
        calls = CallLedger(engine, account)
        assert [c.id for c in calls.between(NOW - timedelta(hours=1), later)] == [own["call"]]
        assert calls.get(other["call"]) is None and calls.count() == 1
        assert [c.id for c, _ in calls.page(call_filters(), 10, 0, "local")] == [own["call"]]
        assert calls.with_numbers(["9161234567"], NOW - timedelta(hours=1)) == [own["call"]]
        assert calls.with_recordings([own["call"], other["call"]]) == [
            (own["call"], "f-" + calls.get(own["call"]).line)
        ]
        assert set(calls.cursors(["4990000000", "4991110000"])) == {calls.get(own["call"]).line}
        deliveries = DeliveryLedger(engine, account)
        assert deliveries.get(other["call"], "local") is None and deliveries.counts("local") == {"pending": 1}
        assert [d.call_id for d in deliveries.due("local", later)] == [own["call"]]
        assert deliveries.undelivered_calls("local") == []
        deliveries.mark_delivered(other["call"], "local", "x", Match(MatchKind.NONE), NOW)
        assert (
            DeliveryLedger(engine, "acme" if account == "default" else "default").get(other["call"], "local").crm_id
            is None
        )
        recordings = RecordingLedger(engine, account)
        assert recordings.get(other["call"]) is None and [r.call_id for r in recordings.due(later)] == [own["call"]]
        assert recordings.missing() == [] and sum(recordings.counts().values()) == 1
        outbox = Outbox(engine, account)
        assert outbox.get(f"evt-{'acme' if account == 'default' else 'default'}") is None
        assert [e.id for e in outbox.due(later)] == [f"evt-{account}"]
        events = EventLedger(engine, account)
        assert events.unhandled(later) == [f"{account}/webhook:msg_1"]
        work = WorkLedger(engine, account)
        assert {item.account for item in work.due(later)} == {account} and len(work.due(later)) == 5
        callbacks = CallbackLedger(engine, account)
        assert callbacks.get(other["request"]) is None and callbacks.get(own["request"]) is not None
        assert callbacks.reap_placing(later, later) == []
        crm = LocalCrm(engine, account=account)
        assert [c["name"] for c in crm.contacts_page(10, 0)] == [f"contact of {account}"]
        assert len(crm.find_contacts(parse_phone("89161234567"))) == 1
        assert [a["call_id"] for a in crm.activities_page(10, 0)] == [own["call"]]
        assert crm.deal_call_ids("42") == [own["call"]]
    engine.dispose()
