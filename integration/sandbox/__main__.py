"""``python -m integration.sandbox [--port 8090]``: run the operator simulator."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from datetime import timedelta

from werkzeug.serving import make_server

from integration.sandbox.app import create_sandbox_app
from integration.sandbox.state import Sandbox, SandboxConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integration.sandbox", description="Operator API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--numbers", default=",".join(SandboxConfig.numbers), help="contract numbers, comma-separated")
    parser.add_argument("--access-ttl", type=float, default=SandboxConfig.access_ttl, help="access token lifetime, s")
    parser.add_argument(
        "--refresh-ttl", type=float, default=SandboxConfig.refresh_ttl, help="refresh token lifetime, s"
    )
    parser.add_argument("--calls", type=int, default=40, help="calls to generate over the last --days days")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token-file", help="write the authorization token to this file")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    numbers = tuple(n.strip() for n in args.numbers.split(",") if n.strip())
    if not numbers or any(len(n) != 10 or not n.isdigit() for n in numbers):
        parser.error("--numbers must be 10-digit numbers, comma-separated")
    sandbox = Sandbox(
        SandboxConfig(numbers=numbers, access_ttl=args.access_ttl, refresh_ttl=args.refresh_ttl, seed=args.seed)
    )
    if args.calls:
        now = sandbox.now()
        sandbox.add_calls(args.calls, now - timedelta(days=args.days), now)
    if args.token_file:
        with open(args.token_file, "w") as handle:
            handle.write(sandbox.authorization_token or "")
    try:
        server = make_server(args.host, args.port, create_sandbox_app(sandbox), threaded=True)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    print(f"operator sandbox on http://{args.host}:{server.port} — numbers {', '.join(numbers)}", flush=True)
    print(f"authorization token: GET http://{args.host}:{server.port}/_sandbox/state", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
