"""Shared fixtures: a real Redis database per test, the sandbox over real HTTP, settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from integration.config import Settings, load_settings
from integration.operator.client import OperatorClient
from integration.operator.factory import build_operator_client
from integration.sandbox import SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NUMBERS = ("4990000000", "4950000000", "4950000001")


@pytest.fixture
def redis_conn() -> Iterator[redis.Redis]:
    """A real Redis database, emptied before and after each test."""
    conn = redis.Redis.from_url(TEST_REDIS_URL)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(numbers=NUMBERS)) as server:
        yield server


class SandboxControl:
    """The sandbox's control API over HTTP."""

    def __init__(self, url: str):
        self.url = url

    def get(self, path: str):
        response = requests.get(self.url + "/_sandbox/" + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict | None = None):
        response = requests.post(self.url + "/_sandbox/" + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    @property
    def authorization_token(self) -> str:
        return self.get("state")["authorization_token"]


@pytest.fixture
def control(sandbox: SandboxServer) -> SandboxControl:
    return SandboxControl(sandbox.url)


def make_env(url: str, token: str, **extra: str) -> dict[str, str]:
    return {
        "OPERATOR_API_URL": url,
        "OPERATOR_AUTHORIZATION_TOKEN": token,
        "OPERATOR_NUMBERS": ",".join(NUMBERS),
        "REDIS_URL": TEST_REDIS_URL,
        "OPERATOR_READ_TIMEOUT": "2",
        "OPERATOR_CONNECT_TIMEOUT": "2",
        **extra,
    }


@pytest.fixture
def sandbox_env(sandbox: SandboxServer, control: SandboxControl) -> dict[str, str]:
    return make_env(sandbox.url, control.authorization_token)


@pytest.fixture
def settings(sandbox_env: dict[str, str]) -> Settings:
    return load_settings(sandbox_env, dotenv="/nonexistent/.env")


@pytest.fixture
def client(settings: Settings, redis_conn: redis.Redis) -> OperatorClient:
    """A client against the sandbox, tokens in the test Redis, fast retries."""
    client = build_operator_client(settings, redis_conn)
    client.sleep = lambda seconds: None
    return client


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """``flask --app wsgi …`` in a separate process, as a person would run it."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
