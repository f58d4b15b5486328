"""Accounts stored in the database: validated by the environment's schemas, secrets sealed,
every change audited; ``flask --app wsgi accounts …``."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from integration.accounts import MASK, AccountError, Accounts
from integration.callbacks import ClickToCall
from integration.errors import ConfigError
from integration.ledger.accounts import AccountLedger, AuditLog
from integration.ledger.db import make_engine
from integration.phone import parse_phone
from integration.secretbox import SecretBox, new_key
from integration.settings import load_settings
from tests.conftest import SECRET, SECRET_KEYS, run_cli

ACME = f"""
OPERATOR_AUTHORIZATION_TOKEN = "acme-authorization-token-0123456789"
OPERATOR_NUMBERS = ["4991110000", "4991110001"]
OPERATOR_TIMEZONE = "Asia/Yekaterinburg"
CRM_BACKEND = "webhook"
CRM_WEBHOOK_URL = "https://crm.acme.example/hook"
CRM_WEBHOOK_SECRET = "{SECRET}"
API_TOKEN = "acme-api-token-abcdefghijklmnop"
SYNC_INTERVAL = 30

[users]
"7" = "4991110001"

[[rules]]
name = "call back lost deals"
event = "deal.closed"
when = {{ status = "lost" }}
action = "callback"
delay = "2h"
"""
ACME_SECRETS = ["acme-authorization-token-0123456789", "acme-api-token-abcdefghijklmnop", SECRET.removeprefix("whsec_")]


@pytest.fixture
def accounts(service_env, redis_conn):
    settings = load_settings(service_env, dotenv="/nonexistent")
    engine = make_engine(settings.database_url)
    yield Accounts(AccountLedger(engine), AuditLog(engine), SecretBox(settings.secret_keys), settings)
    engine.dispose()


def toml(text: str) -> dict:
    from integration.accounts import parse_account_file

    return parse_account_file(text)


def test_an_account_is_validated_by_the_environments_schemas_and_its_secrets_sealed(accounts, service_env):
    settings = accounts.create("acme", toml(ACME), "test")
    assert settings.operator_numbers == ("4991110000", "4991110001") and settings.sync_interval == 30
    assert settings.users == {"7": "4991110001"} and settings.rules[0].name == "call back lost deals"
    assert settings.crm_backend == "webhook" and settings.operator_timezone == "Asia/Yekaterinburg"
    assert settings.database_url == service_env["DATABASE_URL"]  # deployment-wide: the environment's
    assert accounts.settings("acme") == settings
    masked = accounts.masked("acme")
    assert masked["OPERATOR_AUTHORIZATION_TOKEN"] == masked["API_TOKEN"] == masked["CRM_WEBHOOK_SECRET"] == MASK
    assert masked["OPERATOR_NUMBERS"] == ["4991110000", "4991110001"] and masked["users"] == {"7": "4991110001"}
    database = Path(service_env["DATABASE_URL"].removeprefix("sqlite:///"))
    stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert b"4991110001" in stored  # the settings are there, in clear…
    assert not [secret for secret in ACME_SECRETS if secret.encode() in stored]  # …the secrets are not
    assert [s.id for s in accounts.summaries()] == ["default", "acme"]


def test_every_problem_of_an_account_file_is_named_and_nothing_is_stored(accounts):
    bad = toml(
        ACME.replace(
            "SYNC_INTERVAL = 30", 'SYNC_INTERVAL = "soon"\nREDIS_URL = "redis://elsewhere/0"\nCOLOUR = "red"'
        ).replace('"7" = "4991110001"', '"7" = "4950000000"')
    )
    with pytest.raises(ConfigError) as refused:
        accounts.create("acme", bad, "test")
    problems = refused.value.problems
    assert "REDIS_URL is deployment-wide: set it in the environment, not in an account acme" in problems
    assert "COLOUR is not a setting of an account" in problems
    assert any(p.startswith("SYNC_INTERVAL must be") for p in problems)
    assert any(p.startswith("account acme: users.7 must be one of OPERATOR_NUMBERS") for p in problems)
    assert not [p for p in problems if "acme-authorization-token" in p]
    assert [s.id for s in accounts.summaries()] == ["default"]
    no_token = toml(ACME.replace('OPERATOR_AUTHORIZATION_TOKEN = "acme-authorization-token-0123456789"', ""))
    with pytest.raises(ConfigError, match="OPERATOR_AUTHORIZATION_TOKEN is required"):
        accounts.create("acme", no_token, "test")
    for wrong in ("Acme", "-acme", "a" * 64, "acme corp", "acme\n"):
        with pytest.raises(AccountError, match="account ids are"):
            accounts.create(wrong, toml(ACME), "test")
    with pytest.raises(AccountError, match="the environment's"):
        accounts.create("default", toml(ACME), "test")


def test_changes_are_audited_without_secret_values(accounts):
    accounts.create("acme", toml(ACME), "alice")
    with pytest.raises(AccountError, match="exists already"):
        accounts.create("acme", toml(ACME), "alice")
    changed = ACME.replace("SYNC_INTERVAL = 30", "SYNC_INTERVAL = 45").replace("acme-api-token", "new-api-token")
    assert accounts.update("acme", toml(changed), "bob").sync_interval == 45
    accounts.set_enabled("acme", False, "bob")
    assert [summary.enabled for summary in accounts.summaries()] == [True, False]  # default, acme
    with pytest.raises(AccountError, match="no account 'nobody'"):
        accounts.set_enabled("nobody", True, "bob")
    accounts.delete("acme", "carol")
    entries = [(e.actor, e.action, e.account, e.result) for e in reversed(accounts.audit.recent())]
    assert entries == [
        ("alice", "create", "acme", "ok"),
        ("alice", "create", "acme", "refused: account acme exists already: use update"),
        ("bob", "update", "acme", "ok"),
        ("bob", "disable", "acme", "ok"),
        ("bob", "enable", "nobody", "refused: no account 'nobody' (see `flask --app wsgi accounts list`)"),
        ("carol", "delete", "acme", "ok"),
    ]
    update = accounts.audit.recent()[3]
    assert update.detail == "changed: API_TOKEN, SYNC_INTERVAL"  # names, never values
    text = json.dumps([e.__dict__ for e in accounts.audit.recent()], default=str)
    assert not [secret for secret in [*ACME_SECRETS, "new-api-token"] if secret in text]


def test_rotation_reseals_stored_accounts(accounts):
    accounts.create("acme", toml(ACME), "test")
    new = new_key()
    rotating = Accounts(accounts.ledger, accounts.audit, SecretBox([new, SECRET_KEYS]), accounts.deployment)
    assert rotating.reseal("test") == (1, [])
    only_new = Accounts(accounts.ledger, accounts.audit, SecretBox([new]), accounts.deployment)
    assert only_new.settings("acme").operator_authorization_token == "acme-authorization-token-0123456789"
    assert Accounts(accounts.ledger, accounts.audit, SecretBox([new_key()]), accounts.deployment).reseal("test") == (
        0,
        ["acme"],
    )


def test_the_accounts_commands(service_env, tmp_path):
    path = tmp_path / "acme.toml"
    path.write_text(ACME, encoding="utf-8")
    from integration.ledger.db import upgrade

    upgrade(make_engine(service_env["DATABASE_URL"]))
    created = run_cli("accounts", "create", "acme", "--file", str(path), env=service_env)
    assert created.returncode == 0, created.stderr
    assert "account acme created: 2 number(s), CRM webhook" in created.stdout
    listed = run_cli("accounts", "list", env=service_env).stdout
    assert "default" in listed and "(the environment)" in listed
    assert "acme" in listed and "enabled" in listed and "4991110000,4991110001" in listed
    shown = run_cli("accounts", "show", "acme", env=service_env)
    assert json.loads(shown.stdout)["API_TOKEN"] == MASK
    assert not [secret for secret in ACME_SECRETS if secret in shown.stdout + created.stdout + listed]
    bad = tmp_path / "bad.toml"
    bad.write_text(ACME.replace("SYNC_INTERVAL = 30", 'DATABASE_URL = "sqlite:///x"\nSYNC_INTERVAL = 0'))
    refused = run_cli("accounts", "update", "acme", "--file", str(bad), env=service_env)
    assert refused.returncode == 2 and "error: fix these and try again:" in refused.stderr
    assert "  - DATABASE_URL is deployment-wide" in refused.stderr and "  - SYNC_INTERVAL must be" in refused.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("OPERATOR_NUMBERS = [")
    assert "is not valid TOML" in run_cli("accounts", "create", "b", "--file", str(broken), env=service_env).stderr
    assert run_cli("accounts", "disable", "acme", env=service_env).returncode == 0
    assert "disabled" in run_cli("accounts", "list", env=service_env).stdout
    unsure = run_cli("accounts", "delete", "acme", env=service_env)
    assert unsure.returncode == 2 and "--yes" in unsure.stderr
    assert run_cli("accounts", "delete", "acme", "--yes", env=service_env).returncode == 0
    missing = run_cli("accounts", "show", "acme", env=service_env)
    assert missing.returncode == 1 and "no account 'acme'" in missing.stderr
    audit = run_cli("accounts", "audit", env=service_env).stdout.splitlines()
    assert [line.split()[2:4] for line in audit] == [
        ["delete", "acme:"],
        ["disable", "acme:"],
        ["update", "acme:"],
        ["create", "acme:"],
    ]
    assert "refused: 2 problem(s) in the file" in audit[2]
    rotated = run_cli("secrets", "rotate", env=service_env)
    assert "0 stored account(s)" in rotated.stdout, rotated.stderr


def test_a_contract_number_serves_one_account(accounts):
    accounts.create("acme", toml(ACME), "test")
    with pytest.raises(ConfigError) as taken:
        accounts.create("beta", toml(ACME.replace('"4991110000", ', '"4990000000", ')), "test")
    assert taken.value.problems == [
        "OPERATOR_NUMBERS: 4990000000 is account default's already (a contract number serves one account)",
        "OPERATOR_NUMBERS: 4991110001 is account acme's already (a contract number serves one account)",
    ]
    assert accounts.update("acme", toml(ACME), "test").operator_numbers == ("4991110000", "4991110001")  # its own


def test_each_account_has_a_runtime_of_its_own_and_changes_reach_it_without_a_restart(service_env, redis_conn):
    from integration.runtime import Runtime
    from integration.runtimes import AccountRuntimes

    default = Runtime(load_settings(service_env, dotenv="/nonexistent"))
    now = [0.0]
    runtimes = AccountRuntimes(default, refresh_every=5, clock=lambda: now[0])
    assert runtimes.get("default") is default
    with pytest.raises(AccountError):
        runtimes.get("acme")
    default.accounts.create("acme", toml(ACME), "test")
    now[0] = 5
    acme = runtimes.get("acme")
    assert acme.account == "acme" and acme.settings.sync_interval == 30 and runtimes.get("acme") is acme
    assert acme.redis is default.redis and acme.engine is default.engine and acme.metrics is default.metrics
    assert acme.operator.tokens.key != default.operator.tokens.key  # its own contract's token pair
    assert acme.crm.name == "webhook" and default.crm.name == "local"
    # Redis keys are the account's: the environment's keep their names, a stored account's have its own.
    assert default.key("vats:sync:lock") == "vats:sync:lock" and acme.key("vats:sync:lock") == "vats:a:acme:sync:lock"
    order = ClickToCall("4991110001", parse_phone("89161234567"), idempotency_key="msg_same")
    assert acme.intake.submit(order)[1] and acme.intake.submit(order)[1] is False  # a duplicate in acme…
    assert default.intake.submit(replace(order, phone_from="4990000000"))[1]  # …is new in default
    assert redis_conn.exists("vats:a:acme:idempotency:webhook:msg_same", "vats:idempotency:webhook:msg_same") == 2
    default.accounts.update("acme", toml(ACME.replace("SYNC_INTERVAL = 30", "SYNC_INTERVAL = 45")), "test")
    assert runtimes.get("acme") is acme  # read again within refresh_every (5 s)…
    now[0] = 10
    assert runtimes.get("acme").settings.sync_interval == 45  # …then rebuilt, no restart
    assert runtimes.enabled_ids() == ["default", "acme"]
    default.accounts.set_enabled("acme", False, "test")
    now[0] = 15
    with pytest.raises(AccountError):
        runtimes.get("acme")
    assert runtimes.enabled_ids() == ["default"]
    default.engine.dispose()


def test_keys_are_scoped_by_account_and_the_defaults_are_unchanged():
    from integration.keys import scoped

    assert scoped("default", "vats:rate:") == "vats:rate:"
    assert scoped("acme", "vats:rate:") == "vats:a:acme:rate:"
    assert scoped("acme", "vats:amocrm:tokens") == "vats:a:acme:amocrm:tokens"
    with pytest.raises(ValueError):
        scoped("acme", "rq:queue:default")


def test_deleting_an_account_deletes_all_its_data_and_nothing_else(service_env, redis_conn, tmp_path):
    from integration.ledger.calls import CallLedger
    from integration.ledger.recordings import RecordingLedger
    from integration.operator.auth import contract_key
    from integration.runtime import Runtime
    from integration.services.accounts import delete_account
    from tests.ledger.test_account_scope import NOW, everything_of

    env = service_env | {"RECORDINGS_DIR": str(tmp_path / "recordings")}
    default = Runtime(load_settings(env, dotenv="/nonexistent"))
    default.accounts.create("acme", toml(ACME), "alice")
    mine = everything_of(default.engine, "default", "4990000000", "89161234567")
    theirs = everything_of(default.engine, "acme", "4991110000", "89161234567")
    for account, ids in (("default", mine), ("acme", theirs)):
        ledger = RecordingLedger(default.engine, account)
        with default.recording_store.writer(f"{account}.mp3") as file:
            file.write(b"ID3")
        ledger.mark_stored(ids["call"], 3, "0" * 64, f"{account}.mp3", NOW)
    acme_token = f"vats:tokens:{contract_key('acme-authorization-token-0123456789')}"
    redis_conn.set(acme_token, "3:sealed")
    redis_conn.set("vats:a:acme:sync:lock", "x")
    redis_conn.set("vats:sync:lock", "x")

    delete_account(default, "acme", "carol")

    assert CallLedger(default.engine, "acme").count() == 0 and CallLedger(default.engine, "default").count() == 1
    assert RecordingLedger(default.engine, "default").get(mine["call"]).status == "stored"
    assert not (tmp_path / "recordings" / "acme.mp3").exists() and (tmp_path / "recordings" / "default.mp3").exists()
    assert not redis_conn.exists(acme_token, "vats:a:acme:sync:lock") and redis_conn.exists("vats:sync:lock")
    with pytest.raises(AccountError):
        default.accounts.settings("acme")
    [entry] = [e for e in default.accounts.audit.recent() if e.action == "delete"]
    assert entry.result == "ok" and entry.actor == "carol"
    assert "1 calls" in entry.detail and "1 recording file(s), 2 Redis key(s)" in entry.detail
    with pytest.raises(AccountError, match="no account 'acme'"):
        delete_account(default, "acme", "carol")
    default.engine.dispose()


@pytest.fixture
def stored(service_env, database_url, redis_conn):
    """``accounts`` on SQLite and on PostgreSQL."""
    settings = load_settings(service_env | {"DATABASE_URL": database_url}, dotenv="/nonexistent")
    engine = make_engine(database_url)
    yield Accounts(AccountLedger(engine), AuditLog(engine), SecretBox(settings.secret_keys), settings)
    engine.dispose()


def numbered(*numbers: str) -> dict:
    """ACME with other contract numbers (its user on the first)."""
    listed = ", ".join(f'"{n}"' for n in numbers)
    return toml(
        ACME.replace('["4991110000", "4991110001"]', f"[{listed}]").replace(
            '"7" = "4991110001"', f'"7" = "{numbers[0]}"'
        )
    )


def taken(number: str, account: str) -> str:
    return f"OPERATOR_NUMBERS: {number} is account {account}'s already (a contract number serves one account)"


def test_the_numbers_of_a_deleted_account_can_be_used_again(stored):
    stored.create("acme", numbered("4991110000", "4991110001"), "test")
    with pytest.raises(ConfigError) as refused:
        stored.create("beta", numbered("4992220000", "4991110001"), "test")
    assert refused.value.problems == [taken("4991110001", "acme")]
    stored.delete("acme", "test")
    assert stored.ledger.owners(["4991110000", "4991110001"], "beta") == {}
    stored.create("beta", numbered("4992220000", "4991110001"), "test")
    assert stored.ledger.owners(["4991110000", "4991110001", "4992220000"], "") == {
        "4991110001": "beta",
        "4992220000": "beta",
    }


def test_an_update_moves_a_number_to_another_account_once_its_account_frees_it(stored):
    stored.create("acme", numbered("4991110000", "4991110001"), "test")
    stored.create("beta", numbered("4992220000"), "test")
    with pytest.raises(ConfigError) as refused:
        stored.update("beta", numbered("4992220000", "4991110001"), "test")
    assert refused.value.problems == [taken("4991110001", "acme")]
    stored.update("acme", numbered("4991110000"), "test")
    assert stored.update("beta", numbered("4992220000", "4991110001"), "test").operator_numbers == (
        "4992220000",
        "4991110001",
    )
    assert stored.ledger.owners(["4991110000", "4991110001", "4992220000"], "") == {
        "4991110000": "acme",
        "4991110001": "beta",
        "4992220000": "beta",
    }
    with pytest.raises(ConfigError) as back:
        stored.update("acme", numbered("4991110000", "4991110001"), "test")
    assert back.value.problems == [taken("4991110001", "beta")]


@pytest.mark.parametrize("ids", [("acme", "beta"), ("acme", "acme")])
def test_of_two_accounts_created_at_once_with_the_same_number_one_is_stored(stored, monkeypatch, ids):
    """Both pass the check before either writes: the database refuses the second."""
    both_checked = threading.Barrier(2, timeout=10)
    check = stored._validated

    def check_then_wait(account_id, document):
        settings = check(account_id, document)
        both_checked.wait()
        return settings

    monkeypatch.setattr(stored, "_validated", check_then_wait)
    outcomes: dict[int, object] = {}

    def create(at: int) -> None:
        try:
            outcomes[at] = stored.create(ids[at], numbered("4991110000", "4991110001"), f"admin {at}")
        except (ConfigError, AccountError) as exc:
            outcomes[at] = exc

    threads = [threading.Thread(target=create, args=(at,)) for at in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    [winner] = [at for at, outcome in outcomes.items() if not isinstance(outcome, Exception)]
    refused = outcomes[1 - winner]
    if ids[0] == ids[1]:
        assert str(refused) == "account acme exists already: use update"
    else:
        assert isinstance(refused, ConfigError)
        assert refused.problems == [taken("4991110000", ids[winner]), taken("4991110001", ids[winner])]
    monkeypatch.undo()
    assert [s.id for s in stored.summaries()] == ["default", ids[winner]]
    assert set(stored.ledger.owners(["4991110000", "4991110001"], "").values()) == {ids[winner]}
    assert sorted(e.result.split(":")[0] for e in stored.audit.recent()) == ["ok", "refused"]
