"""PBX routing settings: the documented rules (with their messages), the editable file, plans,
apply with its concurrency guard, the HTTP API, and the ``set_redirect_active`` rule action."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.sandbox.data import default_settings
from integration.vats.document import DAY
from integration.vats.files import FileError, desired_settings, dump, export_document, load
from integration.vats.plan import diff, make_plan
from integration.vats.validate import validate
from integration.vats.view import weekly_view
from tests.conftest import API_TOKEN, app_for, config_file, run_cli

NUM = "4990000000"


@pytest.fixture
def live() -> dict:
    return default_settings(NUM, "883766", 1000)  # the reference's example


def edited(live: dict, change) -> dict:
    """The exported file with ``change`` applied to it (as a person edits it)."""
    document = export_document(live)
    change(document)
    return document


def problems_of(live: dict, change) -> list[str]:
    return make_plan(edited(live, change), live).problems


def blocks(document: dict) -> dict[str, dict]:
    return {b["nameTerm"]: b for b in document["profiles"][0]["scheduleBlocks"]}


# --- the documented rules, each with its precise message ----------------------------------------


def test_the_live_example_exports_and_plans_with_no_changes_and_no_problems(live):
    plan = make_plan(export_document(live), live)
    assert (plan.problems, plan.changes, plan.stale) == ([], [], False)  # Sunday's 86400–86400 is fine
    again, problems = desired_settings(load(dump(export_document(live))), live)
    assert (again, problems) == (live, [])  # the file round-trips exactly, YAML and JSON
    assert desired_settings(load(dump(export_document(live), "json")), live) == (live, [])


def test_a_gap_and_an_overlap_are_named_with_their_day_blocks_and_times(live):
    def shorter_day(d):
        blocks(d)["Working hours"]["days"]["mon"] = ["09:00-18:00"]

    assert problems_of(live, shorter_day) == [
        "4990000000 › profile «Main» › Mon: gap 08:00–09:00 (no block rings)",
        "4990000000 › profile «Main» › Mon: gap 18:00–20:00 (no block rings)",
    ]

    def earlier_start(d):
        blocks(d)["Working hours"]["days"]["tue"] = ["07:30-20:00"]

    assert problems_of(live, earlier_start) == [
        "4990000000 › profile «Main» › Tue: overlap 07:30–08:00 (block «Non-working hours» and block «Working hours»)"
    ]

    def switched_off(d):
        blocks(d)["Non-working hours"]["isActive"] = 0  # an inactive block rings nobody

    assert "4990000000 › profile «Main» › Sun: gap 00:00–24:00 (no block rings)" in problems_of(live, switched_off)


def test_times_must_be_ranges_within_the_day(live):
    def bad(d):
        days = blocks(d)["Working hours"]["days"]
        days["mon"], days["tue"], days["wed"] = ["25:00-26:00"], ["20:00-08:00"], "8-20"

    found = problems_of(live, bad)
    assert (
        "4990000000 › profile «Main» › block «Working hours» › Mon: '25:00-26:00' is not a time range like 09:00-18:00"
        in found
    )
    assert "4990000000 › profile «Main» › block «Working hours» › Tue: 20:00–08:00 starts after it ends" in found
    assert (
        "4990000000 › profile «Main» › block «Working hours» › Wed: '8-20' is not a time range like 09:00-18:00"
        in found
    )

    def empty_range(d):
        blocks(d)["Working hours"]["days"]["sat"] = ["08:00-20:00", "20:00-20:00"]

    assert problems_of(live, empty_range) == []  # empty ranges are accepted and ignored


def test_dial_times_modes_and_switches_have_their_ranges(live):
    def bad(d):
        d["standartPhoneDialTime"] = 0
        d["vatsModeCode"] = 5
        d["isDoNotDisturbMode"] = True
        work = blocks(d)["Working hours"]
        work["dialModeCode"] = 3
        work["redirectNums"][0]["dialTime"] = 91

    assert problems_of(live, bad) == [
        "4990000000: vatsModeCode must be one of 0, 1, 2, not 5",
        "4990000000: isDoNotDisturbMode must be one of 0, 1, not True",
        "4990000000: standartPhoneDialTime must be a whole number from 1 to 90 s, not 0",
        "4990000000 › profile «Main» › block «Working hours»: dialModeCode must be one of 1, 2, 21, not 3",
        "4990000000 › profile «Main» › block «Working hours» › forwarding 9990000000 «Employee 1»: dialTime must be a whole number from 0 to 90 s, not 91",
    ]  # fmt: skip


def test_forwarding_numbers_take_the_three_documented_forms_and_are_normalized(live):
    def numbers(d):
        d["standartPhoneRedirectNum"] = "12345"
        duty = blocks(d)["Non-working hours"]["redirectNums"]
        duty.append({"num": "+7 (916) 123-45-67", "name": "New duty"})
        duty.append({"num": "79161234567", "name": "Wrong prefix"})
        blocks(d)["Working hours"]["redirectNums"][1]["num"] = "8 999 000-00-01"  # the same number, respelled

    plan = make_plan(edited(live, numbers), live)
    assert plan.problems == [
        "4990000000: standartPhoneRedirectNum '12345' is not a forwarding number (10 digits, 8… or +7…)",
        "4990000000 › profile «Main» › block «Non-working hours» › forwarding 79161234567 «Wrong prefix»: not a forwarding number (10 digits, 8… or +7…)",
    ]  # fmt: skip
    duty = blocks(plan.desired)["Non-working hours"]["redirectNums"]
    assert duty[1] == {"num": "9161234567", "name": "New duty", "isActive": 1, "isMlp": 0, "dialTime": 30}
    assert (
        blocks(plan.desired)["Working hours"]["redirectNums"][1]["num"] == "9990000001"
    )  # kept as the operator has it


def test_workday_def_day_changes_only_with_the_calendar(live):
    def moved(d):
        d["profiles"][0]["workdayDefDay"] = 6

    assert problems_of(live, moved) == [
        "4990000000 › profile «Main»: workdayDefDay can change only when isUseCalendar is 1 (public holidays observed)"
    ]

    def with_calendar(d):
        d["profiles"][0] |= {"workdayDefDay": 6, "isUseCalendar": 1}

    assert problems_of(live, with_calendar) == []  # and the example's own 1 with the calendar off is fine


def test_read_only_fields_and_structure_cannot_change(live):
    def rewrite(d):
        d["contractNum"] = "000000"
        d["colour"] = "blue"
        blocks(d)["Working hours"]["dialModeTerm"] = "Parallel"
        blocks(d)["Working hours"]["redirectNums"][0]["id"] = 999
        d["profiles"].append({"id": 7, "name": "Holidays"})

    assert problems_of(live, rewrite) == [
        "4990000000: unknown field 'colour'",
        "4990000000: profiles[1]: id 7 is not in the live settings (made in the web cabinet, not here)",
        "4990000000: contractNum is read-only ('883766' cannot become '000000')",
        "4990000000 › profile «Main» › block «Working hours»: dialModeTerm is read-only ('Sequential' cannot become 'Parallel')",
        "4990000000 › profile «Main» › block «Working hours» › forwarding 9990000000 «Employee 1»: id 999 is not in the live settings (leave it out for a new entry)",
    ]  # fmt: skip


def test_a_broken_file_says_what_to_fix():
    with pytest.raises(FileError, match="at line 3, column 1"):
        load("num: '4990000000'\nbase: [unclosed\n")
    with pytest.raises(FileError, match="base is missing"):
        load("num: '4990000000'\n")


def test_the_plan_reads_as_changes(live):
    def edit(d):
        blocks(d)["Working hours"]["days"]["mon"] = ["09:00-18:00"]
        blocks(d)["Non-working hours"]["days"]["mon"] = ["00:00-09:00", "18:00-24:00"]
        blocks(d)["Working hours"]["redirectNums"][1]["isActive"] = 0
        del blocks(d)["Working hours"]["redirectNums"][4]

    plan = make_plan(edited(live, edit), live)
    assert [str(c) for c in plan.changes] == [
        "~ profile «Main» › block «Working hours» › Mon: 08:00-20:00 → 09:00-18:00",
        "~ profile «Main» › block «Working hours» › forwarding 9990000001 «Employee 2» › isActive: 1 → 0",
        "- profile «Main» › block «Working hours» › forwarding 9990000004 «Employee 5»: id 1014, num 9990000004, name Employee 5, isActive 1, isMlp 0, dialTime 30",
        "~ profile «Main» › block «Non-working hours» › Mon: 00:00-08:00, 20:00-24:00 → 00:00-09:00, 18:00-24:00",
    ]  # fmt: skip
    assert diff(live, live) == []


def test_the_weekly_view_says_who_rings_when(live):
    view = weekly_view(live)
    assert view[0] == "4990000000 «Office 0000»: multichannel (simple set-up)"
    assert "  Sun  00:00–24:00  block «Non-working hours», parallel: 84990000000 «Duty phone» 60 s" in view
    assert view.index("  Mon  00:00–08:00  block «Non-working hours», parallel: 84990000000 «Duty phone» 60 s") < view.index(
        "       08:00–20:00  block «Working hours», sequential: 9990000000 «Employee 1» 30 s, 9990000001 «Employee 2» 30 s, 9990000002 «Employee 3» 30 s, 9990000003 «Employee 4» 30 s, 9990000004 «Employee 5» 30 s"
    )  # fmt: skip
    just_a_phone = live | {"vatsModeCode": 0, "standartPhoneRedirectNum": "9161234567", "isDoNotDisturbMode": 1}
    assert weekly_view(just_a_phone)[1:] == [
        "  do-not-disturb is ON: calls are not forwarded",
        "  forwards to 9161234567, ringing 30 s",
    ]


# --- property: schedules are accepted exactly when they cover every day once -----------------------


def covers_each_day_once(days_by_block: list[dict[str, list[tuple[int, int]]]]) -> bool:
    """The oracle: mark every second of every day, second by second (C-speed slices)."""
    for day in map(str, range(1, 8)):
        rung = bytearray(DAY)
        for days in days_by_block:
            for start, end in days.get(day, []):
                if start >= end:
                    continue
                if rung.find(1, start, end) != -1:
                    return False
                rung[start:end] = b"\1" * (end - start)
        if rung.count(0):
            return False
    return True


@st.composite
def day_spans(draw) -> list[list[tuple[int, int]]]:
    """One day for two blocks: a partition of the day, sometimes nudged into a gap or overlap."""
    grid = st.sampled_from([1800 * k for k in range(1, 48)]) | st.integers(1, DAY - 1)
    cuts = sorted(draw(st.sets(grid, max_size=4)))
    points = [0, *cuts, DAY]
    spans: list[list[tuple[int, int]]] = [[], []]
    for start, end in zip(points, points[1:], strict=False):
        spans[draw(st.integers(0, 1))].append((start, end))
    for _ in range(draw(st.integers(0, 2))):
        owner = draw(st.integers(0, 1))
        kind = draw(st.sampled_from(["drop", "nudge", "extra", "empty"]))
        if kind == "drop" and spans[owner]:
            spans[owner].pop(draw(st.integers(0, len(spans[owner]) - 1)))
        elif kind == "nudge" and spans[owner]:
            index = draw(st.integers(0, len(spans[owner]) - 1))
            start, end = spans[owner][index]
            spans[owner][index] = (start, max(start, min(DAY, end + draw(st.integers(-900, 900)))))
        elif kind == "extra":
            start = draw(st.integers(0, DAY - 1))
            spans[owner].append((start, draw(st.integers(start, DAY))))
        else:
            at = draw(st.sampled_from([0, DAY, draw(st.integers(0, DAY))]))
            spans[owner].append((at, at))  # an empty range, like the reference's 86400–86400
    return spans


@settings(max_examples=300, deadline=None)
@given(st.lists(day_spans(), min_size=7, max_size=7))
def test_random_schedules_are_accepted_exactly_when_each_day_is_covered_once(week):
    document = default_settings(NUM, "883766", 1000)
    days_by_block = [{str(d + 1): week[d][b] for d in range(7)} for b in range(2)]
    for block, days in zip(document["profiles"][0]["scheduleBlocks"], days_by_block, strict=True):
        block["scheduleJson"] = {"schedule": {"days": {day: {"times": [{"time_start": s, "time_end": e} for s, e in spans]} for day, spans in days.items()}}}  # fmt: skip
    found = validate(document, document)
    assert (found == []) == covers_each_day_once(days_by_block), found


# --- against the sandbox: the CLI ------------------------------------------------------------------


def write(tmp_path, document: dict, name: str = "settings.yaml"):
    path = tmp_path / name
    path.write_text(dump(document))
    return path


def test_show_export_plan_apply_round_trip_through_the_cli(service_env, client, tmp_path):
    shown = run_cli("vats", "show", NUM, env=service_env)
    assert shown.returncode == 0 and "  Sun  00:00–24:00" in shown.stdout
    exported = run_cli("vats", "export", NUM, env=service_env)
    assert exported.returncode == 0 and exported.stdout.startswith("# PBX routing settings of 4990000000")
    path = tmp_path / "settings.yaml"
    path.write_text(exported.stdout)
    unchanged = run_cli("vats", "plan", str(path), env=service_env)
    assert (unchanged.returncode, unchanged.stdout.strip()) == (0, "4990000000: no changes")

    document = yaml.safe_load(exported.stdout)
    document["profiles"][0]["scheduleBlocks"][0]["days"]["mon"] = ["09:00-18:00"]
    write(tmp_path, document)
    invalid = run_cli("vats", "plan", str(path), env=service_env)
    assert invalid.returncode == 2 and "Mon: gap 08:00–09:00 (no block rings)" in invalid.stderr
    document["profiles"][0]["scheduleBlocks"][1]["days"]["mon"] = ["00:00-09:00", "18:00-24:00"]
    document["profiles"][0]["scheduleBlocks"][1]["redirectNums"].append({"num": "+79161234567", "name": "Mobile"})
    write(tmp_path, document)
    planned = run_cli("vats", "plan", str(path), env=service_env)
    assert planned.returncode == 0 and planned.stdout.endswith("4990000000: 3 change(s)\n")

    before = client.get_pbx_settings([NUM])[0].raw
    declined = run_cli("vats", "apply", str(path), env=service_env, input_text="n\n")
    assert declined.returncode == 1 and "nothing applied" in declined.stderr
    assert client.get_pbx_settings([NUM])[0].raw == before

    applied = run_cli("vats", "apply", str(path), "--yes", env=service_env)
    assert applied.returncode == 0 and "applied 3 change(s); read back and verified" in applied.stdout
    live = client.get_pbx_settings([NUM])[0].raw
    work, off_hours = live["profiles"][0]["scheduleBlocks"]
    assert work["scheduleJson"]["schedule"]["days"]["1"]["times"] == [{"time_start": 32400, "time_end": 64800}]
    assert off_hours["redirectNums"][-1] == {
        "num": "9161234567",
        "name": "Mobile",
        "isActive": 1,
        "isMlp": 0,
        "dialTime": 30,
    }
    again = run_cli("vats", "apply", str(path), "--yes", env=service_env)  # the file's base is now old
    assert again.returncode == 1 and "changed since the file was exported" in again.stderr


def test_apply_refuses_when_the_cabinet_changed_the_settings_after_the_export(service_env, client, tmp_path):
    exported = run_cli("vats", "export", NUM, "--format", "json", env=service_env)
    document = json.loads(exported.stdout)
    document["isDoNotDisturbMode"] = 1
    path = write(tmp_path, document)
    # Meanwhile someone edits the settings in the web cabinet.
    cabinet = copy.deepcopy(client.get_pbx_settings([NUM])[0].raw)
    cabinet["profiles"][0]["scheduleBlocks"][0]["redirectNums"][0]["dialTime"] = 45
    client.set_pbx_settings([cabinet])
    refused = run_cli("vats", "apply", str(path), "--yes", env=service_env)
    assert refused.returncode == 1 and "changed since the file was exported" in refused.stderr
    live = client.get_pbx_settings([NUM])[0].raw
    assert (
        live["isDoNotDisturbMode"] == 0
        and live["profiles"][0]["scheduleBlocks"][0]["redirectNums"][0]["dialTime"] == 45
    )


def test_the_cli_answers_bad_input_with_what_to_fix(service_env, tmp_path):
    unknown = run_cli("vats", "show", "4951112233", env=service_env)
    assert unknown.returncode == 2 and "not one of OPERATOR_NUMBERS" in unknown.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("num: '4990000000'\nprofiles: [\n")
    answer = run_cli("vats", "plan", str(broken), env=service_env)
    assert (
        answer.returncode == 2
        and "not valid YAML or JSON at line" in answer.stderr
        and "Traceback" not in answer.stderr
    )


# --- the HTTP API -------------------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def test_the_http_api_gets_plans_and_applies(http, client):
    assert http.get(f"/api/vats/{NUM}").status_code == 401
    assert http.get("/api/vats/4951112233", headers=AUTH).status_code == 404
    got = http.get(f"/api/vats/{NUM}", headers=AUTH)
    assert got.status_code == 200 and got.headers["ETag"] == f'"{got.json["base"]}"'
    assert "  Sun  00:00–24:00" in "\n".join(got.json["week"])
    document = got.json["settings"]
    document["profiles"][0]["scheduleBlocks"][0]["days"]["mon"] = ["09:00-18:00"]
    invalid = http.post(f"/api/vats/{NUM}/plan", json=document, headers=AUTH)
    assert invalid.status_code == 422 and invalid.mimetype == "application/problem+json"
    assert invalid.json["errors"]["4990000000 › profile «Main» › Mon"] == [
        "gap 08:00–09:00 (no block rings)",
        "gap 18:00–20:00 (no block rings)",
    ]
    document["profiles"][0]["scheduleBlocks"][0]["days"]["mon"] = ["08:00-20:00"]
    document["isDoNotDisturbMode"] = 1
    planned = http.post(f"/api/vats/{NUM}/plan", json=document, headers=AUTH)
    assert planned.status_code == 200 and [c["text"] for c in planned.json["changes"]] == [
        "~ isDoNotDisturbMode: 0 → 1"
    ]
    missing_base = http.post(
        f"/api/vats/{NUM}/plan", json={k: v for k, v in document.items() if k != "base"}, headers=AUTH
    )
    assert missing_base.status_code == 422 and "base" in missing_base.json["errors"]
    applied = http.post(f"/api/vats/{NUM}/apply", json=document, headers=AUTH)
    assert applied.status_code == 200 and applied.json["verified"] is True and applied.json["applied"] == 1
    assert client.get_pbx_settings([NUM])[0].raw["isDoNotDisturbMode"] == 1
    stale = http.post(f"/api/vats/{NUM}/apply", json=document, headers=AUTH)
    assert stale.status_code == 409 and stale.json["live_base"] != stale.json["base"]
    assert http.post(f"/api/vats/{NUM}/plan", data="x", headers=AUTH).status_code == 400


# --- the set_redirect_active rule action ----------------------------------------------------------

AWAY_RULES = """
[forwarding]
"7" = "8 999 000-00-01"

[[rules]]
name = "away"
event = "user.status"
when = { status = "absent" }
action = "set_redirect_active"
active = false
numbers = ["4990000000"]

[[rules]]
name = "back"
event = "user.status"
when = { status = "present" }
action = "set_redirect_active"
active = true
"""


@pytest.fixture
def away_app(service_env, tmp_path, redis_conn, monkeypatch):
    with app_for(service_env | config_file(tmp_path, AWAY_RULES)) as app:
        yield app


def employee_2(client) -> int:
    work = client.get_pbx_settings([NUM])[0].raw["profiles"][0]["scheduleBlocks"][0]
    [entry] = [r for r in work["redirectNums"] if r["num"] == "9990000001"]
    return entry["isActive"]


def test_an_absent_user_stops_ringing_and_rings_again_when_back(away_app, client):
    from integration.services.rules import handle_event
    from tests.test_rules import post_event

    http = away_app.test_client()
    post_event(http, {"type": "user.status", "data": {"user": "7", "status": "absent"}}, "msg_away_1")
    outcome = handle_event(away_app.extensions["vats"], "webhook:msg_away_1")
    assert "away: forwarding 9990000001 set inactive on 4990000000" in outcome
    assert "4990000000: 1 of 1 entries set inactive" in outcome
    assert employee_2(client) == 0 and "4950000000" not in outcome  # only the rule's number
    assert handle_event(away_app.extensions["vats"], "webhook:msg_away_1") == outcome  # handled once
    post_event(http, {"type": "user.status", "data": {"user": "7", "status": "absent"}}, "msg_away_2")
    assert "4990000000: already inactive" in handle_event(
        away_app.extensions["vats"], "webhook:msg_away_2"
    )  # nothing written twice
    post_event(http, {"type": "user.status", "data": {"phone": "+79990000001", "status": "present"}}, "msg_back")
    back = handle_event(away_app.extensions["vats"], "webhook:msg_back")
    assert "4990000000: 1 of 1 entries set active" in back and employee_2(client) == 1
    assert "4950000000: not forwarded to 9990000001" in back  # "back" has no numbers: every line
    post_event(http, {"type": "user.status", "data": {"user": "8", "status": "absent"}}, "msg_nobody")
    assert "skipped (no forwarding number" in handle_event(away_app.extensions["vats"], "webhook:msg_nobody")


def test_a_redirect_rule_retries_when_the_settings_changed_under_it(away_app, client, monkeypatch):
    import integration.vats.redirects as redirects
    from integration.services.rules import handle_event
    from integration.vats.plan import PlanRefused
    from tests.test_rules import post_event

    real_read = redirects.read_live

    def read_then_cabinet_edit(operator, line):
        document = real_read(operator, line)
        edited = copy.deepcopy(document)
        edited["profiles"][0]["scheduleBlocks"][1]["redirectNums"][0]["dialTime"] = 50
        client.set_pbx_settings([edited])  # someone edits the cabinet between our read and our write
        return document

    monkeypatch.setattr(redirects, "read_live", read_then_cabinet_edit)
    post_event(away_app.test_client(), {"type": "user.status", "data": {"user": "7", "status": "absent"}}, "msg_x")
    with pytest.raises(PlanRefused):
        handle_event(
            away_app.extensions["vats"], "webhook:msg_x"
        )  # left for the sweeper: the next run reads the new settings
    assert employee_2(client) == 1
    monkeypatch.setattr(redirects, "read_live", real_read)
    assert (
        "entries set inactive" in handle_event(away_app.extensions["vats"], "webhook:msg_x") and employee_2(client) == 0
    )


def test_redirect_rules_are_checked_at_start_up(tmp_path):
    from integration.errors import ConfigError
    from tests.test_rules import settings_with

    bad = """
[forwarding]
"7" = "12345"

[[rules]]
event = "user.status"
action = "set_redirect_active"
numbers = ["4951112233"]
"""
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, bad)
    assert caught.value.problems == [
        f"INTEGRATION_CONFIG ({tmp_path / 'integration.toml'}): rules #1: active must be true or false (the state set_redirect_active sets)",
        f"INTEGRATION_CONFIG ({tmp_path / 'integration.toml'}): forwarding.7 must be a number like 9161234567, 89161234567 or +79161234567, got '12345'",
    ]


def test_two_applies_to_one_number_do_not_interleave(client, redis_conn, monkeypatch):
    import integration.vats.plan as plan_module
    from integration.vats.plan import SettingsBusy, apply, read_live

    monkeypatch.setattr(plan_module, "LOCK_WAIT", 0.2)
    document = export_document(read_live(client, NUM)) | {"isDoNotDisturbMode": 1}
    with redis_conn.lock(f"vats:settings-lock:{NUM}", timeout=10), pytest.raises(SettingsBusy):
        apply(client, redis_conn, document, NUM)  # another apply holds the number
    assert apply(client, redis_conn, document, NUM).changes and read_live(client, NUM)["isDoNotDisturbMode"] == 1


def _paths(value, prefix=()):
    """Every path into a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100_000) | st.text(max_size=8) | st.just("25:00-26:00"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


def test_any_broken_document_gets_a_clear_4xx_never_a_500(http, client):
    document = http.get(f"/api/vats/{NUM}", headers=AUTH).json["settings"]
    paths = [p for p in _paths(document) if p and p[0] != "base"]

    @settings(max_examples=150, deadline=None)
    @given(path=st.sampled_from(paths), value=json_values)
    def check(path, value):
        broken = copy.deepcopy(document)
        target = broken
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        answer = http.post(f"/api/vats/{NUM}/plan", json=broken, headers=AUTH)
        assert answer.status_code in (200, 409, 422), (path, value, answer.json)
        if answer.status_code != 200:
            assert answer.mimetype == "application/problem+json" and answer.json["detail"]

    check()
