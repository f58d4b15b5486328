"""Helpers for the benchmarks: a sandbox in its own process, memory readings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class SandboxProcess:
    """``python -m integration.sandbox`` on a free loopback port, stopped on exit."""

    def __enter__(self) -> SandboxProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "integration.sandbox", "--port", "0", "--calls", "0"],
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
