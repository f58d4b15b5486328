"""Secrets at rest: sealed with SECRET_KEYS in Redis; keys rotate; no secret in a Redis dump."""

from __future__ import annotations

import base64

import pytest

from integration.errors import ConfigError
from integration.operator.auth import RedisTokenStore, TokenState, contract_key
from integration.secretbox import SecretBox, SecretKeyError, key_problem, new_key
from integration.settings import load_settings
from tests.conftest import SECRET_KEYS, app_for, run_cli

OLD, NEW = SECRET_KEYS, new_key()


def test_sealed_values_open_with_any_key_and_reseal_with_the_first():
    sealed = SecretBox([OLD]).seal("access-token-value")
    assert sealed.startswith("fernet:") and "access-token-value" not in sealed
    rotating = SecretBox([NEW, OLD])
    assert rotating.open(sealed) == "access-token-value"
    resealed = rotating.reseal(sealed)
    assert SecretBox([NEW]).open(resealed) == "access-token-value"
    assert rotating.open('{"written": "before sealing"}') == '{"written": "before sealing"}'
    with pytest.raises(SecretKeyError) as refused:
        SecretBox([NEW]).open(sealed)  # the old key was dropped too early
    assert OLD not in str(refused.value) and NEW not in str(refused.value) and "SECRET_KEYS" in str(refused.value)
    assert repr(rotating) == "SecretBox(keys=[redacted])"


def test_secret_keys_are_required_and_checked_without_being_echoed(sandbox_env):
    env = {k: v for k, v in sandbox_env.items() if k != "SECRET_KEYS"}
    with pytest.raises(ConfigError) as missing:
        load_settings(env, dotenv="/nonexistent")
    assert "SECRET_KEYS is required but not set" in missing.value.problems
    short = base64.urlsafe_b64encode(b"sixteen-byte-key").decode()
    with pytest.raises(ConfigError) as bad:
        load_settings(env | {"SECRET_KEYS": f"{NEW} {short}"}, dotenv="/nonexistent")
    [problem] = bad.value.problems
    assert problem.startswith("SECRET_KEYS must be") and "key 2 decodes to 16 bytes, not 32" in problem
    assert short not in problem and NEW not in problem
    assert key_problem("not base64 at all!") == "is not url-safe base64"
    assert repr(load_settings(sandbox_env, dotenv="/nonexistent")).count(SECRET_KEYS) == 0


def every_value(redis_conn) -> bytes:
    """Every key and value of the database, as a dump would hold them."""
    readers = {
        b"string": lambda key: [redis_conn.get(key)],
        b"hash": lambda key: [item for pair in redis_conn.hgetall(key).items() for item in pair],
        b"list": lambda key: redis_conn.lrange(key, 0, -1),
        b"set": lambda key: list(redis_conn.smembers(key)),
        b"zset": lambda key: [member for member, _ in redis_conn.zrange(key, 0, -1, withscores=True)],
    }
    found = []
    for key in redis_conn.scan_iter(count=1000):
        found.append(key)
        found.extend(value for value in readers.get(redis_conn.type(key), lambda key: [])(key) if value)
    return b"\n".join(found)


def test_no_operator_token_in_clear_in_redis_and_rotation_keeps_the_pair(service_env, redis_conn, control):
    with app_for(service_env) as app:
        tokens = app.extensions["vats"].operator.tokens
        tokens.access_token()
        state = tokens.store.load(tokens.key)
    secrets = [service_env["OPERATOR_AUTHORIZATION_TOKEN"], state.access_token, state.refresh_token]
    dump = every_value(redis_conn)
    assert all(secrets) and not [secret for secret in secrets if secret.encode() in dump]

    rotated = run_cli("secrets", "rotate", env=service_env | {"SECRET_KEYS": f"{NEW} {OLD}"})
    assert rotated.returncode == 0, rotated.stderr
    assert "sealed with the first key: 1 operator token pair(s), 0 local token pair(s)" in rotated.stdout
    only_new = run_cli("operator", "token", "--json", env=service_env | {"SECRET_KEYS": NEW})
    assert only_new.returncode == 0, only_new.stderr  # the old key is gone and the pair still opens
    assert control.get("stats")["auth.create"] == 1  # the same pair: nothing was made anew
    dropped_too_early = run_cli("operator", "token", env=service_env | {"SECRET_KEYS": OLD})
    assert (
        dropped_too_early.returncode != 0 and "cannot be opened with any key of SECRET_KEYS" in dropped_too_early.stderr
    )
    assert OLD not in dropped_too_early.stderr + dropped_too_early.stdout


def test_a_pair_stored_in_clear_before_sealing_is_read_then_sealed(service_env, redis_conn):
    key = contract_key(service_env["OPERATOR_AUTHORIZATION_TOKEN"])
    legacy = TokenState(generation=3, access_token="clear-access-token", access_expires_at=2e9)
    redis_conn.set("vats:tokens:" + key, legacy.to_json())
    store = RedisTokenStore(redis_conn, SecretBox([SECRET_KEYS]))
    assert store.load(key) == legacy
    assert store.reseal() == (1, 0)
    assert b"clear-access-token" not in redis_conn.get("vats:tokens:" + key)
    assert store.load(key) == legacy
    assert not store.compare_and_set(key, TokenState(generation=4), expected_generation=2)  # generations still count
    assert store.compare_and_set(key, TokenState(generation=4), expected_generation=3)
