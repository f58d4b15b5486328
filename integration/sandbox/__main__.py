"""``python -m integration.sandbox [--port 8090] [--contracts N]``: run the operator simulator."""

from __future__ import annotations

import argparse
import contextlib
import json
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
    parser.add_argument("--contracts", type=int, default=0, help="contracts to make besides the default one")
    parser.add_argument("--contract-numbers", type=int, default=1, help="numbers of each of those contracts")
    parser.add_argument("--contract-calls", type=int, default=0, help="calls over --days for each, made on first use")
    parser.add_argument("--contracts-file", help="write those contracts (id, numbers, authorization token) as JSON")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    numbers = tuple(n.strip() for n in args.numbers.split(",") if n.strip())
    if not numbers or any(len(n) != 10 or not n.isdigit() for n in numbers):
        parser.error("--numbers must be 10-digit numbers, comma-separated")
    sandbox = Sandbox(
        SandboxConfig(numbers=numbers, access_ttl=args.access_ttl, refresh_ttl=args.refresh_ttl, seed=args.seed)
    )
    if args.contracts < 0 or not 1 <= args.contract_numbers <= 1000:
        parser.error("--contracts must be 0 or more, --contract-numbers 1-1000")
    if args.calls:
        now = sandbox.now()
        sandbox.default.add_calls(args.calls, now - timedelta(days=args.days), now)
    contracts = (
        sandbox.create_contracts(args.contracts, None, args.contract_numbers, args.contract_calls, args.days)
        if args.contracts
        else []
    )
    if args.contracts_file:
        with open(args.contracts_file, "w") as handle:
            json.dump([contract.summary() for contract in contracts], handle, indent=1)
    if args.token_file:  # last: its appearance tells a waiting script everything is written
        with open(args.token_file, "w") as handle:
            handle.write(sandbox.default.authorization_token or "")
    try:
        server = make_server(args.host, args.port, create_sandbox_app(sandbox), threaded=True)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    print(f"operator sandbox on http://{args.host}:{server.port} — numbers {', '.join(numbers)}", flush=True)
    if contracts:
        print(f"{len(contracts)} more contracts: GET http://{args.host}:{server.port}/_sandbox/contracts", flush=True)
    print(f"authorization token: GET http://{args.host}:{server.port}/_sandbox/state", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
