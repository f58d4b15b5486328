"""Recording decode: a large mp3 through ``getcallrecordfile`` from the sandbox.

Each variant runs in a fresh process and reports throughput and peak RSS growth (VmHWM at the
end minus VmRSS before the download) relative to the mp3 size. The baseline, measured in the
same run, is the obvious approach: ``response.json()`` then ``base64.b64decode``.

    python contrib/bench/recording_decode.py [--size-mb 50]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from contrib.bench.common import ROOT, SandboxProcess, memory_kib

VARIANTS = ("naive", "stream-to-memory", "stream-to-file")


def measure(variant: str, url: str, token: str, record_id: str) -> dict:
    """Runs inside the child process."""
    import requests

    from integration.operator.factory import build_operator_client
    from integration.secretbox import new_key
    from integration.settings import load_settings

    settings = load_settings(
        {
            "OPERATOR_API_URL": url,
            "OPERATOR_AUTHORIZATION_TOKEN": token,
            "OPERATOR_NUMBERS": "4990000000",
            "OPERATOR_READ_TIMEOUT": "120",
            "SECRET_KEYS": new_key(),
        },
        dotenv="/nonexistent",
    )
    client = build_operator_client(settings)
    access = client.tokens.access_token()
    before = memory_kib("VmRSS")
    started = time.perf_counter()
    if variant == "naive":
        response = requests.get(
            f"{url}/api/v1/request/getcallrecordfile",
            params={"recordFileId": record_id},
            headers={"Authorization": f"Bearer {access}"},
            timeout=120,
        )
        content = base64.b64decode(response.json()["result"]["fileContent"])
        digest, size = hashlib.sha256(content).hexdigest(), len(content)
    elif variant == "stream-to-memory":
        sink = io.BytesIO()
        got = client.download_recording(record_id, sink)
        content = sink.getvalue()
        digest, size = got.sha256, got.size
    else:
        with tempfile.TemporaryFile() as sink:
            got = client.download_recording(record_id, sink)
        digest, size = got.sha256, got.size
    elapsed = time.perf_counter() - started
    return {
        "variant": variant,
        "seconds": elapsed,
        "growth_kib": memory_kib("VmHWM") - before,
        "sha256": digest,
        "size": size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return 0

    size = int(args.size_mb * 1024 * 1024)
    with SandboxProcess() as sandbox:
        made = sandbox.control("recordings", {"size": size, "seed": 50})
        results = []
        for variant in VARIANTS:
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    variant,
                    sandbox.url,
                    sandbox.state["authorization_token"],
                    made["id"],
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            result = json.loads(output)
            assert result["sha256"] == made["sha256"] and result["size"] == size, f"{variant}: wrong bytes"
            results.append(result)

    mib = size / 2**20
    base = results[0]
    print(
        f"recording decode: {mib:.0f} MiB mp3 ({mib * 4 / 3:.0f} MiB of base64 in JSON) from the sandbox over loopback"
    )
    print(f"{'variant':<18} {'MiB/s':>8} {'peak RSS growth':>16} {'× mp3 size':>11} {'speed vs naive':>15}")
    for r in results:
        growth = r["growth_kib"] / 1024
        print(
            f"{r['variant']:<18} {mib / r['seconds']:>8.1f} {growth:>12.1f} MiB {growth / mib:>10.2f}× {base['seconds'] / r['seconds']:>14.2f}×"
        )
    print("target: peak RSS growth ≤ 1.5× the mp3 size (stream-to-memory holds the decoded mp3 itself)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
