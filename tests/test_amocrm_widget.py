"""The amoCRM widget (contrib/amocrm-widget) signs its click-to-call so that our endpoint accepts it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from integration.signatures import SignatureVerifier
from tests.conftest import ROOT, SECRET

node = shutil.which("node")


@pytest.mark.skipif(node is None, reason="Node.js is not installed")
def test_the_widget_sends_a_signed_click_to_call_our_endpoint_accepts():
    result = subprocess.run(
        [
            node,
            "tests/widget/run_amocrm_widget.js",
            "contrib/amocrm-widget/script.js",
            "https://bridge.example/",
            SECRET,
            "+7 916 123-45-67",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    sent = json.loads(result.stdout)
    assert sent["url"] == "https://bridge.example/webhooks/click-to-call" and sent["method"] == "POST"
    msg_id = SignatureVerifier([SECRET]).verify(sent["body"].encode(), sent["headers"])
    assert msg_id == sent["headers"]["webhook-id"]
    assert json.loads(sent["body"]) == {
        "to": "+7 916 123-45-67",
        "user": "8375357",
        "crm": {"amocrm": {"entity": "contacts", "id": 406322}},
    }


def test_the_widget_manifest_names_its_settings():
    manifest = json.loads((ROOT / "contrib/amocrm-widget/manifest.json").read_text())
    assert set(manifest["settings"]) == {"bridge_url", "secret"} and manifest["settings"]["secret"]["type"] == "pass"
    for locale in manifest["widget"]["locale"]:
        texts = json.loads((ROOT / f"contrib/amocrm-widget/i18n/{locale}.json").read_text())
        assert set(texts["settings"]) == set(manifest["settings"])
