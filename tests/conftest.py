"""Shared fixtures: a real Redis database per test, the sandbox over real HTTP, settings."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import text
from werkzeug.serving import make_server

from integration import create_app
from integration.config import Settings
from integration.ledger.db import make_engine, upgrade
from integration.operator.client import OperatorClient
from integration.operator.factory import build_operator_client
from integration.sandbox import SandboxConfig, SandboxServer
from integration.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NUMBERS = ("4990000000", "4950000000", "4950000001")


class RedisDatabaseBusy(Exception):
    """Another test run on this machine is using the same Redis database."""


class RedisDatabaseClaim:
    """This test run's exclusive use of one Redis database, among the test runs on this machine.

    The tests empty their database and run workers that take every job in its queues: two runs
    on one database run each other's jobs (a worker places the other run's click-to-calls on its
    own sandbox, whose call history then holds calls its test never made) and empty each other's
    queues and locks. An advisory lock on a file named after the server and database number keeps
    a second run out; the kernel drops it when the run ends, however it ends.
    """

    def __init__(self, url: str):
        kwargs = redis.Redis.from_url(url).connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{_address(kwargs.get('host', 'localhost'))}:{kwargs.get('port', 6379)}"
        self.database = f"{where}/{kwargs.get('db', 0)}"
        name = "vats-bridge-tests-redis-" + hashlib.sha256(self.database.encode()).hexdigest()[:16] + ".lock"
        self.path = Path(tempfile.gettempdir()) / name
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # made by another user: locking needs no write access
            self._fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.path.read_text(errors="replace").strip() or "another test run"
            os.close(self._fd)
            raise RedisDatabaseBusy(
                f"Redis database {self.database} is in use by {holder}; give each concurrent test run"
                " a database of its own: TEST_REDIS_URL=redis://127.0.0.1:6379/<another number>"
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"the test run of process {os.getpid()} in {os.getcwd()}\n".encode())

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _address(host: str) -> str:
    """``localhost`` and ``127.0.0.1`` are one server."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


@pytest.fixture(scope="session")
def redis_database() -> Iterator[str]:
    """``TEST_REDIS_URL``, claimed for this run: a second run on the same database stops here."""
    try:
        claim = RedisDatabaseClaim(TEST_REDIS_URL)
    except RedisDatabaseBusy as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    yield TEST_REDIS_URL
    claim.release()


@pytest.fixture
def redis_conn(redis_database: str) -> Iterator[redis.Redis]:
    """A real Redis database, emptied before and after each test."""
    conn = redis.Redis.from_url(redis_database)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(numbers=NUMBERS)) as server:
        yield server


class SandboxControl:
    """The sandbox's control API over HTTP: the default contract's, or (``contract``) another's."""

    def __init__(self, url: str, contract: str | None = None):
        self.url = url
        self.base = f"{url}/_sandbox/" + (f"contracts/{contract}/" if contract else "")

    def contract(self, contract_id: str) -> SandboxControl:
        """The same control API for another contract: ``/_sandbox/contracts/<id>/…``."""
        return SandboxControl(self.url, contract_id)

    def get(self, path: str):
        response = requests.get(self.base + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict | None = None):
        response = requests.post(self.base + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def delete(self, path: str):
        response = requests.delete(self.base + path, timeout=10)
        response.raise_for_status()
        return response.json()

    @property
    def authorization_token(self) -> str:
        return self.get("state")["authorization_token"]


@pytest.fixture
def control(sandbox: SandboxServer) -> SandboxControl:
    return SandboxControl(sandbox.url)


SECRET_KEYS = base64.urlsafe_b64encode(b"vats-bridge-tests-sealing-key-01").decode()  # a Fernet key


def make_env(url: str, token: str, **extra: str) -> dict[str, str]:
    return {
        "SECRET_KEYS": SECRET_KEYS,
        "OPERATOR_API_URL": url,
        "OPERATOR_AUTHORIZATION_TOKEN": token,
        "OPERATOR_NUMBERS": ",".join(NUMBERS),
        "REDIS_URL": TEST_REDIS_URL,
        "OPERATOR_READ_TIMEOUT": "2",
        "OPERATOR_CONNECT_TIMEOUT": "2",
        **extra,
    }


@pytest.fixture
def sandbox_env(sandbox: SandboxServer, control: SandboxControl, redis_database: str) -> dict[str, str]:
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


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """``flask --app wsgi …`` in a separate process, as a person would run it."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
    )


# --- the service: ledger databases, the web app, workers --------------------------------------

SECRET = "whsec_" + base64.b64encode(b"test-secret-test-secret-32bytes!").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"an-older-secret-still-accepted!!").decode()
API_TOKEN = "test-api-token"
LINK_KEY = "test-recording-link-key-0123456789abcdef"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_database(url: str) -> str:
    """Empty the database at ``url`` and bring it to the current schema."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return fresh_database(f"sqlite:///{tmp_path}/ledger.db")
    return fresh_database(POSTGRES_URL)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return fresh_database(f"sqlite:///{tmp_path}/ledger.db")


@pytest.fixture
def service_env(sandbox_env: dict[str, str], sqlite_url: str) -> dict[str, str]:
    """Settings for the whole service against the sandbox, the test Redis and a fresh SQLite."""
    return sandbox_env | {
        "DATABASE_URL": sqlite_url,
        "WEBHOOK_SECRET": f"{SECRET} {OLD_SECRET}",
        "API_TOKEN": API_TOKEN,
        "CALLBACK_REQUEST_FROM": "4950000000",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def app(service_env, redis_conn):
    with app_for(service_env) as app:
        yield app


@contextlib.contextmanager
def app_for(env: dict[str, str]) -> Iterator:
    """The web app on ``env``; its database connections closed afterwards."""
    app = create_app(load_settings(env, dotenv="/nonexistent/.env"))
    try:
        yield app
    finally:
        app.extensions["vats"].engine.dispose()


def config_file(tmp_path: Path, toml: str) -> dict[str, str]:
    """``INTEGRATION_CONFIG`` naming a file in ``tmp_path`` that holds ``toml``."""
    path = tmp_path / "integration.toml"
    path.write_text(toml)
    return {"INTEGRATION_CONFIG": str(path)}


@pytest.fixture
def http(app):
    """Flask's test client for the app."""
    return app.test_client()


@contextlib.contextmanager
def serve(app):
    """The app over real HTTP on a free loopback port (threaded)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()


def run_worker(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python worker.py --burst`` in its own process."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "worker.py", "--burst", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_WORKERS: list[subprocess.Popen] = []


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """``python worker.py`` running until killed, in a process group of its own (RQ forks its
    scheduler): ``kill_worker`` kills the whole group, and every group is killed after the test."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    worker = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _WORKERS.append(worker)
    return worker


def kill_worker(worker: subprocess.Popen) -> None:
    """SIGKILL a worker with everything it started, as when its machine or container dies."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    yield
    while _WORKERS:
        worker = _WORKERS.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
