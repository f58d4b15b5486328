"""The amoCRM widget (contrib/amocrm-widget) in a stand-in for amoCRM's page, against the real app:
its request carries amoCRM's one-time token (``$authorizedAjax``) and no secret of its own."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, app_for, serve
from tests.web.helpers import queued_jobs
from tests.widget_tokens import ACCOUNT_ID, ACCOUNT_URL, CLIENT_SECRET, USER_ID, widget_env

node = shutil.which("node")


@pytest.fixture
def bridge(service_env, tmp_path, redis_conn):
    """The web app over real HTTP, with the widget's settings; yields (base URL, app)."""
    with app_for(widget_env(service_env, tmp_path)) as app, serve(app) as url:
        yield url, app


def click(bridge_url: str, user_id: str, number: str = "+7 916 123-45-67", secret: str = CLIENT_SECRET) -> dict:
    """Run the widget in Node, click ``number`` as amoCRM user ``user_id``; what happened."""
    result = subprocess.run(
        [
            node,
            "tests/widget/run_amocrm_widget.js",
            "contrib/amocrm-widget/script.js",
            bridge_url + "/",
            secret,
            ACCOUNT_URL,
            ACCOUNT_ID,
            user_id,
            number,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(node is None, reason="Node.js is not installed")
def test_the_widgets_click_rings_the_signed_in_users_own_number(bridge, redis_conn):
    url, app = bridge
    seen = click(url, USER_ID)
    request = seen["request"]
    assert request["url"] == f"{url}/widget/amocrm/click-to-call" and request["method"] == "POST"
    assert request["headers"]["Content-Type"] == "application/json" and request["headers"]["X-Auth-Token"]
    assert json.loads(request["body"]) == {"to": "+7 916 123-45-67", "crm": {"entity": "contacts", "id": 406322}}
    assert (seen["status"], seen["notification"]) == (202, "ok")
    assert queued_jobs(redis_conn) == 1
    [job_id] = [key.decode().split(":")[-1] for key in redis_conn.scan_iter("vats:callback:*")]
    record = app.extensions["vats"].intake.accepted(job_id)
    assert (record.phone_from, record.phone_to, record.crm_user) == ("4990000000", "+79161234567", USER_ID)


@pytest.mark.skipif(node is None, reason="Node.js is not installed")
def test_the_widget_shows_the_bridges_reason_when_it_refuses(bridge, redis_conn):
    url, _ = bridge
    stranger = click(url, "555")
    assert stranger["status"] == 403
    assert stranger["notification"].startswith("no: amoCRM user 555 has no contract number")
    forged = click(url, USER_ID, secret="not-the-integrations-key-0123456789abcdef-0123456789abcdef-xyz")
    assert (forged["status"], forged["notification"]) == (
        401,
        "no: bad signature: the token was not signed with AMOCRM_CLIENT_SECRET",
    )
    assert queued_jobs(redis_conn) == 0


def test_the_widgets_only_setting_is_the_bridge_address():
    manifest = json.loads((ROOT / "contrib/amocrm-widget/manifest.json").read_text())
    assert set(manifest["settings"]) == {"bridge_url"}
    for locale in manifest["widget"]["locale"]:
        texts = json.loads((ROOT / f"contrib/amocrm-widget/i18n/{locale}.json").read_text())
        assert set(texts["settings"]) == set(manifest["settings"])
    script = (ROOT / "contrib/amocrm-widget/script.js").read_text()
    assert "$authorizedAjax" in script
    assert not any(gone in script for gone in ("settings.secret", "crypto.subtle", "webhook-signature"))
