"""amoCRM one-time tokens for tests, made as amoCRM documents them (HS256, the integration's key)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt

from tests.conftest import config_file

CLIENT_SECRET = "test-amocrm-client-secret-0123456789abcdef-0123456789abcdef-0123456789"  # ≥ 64 bytes, as amoCRM's
ACCOUNT_URL = "https://example.amocrm.ru"
ACCOUNT_ID = "30000000"
USER_ID = "8375357"  # [users] gives this user 4990000000
REDIRECT_URI = "https://bridge.example/amocrm/oauth"
USERS = f'[users]\n"{USER_ID}" = "4990000000"\n"42" = "4950000000"\n'


def widget_env(service_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The service's settings with the widget on: the integration's key, the account, [users]."""
    return (
        service_env
        | config_file(tmp_path, USERS)
        | {
            "AMOCRM_CLIENT_SECRET": CLIENT_SECRET,
            "AMOCRM_BASE_URL": ACCOUNT_URL,
            "AMOCRM_ACCOUNT_ID": ACCOUNT_ID,
            "CORS_ORIGINS": ACCOUNT_URL,
        }
    )


def claims(**overrides: Any) -> dict[str, Any]:
    """A token's claims, valid now; ``name=None`` leaves a claim out."""
    now = int(time.time())
    base = {
        "iss": ACCOUNT_URL,
        "aud": "https://bridge.example",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "account_id": int(ACCOUNT_ID),
        "user_id": int(USER_ID),
        "client_uuid": "6f17da28-7cf3-46d4-867b-a37946d2ca8b",
        "subdomain": "example",
        "is_admin": False,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def mint(secret: str = CLIENT_SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


def payload(token: str) -> dict[str, Any]:
    """The claims of a token, unverified."""
    return jwt.decode(token, options={"verify_signature": False})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged(header: dict, signature: str = "", **overrides: Any) -> str:
    """A token with any header (``alg: none``, RS256, …) and the given signature part."""
    return f"{_b64(header)}.{_b64(claims(**overrides))}.{signature}"
