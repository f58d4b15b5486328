"""Helpers for the benchmarks: a sandbox in its own process, memory readings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def emptied_and_migrated(url: str) -> str:
    """The ledger database at ``url`` emptied (PostgreSQL: its public schema dropped) and brought
    to the current schema; returns ``url``."""
    from sqlalchemy import text

    from integration.ledger.db import make_engine, upgrade

    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()
    return url


def memory_kib(field: str, pid: int | str = "self") -> int:
    """VmRSS (now) or VmHWM (peak) of this process (or of process ``pid``), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class SandboxProcess:
    """``python -m integration.sandbox`` on a free loopback port, stopped on exit; ``args`` are
    more of its options (``--contracts N``, …)."""

    def __init__(self, args: list[str] | None = None):
        self.args = args or []

    def __enter__(self) -> SandboxProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "integration.sandbox", "--port", "0", "--calls", "0", *self.args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        self.url = line.split()[3]
        deadline = time.time() + 10
        while True:
            try:
                self.state = requests.get(self.url + "/_sandbox/state", timeout=2).json()
                return self
            except requests.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def control(self, path: str, body: dict) -> dict:
        response = requests.post(self.url + "/_sandbox/" + path, json=body, timeout=120)
        response.raise_for_status()
        return response.json()

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            if time.time() > deadline:
                raise
            time.sleep(0.1)


class Process:
    """A command in the background, stopped (SIGTERM, then SIGKILL) on exit; its output goes to
    the file ``log`` (appended), or nowhere."""

    def __init__(self, args: list[str], env: dict[str, str], log: str | None = None):
        self.args, self.env, self.log = args, env, log

    def __enter__(self) -> Process:
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # closed once the child has it
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **self.env},
            stdout=output,
            stderr=output,
        )
        if self.log:
            output.close()  # the child has its own copy
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def gunicorn(app: str, port: int, env: dict[str, str], workers: int = 2, log: str | None = None) -> Process:
    return Process(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app,
        ],
        env,
        log,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(sandbox: SandboxProcess, workdir: str, **extra: str) -> dict[str, str]:
    """Settings for the service against a benchmark sandbox (Redis db 12, SQLite in ``workdir``)."""
    return {
        "OPERATOR_API_URL": sandbox.url,
        "OPERATOR_AUTHORIZATION_TOKEN": sandbox.state["authorization_token"],
        "OPERATOR_NUMBERS": ",".join(sandbox.state["numbers"]),
        "REDIS_URL": "redis://127.0.0.1:6379/12",
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "WEBHOOK_SECRET": BENCH_SECRET,
        "SECRET_KEYS": BENCH_SECRET_KEYS,
        "CLICK_TO_CALL_DEBOUNCE": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


BENCH_SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1iZW5jaG1hcmstc2VjcmV0"
BENCH_SECRET_KEYS = "YmVuY2htYXJrLXNlYWxpbmcta2V5LTMyLWJ5dGVzISE="  # a Fernet key (32 bytes)
