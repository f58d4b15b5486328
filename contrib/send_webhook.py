"""Send a Standard-Webhooks-signed JSON webhook, as a CRM would.

python contrib/send_webhook.py --secret whsec_… http://127.0.0.1:8000/webhooks/click-to-call '{"to": "+79161234567", "from": "4990000000"}'
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from integration.signatures import sign_headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body", help="the JSON payload")
    parser.add_argument("--secret", required=True, help="the whsec_… secret (WEBHOOK_SECRET)")
    parser.add_argument("--id", default=None, help="webhook-id (default: a new one); repeat it to test idempotency")
    args = parser.parse_args()
    try:
        body = json.dumps(json.loads(args.body), ensure_ascii=False).encode()
    except ValueError as exc:
        parser.error(f"the body is not JSON: {exc}")
    headers = sign_headers(args.secret, args.id or f"msg_{uuid.uuid4().hex}", body) | {
        "Content-Type": "application/json"
    }
    response = requests.post(args.url, data=body, headers=headers, timeout=30)
    print(response.status_code, response.text.strip())
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
