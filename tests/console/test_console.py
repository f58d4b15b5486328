"""The console over Flask's test client: sign-in, sessions, CSRF, throttling, who sees which
account, and the pages' figures against the ledger."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest

from integration.accounts import DEFAULT
from integration.models import Call, CallStatus, Direction
from integration.timeutil import utc_now
from tests.conftest import NUMBERS, app_for, run_cli
from tests.test_accounts_serving import add_tenant

PASSWORD = "correct horse battery"


def csrf(http, path: str = "/console/sign-in") -> str:
    page = http.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(http, email: str, password: str = PASSWORD, prefix: str = ""):
    token = csrf(http, f"{prefix}/console/sign-in")
    return http.post(
        f"{prefix}/console/sign-in", data={"email": email, "password": password, "csrf_token": token, "next": ""}
    )


def make_user(app, email: str, role: str = "admin", account: str | None = None):
    return app.extensions["vats"].users.create(email, role, account, PASSWORD, "test")


def test_the_root_leads_to_the_console_and_the_console_to_sign_in(app, http):
    assert http.get("/").headers["Location"] == "/console/"
    answer = http.get("/console/calls?number=1")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/console/sign-in?next=")
    assert "Sign in" in http.get(answer.headers["Location"]).get_data(as_text=True)


def test_signing_in_and_out_audited(app, http):
    make_user(app, "Ops@Example.com")
    refused = sign_in(http, "ops@example.com", "not the password")
    assert refused.status_code == 401 and "Wrong email or password" in refused.get_data(as_text=True)
    signed = sign_in(http, "OPS@example.com")
    assert signed.status_code == 303 and signed.headers["Location"] == "/console/"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert http.get("/console/").status_code == 200
    http.post("/console/sign-out", data={"csrf_token": csrf(http, "/console/")})
    assert http.get("/console/").status_code == 303
    entries = app.extensions["vats"].accounts.audit.recent()
    assert [(e.action, e.actor, e.result) for e in entries[:2]] == [
        ("console.sign-in", "ops@example.com", "ok"),
        ("console.sign-in", "ops@example.com", "refused: wrong password"),
    ]


def test_a_form_without_its_csrf_token_is_refused(app, http):
    make_user(app, "ops@example.com")
    answer = http.post("/console/sign-in", data={"email": "ops@example.com", "password": PASSWORD})
    assert answer.status_code == 400 and "reload the page" in answer.get_data(as_text=True)
    sign_in(http, "ops@example.com")
    assert http.post("/console/sign-out", data={"csrf_token": "forged"}).status_code == 400
    assert http.get("/console/").status_code == 200  # still signed in


def test_sign_in_is_throttled_per_email(app, http):
    make_user(app, "ops@example.com")
    answers = [sign_in(http, "ops@example.com", "wrong password!").status_code for _ in range(10)]
    assert answers == [401] * 10
    assert sign_in(http, "ops@example.com").status_code == 429  # even the right password waits
    assert sign_in(http, "someone@example.com", "wrong password!").status_code == 401


def test_no_session_id_in_redis_in_clear(app, http, redis_conn):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    cookie = http.get_cookie("vats_console").value
    keys = [key.decode() for key in redis_conn.keys("vats:console:session:*")]
    assert len(keys) == 1
    dump = b"".join(redis_conn.dump(key) or b"" for key in redis_conn.keys("*"))
    assert cookie.encode() not in dump and PASSWORD.encode() not in dump


def test_a_changed_password_or_a_deleted_user_ends_their_sessions(app, http):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    users = app.extensions["vats"].users
    users.set_password("ops@example.com", "another long password", "test")
    assert http.get("/console/").status_code == 303
    sign_in(http, "ops@example.com", "another long password")
    assert http.get("/console/").status_code == 200
    users.remove("ops@example.com", "test")
    assert http.get("/console/").status_code == 303


@pytest.fixture
def acme(app, control) -> str:
    """A stored account ``acme`` on a contract of its own."""
    return add_tenant(app, control, "acme", ("4991110000",)).account


def test_an_account_user_sees_only_their_account(app, http, acme):
    make_user(app, "acme@example.com", "viewer", acme)
    sign_in(http, "acme@example.com")
    assert http.get("/console/").headers["Location"] == "/a/acme/console/"
    assert http.get("/a/acme/console/").status_code == 200
    assert http.get("/a/acme/console/calls").status_code == 200
    mine = http.get("/console/calls")  # the default account's
    unknown = http.get("/a/nobody/console/")
    assert mine.status_code == unknown.status_code == 404
    main = re.compile(r"<main.*</main>", re.DOTALL)
    assert main.search(mine.get_data(as_text=True)).group() == main.search(
        unknown.get_data(as_text=True)
    ).group().replace("/a/nobody", "")
    assert "text/html" in mine.content_type
    assert http.get("/console/accounts").status_code == 404


def test_a_deployment_admin_sees_every_account(app, http, acme):
    make_user(app, "root@example.com")
    sign_in(http, "root@example.com")
    table = http.get("/console/accounts?sort=failed").get_data(as_text=True)
    assert 'data-account="default"' in table and 'href="/a/acme/console/"' in table
    assert http.get("/a/acme/console/").status_code == 200
    assert http.get("/a/acme/console/accounts").status_code == 404  # only unprefixed


def test_a_viewer_may_sign_out_but_not_act(app, http):
    make_user(app, "viewer@example.com", "viewer")
    sign_in(http, "viewer@example.com")
    token = csrf(http, "/console/")
    assert http.post("/console/calls", data={"csrf_token": token}).status_code in (403, 405)
    assert http.post("/console/sign-out", data={"csrf_token": token}).status_code == 303


def add_calls(app, count: int, start: datetime, **fields) -> list[Call]:
    calls = [
        Call(
            id=f"call-{uuid.uuid4().hex[:12]}",
            line=fields.get("line", NUMBERS[0]),
            direction=fields.get("direction", Direction.INBOUND),
            status=fields.get("status", CallStatus.ANSWERED),
            started_at=start + timedelta(minutes=i),
            duration=65,
            ext_raw=fields.get("ext_raw", "79161234567"),
            ext_e164=fields.get("ext_e164", "+79161234567"),
            ext_internal=False,
        )
        for i in range(count)
    ]
    app.extensions["vats"].call_ledger.insert_new(calls, utc_now())
    return calls


def test_the_calls_page_filters_by_a_number_written_any_way(app, http):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    start = utc_now() - timedelta(hours=3)
    add_calls(app, 3, start)
    add_calls(app, 2, start + timedelta(hours=1), ext_raw="74951234567", ext_e164="+74951234567")
    page = http.get("/console/calls?number=8 (916) 123-45-67").get_data(as_text=True)
    assert page.count("+7 916 123-45-67") == 3 and "+7 495 123-45-67" not in page
    everything = http.get("/console/calls").get_data(as_text=True)
    assert everything.count("<tr>") - 1 == 5  # one header row


def test_a_bad_filter_is_named_next_to_its_field(app, http):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    answer = http.get("/console/calls?since=yesterday&direction=sideways")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="f-since-problem"' in page and 'aria-describedby="f-since-problem"' in page
    assert "must be one of: inbound, outbound" in page


def test_the_overview_counts_what_the_ledger_holds(app, http):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    now = utc_now()
    add_calls(app, 4, (now - timedelta(hours=30)).replace(minute=5))
    add_calls(app, 3, (now - timedelta(hours=2)).replace(minute=5), status=CallStatus.MISSED)
    add_calls(app, 2, now - timedelta(days=8))  # older than the chart
    page = http.get("/console/").get_data(as_text=True)
    assert "4 answered, 3 missed" in page
    assert page.count('<rect class="answered"') == page.count('<rect class="missed"') == 1  # one hour each


def test_the_session_cookie_is_secure_behind_https(service_env, redis_conn):
    with app_for(service_env | {"PUBLIC_URL": "https://bridge.example.com"}) as app:
        http = app.test_client()
        make_user(app, "ops@example.com")
        assert "Secure" in sign_in(http, "ops@example.com").headers["Set-Cookie"]


def users_create(env: dict, email: str, role: str, *more: str, password: str = PASSWORD):
    """``flask --app wsgi users create EMAIL --role ROLE … --password-stdin`` in its own process."""
    return run_cli(
        "users", "create", email, "--role", role, *more, "--password-stdin", env=env, input_text=password + "\n"
    )


def test_users_create_from_the_command_line(service_env, acme):
    ok = users_create(service_env, "Ops@Example.com", "admin", "--account", acme)
    assert ok.returncode == 0 and "ops@example.com created: admin of acme" in ok.stdout
    again = users_create(service_env, "ops@example.com", "viewer")
    assert again.returncode == 2 and "exists already" in again.stderr
    weak = users_create(service_env, "new@example.com", "viewer", password="short")
    assert weak.returncode == 2 and "password: must be at least 12 characters" in weak.stderr
    nobody = users_create(service_env, "new@example.com", "viewer", "--account", "nobody")
    assert nobody.returncode == 2 and "no account 'nobody'" in nobody.stderr
    listed = run_cli("users", "list", env=service_env)
    assert "ops@example.com" in listed.stdout and PASSWORD not in listed.stdout + listed.stderr
    missing = run_cli("users", "delete", "nobody@example.com", "--yes", env=service_env)
    assert missing.returncode == 2 and "no user nobody@example.com" in missing.stderr
    unconfirmed = run_cli("users", "delete", "ops@example.com", env=service_env)
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr


def test_deleting_an_account_deletes_its_users(app, acme):
    make_user(app, "acme@example.com", "viewer", acme)
    make_user(app, "root@example.com")
    app.extensions["vats"].accounts.delete(acme, "test")
    assert [u.email for u in app.extensions["vats"].users.all()] == ["root@example.com"]


def test_a_user_of_the_environments_account(app, http):
    make_user(app, "x@example.com", "viewer", DEFAULT)
    sign_in(http, "x@example.com")
    assert http.get("/console/").status_code == 200
    assert http.get("/console/accounts").status_code == 404


def test_hostile_input_gets_a_page_never_a_500(app, http, acme):
    make_user(app, "ops@example.com")
    assert http.post("/console/sign-in", data={"csrf_token": "é", "email": "x"}).status_code == 400
    assert http.get("/console/language?to=en&next=/%0d%0aSet-Cookie:x=1").headers["Location"] == "/console/"
    assert http.get("/console/language?to=en&next=/\\evil.example").headers["Location"] == "/console/"
    kept = http.get("/a/acme/console/calls?line=")
    assert "next=/a/acme/console/calls" in kept.headers["Location"]
    sign_in(http, "ops@example.com")
    token = csrf(http, "/console/")
    for entries in ("abc", "99999999999", "²"):
        answer = http.post(f"/console/routing/{NUMBERS[0]}/plan", data={"csrf_token": token, "entries": entries})
        assert answer.status_code in (200, 422)
    for day in ("0001-01-01", "2999-01-01", "x" * 5000):
        answer = http.post("/console/work/reconcile", data={"csrf_token": token, "day": day})
        assert answer.status_code == 303
        assert "not a day of the last month" in http.get(answer.headers["Location"]).get_data(as_text=True)
    assert http.get("/console/calls?page=99999999999999999999").status_code == 200


def test_pages_are_not_framed_nor_cached(app, http):
    answer = http.get("/console/sign-in")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"


def test_a_wrong_sign_in_names_only_a_user_that_exists(app, http):
    make_user(app, "ops@example.com")
    sign_in(http, "my password is hunter2", "x" * 12)
    sign_in(http, "ops@example.com", "x" * 12)
    actors = [entry.actor for entry in app.extensions["vats"].accounts.audit.recent()[:2]]
    assert actors == ["ops@example.com", "(unknown user)"]


def test_signing_in_again_ends_the_session_before(app, http, redis_conn):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    sign_in(http, "ops@example.com")
    assert len(redis_conn.keys("vats:console:session:*")) == 1


def test_an_account_user_does_not_see_the_deployments_workers(app, http, acme):
    make_user(app, "acme@example.com", "admin", acme)
    sign_in(http, "acme@example.com")
    assert "workers-h" not in http.get("/a/acme/console/").get_data(as_text=True)
