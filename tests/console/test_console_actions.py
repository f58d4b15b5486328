"""Acting from the console: retrying stuck work, reconciling a day, a test click-to-call; a
viewer cannot, another account's job is not found, every action is audited."""

from __future__ import annotations

import re
from datetime import timedelta

from integration.ledger.work import WorkKey, WorkKind
from integration.timeutil import utc_now
from tests.conftest import run_worker
from tests.console.test_console import add_calls, csrf, make_user, sign_in
from tests.test_accounts_serving import add_tenant


def failed_delivery(app, error: str = "the CRM answered 500") -> str:
    runtime = app.extensions["vats"]
    [call] = add_calls(app, 1, utc_now() - timedelta(hours=1))
    crm = runtime.crm.name
    runtime.delivery_ledger.ensure([call.id], crm, utc_now())
    runtime.delivery_ledger.fail_attempt(call.id, crm, error, utc_now(), retryable=False)
    return call.id


def post(http, path: str, data: dict, page: str = "/console/work"):
    return http.post(path, data={"csrf_token": csrf(http, page), **data})


def test_a_failed_delivery_is_shown_and_retried(app, http, redis_conn):
    call_id = failed_delivery(app)
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    page = http.get("/console/work").get_data(as_text=True)
    assert f'data-subject="{call_id}"' in page and "the CRM answered 500" in page and "gave up" in page
    runtime = app.extensions["vats"]
    answer = post(http, "/console/work/retry", {"kind": "deliver_call", "subject": call_id, "target": runtime.crm.name})
    assert answer.status_code == 303
    assert "queued again" in http.get(answer.headers["Location"]).get_data(as_text=True)
    item = runtime.work_ledger.get(WorkKey(WorkKind.DELIVER_CALL, call_id, runtime.crm.name))
    assert item.status == "pending" and item.next_attempt_at <= utc_now()
    assert redis_conn.llen("rq:queue:default") == 1
    entry = runtime.accounts.audit.recent()[0]
    assert (entry.actor, entry.action, entry.detail, entry.result) == (
        "ops@example.com",
        "work.retry",
        f"deliver_call {call_id}",
        "ok",
    )


def test_retry_all_and_a_viewer_who_cannot(app, http):
    ids = [failed_delivery(app) for _ in range(3)]
    make_user(app, "viewer@example.com", "viewer")
    sign_in(http, "viewer@example.com")
    page = http.get("/console/work").get_data(as_text=True)
    assert all(f'data-subject="{i}"' in page for i in ids) and "Retry" not in page
    assert post(http, "/console/work/retry", {"kind": "deliver_call"}).status_code == 403
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    answer = post(http, "/console/work/retry", {"kind": "deliver_call"})
    assert "3 item(s) queued again" in http.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Nothing is stuck" not in http.get("/console/work").get_data(as_text=True)  # pending, attempts > 0


def test_reconcile_a_day_from_the_console(app, http, service_env, control):
    control.post("calls/generate", {"count": 5, "days": 0.5, "seed": 3})
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    today = utc_now().astimezone(app.extensions["vats"].settings.tz).date()
    answer = post(http, "/console/work/reconcile", {"day": today.isoformat()})
    job_page = answer.headers["Location"]
    assert re.fullmatch(r"/console/work/reconcile/default-reconcile-[0-9a-f]{32}", job_page)
    assert "refreshes itself" in http.get(job_page).get_data(as_text=True)
    assert run_worker(service_env).returncode == 0
    summary = http.get(job_page).get_data(as_text=True)
    assert re.search(r"\d+ call\(s\) at the operator, \d+ new to the ledger; in the CRM \d+ delivered", summary)
    bad = post(http, "/console/work/reconcile", {"day": "tomorrow"})
    assert "is not a day" in http.get(bad.headers["Location"]).get_data(as_text=True)


def test_another_accounts_reconcile_is_not_found(app, http, control):
    add_tenant(app, control, "acme", ("4991110000",))
    make_user(app, "root@example.com")
    sign_in(http, "root@example.com")
    answer = post(http, "/console/work/reconcile", {"day": utc_now().date().isoformat()})
    job_id = answer.headers["Location"].rsplit("/", 1)[1]
    assert http.get(f"/a/acme/console/work/reconcile/{job_id}").status_code == 404
    assert http.get("/console/work/reconcile/no-such-job").status_code == 404


def test_a_test_call_goes_through_the_webhooks_checks_and_rings_once(app, http, service_env, control):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    page = http.get("/console/click-to-call").get_data(as_text=True)
    once = re.search(r'name="once" value="([0-9a-f]+)"', page).group(1)
    form = {"caller": "4990000000", "to": "8 (916) 123-45-67", "once": once}
    first = post(http, "/console/click-to-call", form, "/console/click-to-call")
    again = post(http, "/console/click-to-call", form, "/console/click-to-call")  # the form sent twice
    assert first.status_code == again.status_code == 303
    assert run_worker(service_env).returncode == 0
    assert [(c["PhoneTo"], c["PhoneFrom"]) for c in control.get("callbacks")] == [("89161234567", "4990000000")]
    listed = http.get("/console/click-to-call").get_data(as_text=True)
    assert "console" in listed and "placed" in listed and "+7 916 123-45-67" in listed

    refused = post(
        http, "/console/click-to-call", {"caller": "4990000000", "to": "8 809 123 45 67"}, "/console/click-to-call"
    )
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="to-problem"' in body and 'aria-describedby="to-problem"' in body
    assert len(control.get("callbacks")) == 1
    assert app.extensions["vats"].accounts.audit.recent()[0].result.startswith("refused: ")


def test_a_viewer_cannot_place_a_test_call(app, http, control):
    make_user(app, "viewer@example.com", "viewer")
    sign_in(http, "viewer@example.com")
    assert "Place a test call" not in http.get("/console/click-to-call").get_data(as_text=True)
    answer = post(
        http, "/console/click-to-call", {"caller": "4990000000", "to": "89161234567"}, "/console/click-to-call"
    )
    assert answer.status_code == 403
    assert app.extensions["vats"].callback_ledger.recent() == []
