"""Serving stored accounts: the same click-to-call, sync, CRM and recording paths as the
environment's account, under ``/a/<account>/…``, each account's data out of every other's reach,
each account's periodic work spread and its share of the workers capped."""

from __future__ import annotations

import base64
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rq.job import Job
from rq.serializers import JSONSerializer

from integration import create_app, jobs
from integration.errors import OperatorError
from integration.ledger.work import WorkKey, WorkKind
from integration.queues import BULK, BULK_AFTER, CALLBACKS, DEFAULT, PERIODIC, WORK_LEASE, make_queue
from integration.runtimes import AccountRuntimes
from integration.scheduler import StoredAccountTasks, enqueue_due
from integration.services import calls
from integration.settings import load_settings
from integration.timeutil import utc_now
from tests.bitrix_stand_in import BitrixStandIn
from tests.conftest import (
    API_TOKEN,
    LINK_KEY,
    NUMBERS,
    SECRET,
    SandboxControl,
    config_file,
    kill_worker,
    run_cli,
    run_worker,
    serve,
    start_worker,
)
from tests.receiver import Receiver
from tests.web.helpers import signed


@dataclass(frozen=True)
class Tenant:
    """An account as its users see it: where its paths live and its credentials."""

    account: str
    prefix: str
    numbers: tuple[str, ...]
    secret: str
    api_token: str
    control: SandboxControl  # its contract in the sandbox

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


def tenant_secret(account: str) -> str:
    return "whsec_" + base64.b64encode(f"{account}-secret-padded-to-32-bytes!!"[:32].encode()).decode()


def add_tenant(app: Flask, control: SandboxControl, account: str, numbers: tuple[str, ...], **settings) -> Tenant:
    """A sandbox contract and a stored account on it (local CRM)."""
    made = control.post("contracts", {"id": account, "numbers": list(numbers)})
    runtime = app.extensions["vats"]
    document = {
        "OPERATOR_AUTHORIZATION_TOKEN": made["authorization_token"],
        "OPERATOR_NUMBERS": list(numbers),
        "OPERATOR_API_URL": runtime.settings.operator_api_url,
        "OPERATOR_READ_TIMEOUT": 2,
        "OPERATOR_CONNECT_TIMEOUT": 2,
        "WEBHOOK_SECRET": tenant_secret(account),
        "API_TOKEN": f"{account}-api-token-0123456789",
        **settings,
    }
    runtime.accounts.create(account, document, "test")
    app.extensions["vats.runtimes"].refresh()
    return Tenant(
        account, f"/a/{account}", numbers, tenant_secret(account), document["API_TOKEN"], control.contract(account)
    )


@pytest.fixture
def env(service_env: dict[str, str], database_url: str, tmp_path) -> dict[str, str]:
    """The service on SQLite and on PostgreSQL, with recording links."""
    return service_env | {
        "DATABASE_URL": database_url,
        "RECORDING_LINK_KEYS": LINK_KEY,
        "PUBLIC_URL": "http://bridge.test",
        "RECORDINGS_DIR": str(tmp_path / "recordings"),
    }


@pytest.fixture
def bridge(env, redis_conn):
    app = create_app(load_settings(env, dotenv="/nonexistent"))
    yield app
    app.extensions["vats"].engine.dispose()


DEFAULT_TENANT = ("default", "", NUMBERS, SECRET, API_TOKEN)


@pytest.fixture(params=["default", "acme"])
def tenant(request, bridge, control) -> Tenant:
    """Each test using it runs for the environment's account and for a stored one."""
    if request.param == "default":
        return Tenant(*DEFAULT_TENANT, control)
    return add_tenant(bridge, control, "acme", ("4991110000", "4991110001"))


def click(http, tenant: Tenant, to: str = "89161234567"):
    data, headers = signed({"to": to, "from": tenant.numbers[0]}, secret=tenant.secret)
    return http.post(f"{tenant.prefix}/webhooks/click-to-call", data=data, headers=headers)


def test_a_click_to_call_rings_the_accounts_own_contract_once(bridge, env, tenant, control):
    http = bridge.test_client()
    answer = click(http, tenant)
    assert answer.status_code == 202, answer.json
    request_id = answer.json["id"]
    assert click(http, tenant).json["id"] == request_id  # a double click: debounced, per account
    assert run_worker(env).returncode == 0
    placed = tenant.control.get("callbacks")
    assert [(c["PhoneTo"], c["PhoneFrom"]) for c in placed] == [("89161234567", tenant.numbers[0])]
    if tenant.account != "default":
        assert control.get("callbacks") == []  # the environment's contract rang nobody
    status = http.get(f"{tenant.prefix}/api/callbacks/{request_id}", headers=tenant.auth())
    assert status.status_code == 200 and status.json["status"] == "placed"
    other = "/a/ghost" if tenant.account == "default" else ""
    assert http.get(f"{other}/api/callbacks/{request_id}", headers=tenant.auth()).status_code in (401, 404)


def test_sync_deliveries_and_recordings_stay_in_the_account(bridge, env, tenant):
    http = bridge.test_client()
    runtime = bridge.extensions["vats.runtimes"].get(tenant.account)
    tenant.control.post("calls/generate", {"count": 12, "days": 1, "seed": 7})
    result = jobs.sync_calls(runtime)
    assert result["new"] > 0
    assert run_worker(env).returncode == 0  # deliveries and recordings, as the account's jobs
    listed = http.get(f"{tenant.prefix}/api/calls?limit=500", headers=tenant.auth()).json["items"]
    assert len(listed) == result["found"] and {c["line"] for c in listed} <= set(tenant.numbers)
    assert {c["delivery"] for c in listed} == {"delivered"}
    activities = http.get(f"{tenant.prefix}/api/activities?limit=500", headers=tenant.auth()).json["items"]
    links = [a["recording_url"] for a in activities if a["recording_url"]]
    assert len(activities) == len(listed) and links
    link = urllib.parse.urlsplit(links[0])
    assert link.path.startswith(f"{tenant.prefix}/recordings/")
    assert http.get(f"{link.path}?{link.query}").status_code == 200
    recording_path = link.path.removeprefix(tenant.prefix)
    stored = runtime.recording_store.root
    assert tenant.account == "default" or stored.parts[-2:] == ("a", tenant.account)
    elsewhere = "/a/ghost" if tenant.account == "default" else ""
    assert http.get(f"{elsewhere}{recording_path}?{link.query}").status_code in (403, 404)


def test_each_account_has_its_own_sync_lock(bridge, control):
    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    runtimes = bridge.extensions["vats.runtimes"]
    runtime = runtimes.get(acme.account)
    lock = runtime.redis.lock(runtime.key(calls.SYNC_LOCK), timeout=60)
    assert lock.acquire(blocking=False)
    try:
        assert calls.run_sync(runtime) is None  # never two syncs of one account at once…
        assert calls.run_sync(runtimes.get("default")) is not None  # …nor held back by another's
    finally:
        lock.release()


# --- isolation: another account's credentials, ids and links answer 404 ----------------------


def crm_secrets(account: str) -> dict[str, str]:
    """Each account's own Bitrix24 application token and amoCRM webhook secret."""
    return {
        "BITRIX24_APP_TOKEN": f"{account}-bitrix24-application-token",
        "AMOCRM_WEBHOOK_SECRET": f"{account}-amocrm-webhook-secret-0123",
    }


@pytest.fixture
def three(env, control, redis_conn):
    """The environment's account and two stored ones, each with its own credentials for every endpoint."""
    app = create_app(load_settings(env | crm_secrets("default"), dotenv="/nonexistent"))
    tenants = {
        "default": Tenant(*DEFAULT_TENANT, control),
        "acme": add_tenant(app, control, "acme", ("4991110000",), **crm_secrets("acme")),
        "beta": add_tenant(app, control, "beta", ("4992220000",), **crm_secrets("beta")),
    }
    yield app, tenants
    app.extensions["vats"].engine.dispose()


def requests_of(http, tenant: Tenant) -> dict[str, tuple[str, str, dict]]:
    """Every kind of request the tenant's own credentials make, by name: (method, path, how)."""
    answer = click(http, tenant)
    assert answer.status_code == 202
    event = signed({"type": "contact.updated", "data": {"id": 1}}, secret=tenant.secret)
    order = signed({"to": "89161234567", "from": tenant.numbers[0]}, secret=tenant.secret)
    secrets = crm_secrets(tenant.account)
    bitrix24 = {"auth[application_token]": secrets["BITRIX24_APP_TOKEN"], "event": "ONAPPTEST"}
    return {
        "click-to-call": ("POST", "/webhooks/click-to-call", {"signed": order}),
        "event": ("POST", "/webhooks/events", {"signed": event}),
        "bitrix24": ("POST", "/webhooks/bitrix24", {"form": bitrix24}),
        "amocrm": ("POST", f"/webhooks/amocrm/{secrets['AMOCRM_WEBHOOK_SECRET']}", {"form": {}}),
        "callback status": ("GET", f"/api/callbacks/{answer.json['id']}", {"headers": tenant.auth()}),
        "calls": ("GET", "/api/calls", {"headers": tenant.auth()}),
        "contacts": ("GET", "/api/contacts", {"headers": tenant.auth()}),
        "activities": ("GET", "/api/activities", {"headers": tenant.auth()}),
    }


def send(http, method: str, path: str, how: dict):
    if "signed" in how:
        data, headers = how["signed"]
        return http.open(path, method=method, data=data, headers=headers)
    if "form" in how:
        return http.open(path, method=method, data=how["form"])
    return http.open(path, method=method, headers=how["headers"])


def test_another_accounts_credentials_and_ids_answer_404(three):
    app, tenants = three
    http = app.test_client()
    own = {name: requests_of(http, tenant) for name, tenant in tenants.items()}
    kinds = sorted(own["default"])

    @hypothesis_settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        owner=st.sampled_from(sorted(tenants)),
        target=st.sampled_from([*sorted(tenants), "ghost"]),
        kind=st.sampled_from(kinds),
    )
    def cross_account(owner: str, target: str, kind: str) -> None:
        method, path, spec = own[owner][kind]
        prefix = "" if target == "default" else f"/a/{target}"
        answer = send(http, method, prefix + path, spec)
        if owner == target:
            assert answer.status_code in (200, 202), (owner, target, kind, answer.json)
        elif target == "default":
            assert answer.status_code in (401, 404), (owner, target, kind, answer.json)  # the unprefixed paths
        else:
            assert answer.status_code == 404, (owner, target, kind, answer.json)
            assert answer.json["detail"] == "no such resource" and "WWW-Authenticate" not in answer.headers

    cross_account()


def test_a_disabled_account_answers_404_and_its_queued_jobs_wait(bridge, env, control):
    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    http = bridge.test_client()
    assert click(http, acme).status_code == 202  # queued before it was disabled
    runtime = bridge.extensions["vats"]
    runtime.accounts.set_enabled("acme", False, "test")
    bridge.extensions["vats.runtimes"].refresh()
    assert click(http, acme, to="89161234568").status_code == 404
    assert http.get("/a/acme/api/calls", headers=acme.auth()).status_code == 404
    assert run_worker(env).returncode == 0
    assert acme.control.get("callbacks") == []  # not placed while disabled


# --- periodic work of many accounts ---------------------------------------------------------


def test_each_enabled_account_gets_one_sync_per_interval_spread_over_it(bridge, control, redis_conn):
    runtime = bridge.extensions["vats"]
    for i in range(40):
        add_tenant(bridge, control, f"t{i}", (f"49933{i:05d}",), SYNC_INTERVAL=60)
    runtime.accounts.set_enabled("t0", False, "test")
    runtimes = AccountRuntimes(runtime)
    tasks = StoredAccountTasks(runtimes)()
    syncs = [task for task in tasks if task.func == "integration.jobs.sync_calls"]
    assert sorted(task.account for task in syncs) == sorted(f"t{i}" for i in range(1, 40))  # not the disabled one
    assert len({task.offset for task in syncs}) > 30  # spread over the minute, not all at its start
    seen: dict[str, int] = {}
    now = 1_800_000_000.0
    first = enqueue_due(redis_conn, now, syncs, seen)
    assert len(first) == 39 and redis_conn.llen(f"rq:queue:{PERIODIC}") == 39
    assert enqueue_due(redis_conn, now + 1, syncs, seen) == []  # handled this interval: Redis not asked
    assert enqueue_due(redis_conn, now, syncs) == []  # another scheduler: the same runs exist
    job = Job.fetch(first[0], connection=redis_conn, serializer=JSONSerializer)
    assert job.meta["account"] == first[0].removeprefix("periodic-sync_calls-").rsplit("-", 1)[0]
    assert len(enqueue_due(redis_conn, now + 60, syncs, seen)) == 39  # the next interval: once more each


# --- fairness ----------------------------------------------------------------------------------


def test_an_accounts_work_beyond_its_slots_waits_without_using_an_attempt(bridge, control, env):
    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    runtime = bridge.extensions["vats.runtimes"].get(acme.account)
    key = WorkKey(WorkKind.HANDLE_EVENT, "acme/webhook:msg_1")
    runtime.event_ledger.add(key.subject, "deal.closed", {"id": 1}, utc_now())
    held = [runtime.slots.hold() for _ in range(runtime.settings.account_concurrency)]
    for slot in held:
        assert slot.__enter__()
    try:
        assert jobs.run_work_item(runtime, key.kind, key.subject).startswith("deferred")
        item = runtime.work_ledger.get(key)
        assert item.attempts == 0 and item.next_attempt_at > utc_now() + timedelta(seconds=2)
        default = bridge.extensions["vats"]  # other accounts' work is not held back
        default.event_ledger.add("webhook:msg_1", "deal.closed", {"id": 1}, utc_now())
        assert jobs.run_work_item(default, WorkKind.HANDLE_EVENT, "webhook:msg_1") == "no rule matched"
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert jobs.run_work_item(runtime, key.kind, key.subject) == "no rule matched"


def test_a_slow_contracts_click_to_calls_beyond_its_slots_wait_and_ring_once(bridge, env, control, redis_conn):
    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    runtime = bridge.extensions["vats.runtimes"].get(acme.account)
    request_id = click(bridge.test_client(), acme).json["id"]
    make_queue(CALLBACKS, redis_conn).empty()  # the worker below takes it from the scheduler instead
    held = [runtime.callback_slots.hold() for _ in range(runtime.settings.account_callback_concurrency)]
    for slot in held:
        assert slot.__enter__()  # as if that many of acme's click-to-calls were being placed
    try:
        assert jobs.place_callback(runtime, request_id) == {"id": request_id, "status": "waiting"}
        [waiting] = make_queue(CALLBACKS, redis_conn).scheduled_job_registry.get_job_ids()
        assert waiting.startswith(request_id) and acme.control.get("callbacks") == []
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    time.sleep(1.1)  # its second has passed
    assert run_worker(env).returncode == 0  # RQ's scheduler queues it; placed now, once
    assert len(acme.control.get("callbacks")) == 1
    assert runtime.callback_ledger.get(request_id).status.value == "placed"


def test_a_backlog_goes_to_the_bulk_queue_behind_everyone_elses_work(bridge, control, redis_conn):
    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    acme.control.post("calls/generate", {"count": BULK_AFTER + 50, "days": 1, "seed": 3})
    control.post("calls/generate", {"count": 5, "days": 1, "seed": 4})
    runtimes = bridge.extensions["vats.runtimes"]
    backfill = calls.run_sync(runtimes.get(acme.account))
    few = calls.run_sync(runtimes.get("default"))
    assert len(backfill.new_ids) > BULK_AFTER and 0 < len(few.new_ids) <= BULK_AFTER
    bulk, default = make_queue(BULK, redis_conn).job_ids, make_queue(DEFAULT, redis_conn).job_ids
    assert len([j for j in bulk if j.startswith("acme-deliver-local-")]) == len(backfill.new_ids)
    assert len([j for j in default if j.startswith("deliver-local-")]) == len(few.new_ids)
    assert not [j for j in default if j.startswith("acme-deliver-")]


class HangingCrm:
    """A CRM webhook endpoint that answers nothing until released."""

    def __init__(self):
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.requests = self.active = self.most_at_once = 0
        self.app = Flask("hanging")
        self.app.add_url_rule("/hook", view_func=self.hook, methods=["POST"])

    def hook(self):
        with self.lock:
            self.requests += 1
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
        self.released.wait(60)
        with self.lock:
            self.active -= 1
        return "", 204


def test_a_crm_that_hangs_holds_only_its_accounts_slots(bridge, env, control, redis_conn):
    """Two workers, ACCOUNT_CONCURRENCY=1: while acme's CRM hangs on a delivery, the other
    accounts' click-to-calls are placed and their calls synced and delivered."""
    crm = HangingCrm()
    with serve(crm.app) as url:
        acme = add_tenant(
            bridge,
            control,
            "acme",
            ("4991110000",),
            CRM_BACKEND="webhook",
            CRM_WEBHOOK_URL=f"{url}/hook",
            CRM_WEBHOOK_SECRET=SECRET,
        )
        beta = add_tenant(bridge, control, "beta", ("4992220000",), SYNC_INTERVAL=2)
        runtimes = bridge.extensions["vats.runtimes"]
        acme.control.post("calls/generate", {"count": 12, "days": 1, "seed": 7})
        beta.control.post("calls/generate", {"count": 3, "days": 1, "seed": 8})
        jobs.sync_calls(runtimes.get(acme.account))  # a dozen deliveries for the hanging CRM
        workers = [start_worker(env | {"ACCOUNT_CONCURRENCY": "1", "SYNC_INTERVAL": "2"}) for _ in range(2)]
        try:
            http = bridge.test_client()
            deadline = time.time() + 60
            while crm.requests == 0:
                assert time.time() < deadline, "the hanging CRM was never called"
                time.sleep(0.1)
            assert click(http, beta).status_code == 202
            beta_runtime = runtimes.get(beta.account)
            while not (beta.control.get("callbacks") and beta_runtime.delivery_ledger.counts("local").get("delivered")):
                assert time.time() < deadline, "beta waited behind acme's hanging CRM"
                time.sleep(0.2)
            assert crm.most_at_once == 1  # acme's one slot is taken; its other deliveries wait for it
        finally:
            crm.released.set()  # the server's threads end before it closes
            for worker in workers:
                kill_worker(worker)


# --- readiness and commands -----------------------------------------------------------------


def test_readyz_names_the_accounts_whose_authorization_a_person_must_fix(bridge, control):
    add_tenant(bridge, control, "acme", ("4991110000",))
    beta = add_tenant(bridge, control, "beta", ("4992220000",))
    beta.control.post("authorization-token/revoke")
    runtime = bridge.extensions["vats.runtimes"].get(beta.account)
    with pytest.raises(OperatorError):
        runtime.operator.tokens.access_token()
    ready = bridge.test_client().get("/readyz")
    assert ready.status_code == 200  # the deployment serves the others
    summary = ready.json["checks"]["accounts"]
    assert summary.startswith("ok (2 stored accounts served; 1 need a person: beta (authorization ")


def test_per_account_commands_take_account(bridge, env, control):
    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    acme.control.post("calls/generate", {"count": 4, "days": 1, "seed": 9})
    synced = run_cli("sync", "--account", "acme", env=env)
    assert synced.returncode == 0 and "4 new" in synced.stdout, synced.stdout + synced.stderr
    listed = run_cli(
        "operator", "calls", "--account", "acme", "--since", f"{utc_now() - timedelta(days=2):%Y-%m-%d}", env=env
    )
    assert listed.returncode == 0 and "4991110000" in listed.stdout and "4990000000" not in listed.stdout
    ghost = run_cli("sync", "--account", "ghost", env=env)
    assert ghost.returncode == 2 and "no account 'ghost' is served" in ghost.stderr


# --- a CRM under a stored account ---------------------------------------------------------------

BITRIX24_TOKEN = "bitrix24-application-token-of-the-test"


@pytest.fixture(params=["default", "acme"])
def bitrix_tenant(request, env, control, redis_conn, tmp_path):
    """A Bitrix24 stand-in and an account (the environment's, or a stored one) writing to it."""
    stand_in = BitrixStandIn()
    with serve(stand_in.app) as url:
        crm = {
            "CRM_BACKEND": "bitrix24",
            "BITRIX24_WEBHOOK_URL": f"{url}/rest/1/hook",
            "BITRIX24_APP_TOKEN": BITRIX24_TOKEN,
        }
        if request.param == "default":
            env = env | crm | config_file(tmp_path, '[users]\n"1269" = "4990000000"\n')
            app = create_app(load_settings(env, dotenv="/x"))
            tenant = Tenant(*DEFAULT_TENANT, control)
        else:
            app = create_app(load_settings(env, dotenv="/x"))
            tenant = add_tenant(app, control, "acme", ("4991110000",), **crm, users={"1269": "4991110000"})
        yield app, env, tenant, stand_in
        app.extensions["vats"].engine.dispose()


def test_bitrix24_clicks_ring_and_calls_are_registered_for_the_account(bitrix_tenant):
    app, env, tenant, stand_in = bitrix_tenant
    http = app.test_client()
    event = {
        "event": "ONEXTERNALCALLSTART",
        "data[CALL_ID]": "externalCall.click.1",
        "data[USER_ID]": "1269",
        "data[PHONE_NUMBER]": "+79161234567",
        "auth[application_token]": BITRIX24_TOKEN,
    }
    first = http.post(f"{tenant.prefix}/webhooks/bitrix24", data=event)
    assert first.status_code == 200 and http.post(f"{tenant.prefix}/webhooks/bitrix24", data=event).json == first.json
    tenant.control.post("calls/generate", {"count": 5, "days": 1, "seed": 2})
    found = jobs.sync_calls(app.extensions["vats.runtimes"].get(tenant.account))["found"]
    assert run_worker(env).returncode == 0  # the click, then each call's delivery
    [placed] = tenant.control.get("callbacks")
    assert (placed["PhoneFrom"], placed["PhoneTo"]) == (tenant.numbers[0], "89161234567")
    registered = [params for method, params in stand_in.calls if method == "telephony.externalCall.register"]
    assert len(registered) == found > 0 and len(stand_in.finished) == found
    assert {params["LINE_NUMBER"] for params in registered} <= set(tenant.numbers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # it scans the database file
def test_no_secret_of_a_stored_account_in_clear_in_redis_or_the_database(bridge, env, control, redis_conn):
    from tests.test_secrets_at_rest import every_value

    receiver = Receiver(SECRET)
    with serve(receiver.app) as url:
        crm = {"CRM_BACKEND": "webhook", "CRM_WEBHOOK_URL": f"{url}/hook", "CRM_WEBHOOK_SECRET": SECRET}
        acme = add_tenant(bridge, control, "acme", ("4991110000",), **crm)
        http = bridge.test_client()
        assert click(http, acme).status_code == 202
        acme.control.post("calls/generate", {"count": 3, "days": 1, "seed": 5})
        runtime = bridge.extensions["vats.runtimes"].get(acme.account)
        jobs.sync_calls(runtime)
        assert run_worker(env).returncode == 0
    sent = [event["type"] for event in receiver.events.values()]  # signed with the CRM's secret
    assert sent.count("call.completed") == 3 and sent.count("callback.finished") == 1
    access = runtime.operator.tokens.access_token()  # the contract's pair, as the worker left it
    secrets = [
        access,
        runtime.settings.operator_authorization_token,
        acme.api_token,
        acme.secret.removeprefix("whsec_"),
        SECRET.removeprefix("whsec_"),
    ]
    dump = every_value(redis_conn)
    database = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))
    stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert b"4991110000" in stored and b"acme" in dump  # what is not secret is there…
    assert [s for s in secrets if s.encode() in dump or s.encode() in stored] == []  # …no secret is


def test_one_sweep_serves_every_account_a_fair_share_and_finds_lost_jobs(bridge, control, redis_conn, monkeypatch):
    from integration.services import sweeper

    acme = add_tenant(bridge, control, "acme", ("4991110000",))
    runtimes = bridge.extensions["vats.runtimes"]
    backlog, few = runtimes.get(acme.account), runtimes.get("default")
    now = utc_now()
    for i in range(sweeper.PER_ACCOUNT + 50):
        backlog.event_ledger.add(f"acme/webhook:msg_{i}", "contact.updated", {"id": i}, now - timedelta(hours=1))
    few.event_ledger.add("webhook:msg_late", "contact.updated", {"id": 1}, now)
    assert jobs.retry_due_deliveries(runtimes) == sweeper.PER_ACCOUNT + 1  # the newest one too
    queued = len(make_queue(DEFAULT, redis_conn).job_ids), len(make_queue(BULK, redis_conn).job_ids)
    assert queued == (1, sweeper.PER_ACCOUNT)  # acme's share is a backlog: behind the others' work
    assert jobs.retry_due_deliveries(runtimes) == 50  # the rest; the queued ones wait for their jobs
    assert jobs.retry_due_deliveries(runtimes) == 0
    redis_conn.flushdb()  # every job lost: after a job's time limit they are due again
    later = now + timedelta(seconds=WORK_LEASE + 1)
    monkeypatch.setattr(sweeper, "utc_now", lambda: later)
    assert jobs.retry_due_deliveries(runtimes) == sweeper.PER_ACCOUNT + 1
