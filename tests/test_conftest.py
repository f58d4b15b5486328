"""The test suite's own isolation: one Redis database per concurrent test run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, RedisDatabaseBusy, RedisDatabaseClaim

CLAIM = """
import sys
from tests.conftest import RedisDatabaseBusy, RedisDatabaseClaim
try:
    RedisDatabaseClaim(sys.argv[1])
except RedisDatabaseBusy as exc:
    print(exc)
    sys.exit(3)
"""


def claim_elsewhere(url: str) -> subprocess.CompletedProcess:
    """Another test run on this machine claiming ``url``."""
    return subprocess.run(
        [sys.executable, "-c", CLAIM, url], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_second_run_cannot_use_the_same_redis_database(redis_database):
    other = claim_elsewhere(redis_database)
    assert other.returncode == 3, other.stderr
    assert "TEST_REDIS_URL" in other.stdout and f"process {os.getpid()}" in other.stdout
    assert claim_elsewhere(redis_database.replace("127.0.0.1", "localhost")).returncode == 3  # one server


def test_another_database_and_a_released_claim_are_free(redis_database, tmp_path):
    another = f"unix://{tmp_path}/redis.sock?db=3"  # this test's own: no other run claims it
    assert claim_elsewhere(another).returncode == 0
    claim = RedisDatabaseClaim(another)
    with pytest.raises(RedisDatabaseBusy):
        RedisDatabaseClaim(another)  # even from this process: the lock is per claim
    assert claim_elsewhere(another.replace("db=3", "db=4")).returncode == 0
    claim.release()
    RedisDatabaseClaim(another).release()
    assert claim_elsewhere(another).returncode == 0
    claim.path.unlink()
