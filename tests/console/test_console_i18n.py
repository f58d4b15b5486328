"""The console in Russian: chosen from the browser, switched by a person, every text translated."""

from __future__ import annotations

import re
from pathlib import Path

import integration.console as console_package
from integration.console.i18n import RUSSIAN
from integration.ledger.calls import DELIVERY_STATES
from integration.ledger.work import WorkKind
from integration.models import CallbackStatus, CallStatus, Direction
from tests.console.test_console import make_user, sign_in

PACKAGE = Path(console_package.__file__).parent
LITERAL = re.compile(r"""\b_\(\s*(["'])(.+?)(?<!\\)\1""", re.DOTALL)

# Values shown through _() that are not literals in the templates.
DYNAMIC = (
    [s.value for s in CallbackStatus]
    + [s.value for s in CallStatus]
    + [d.value for d in Direction]
    + [d.value.capitalize() for d in Direction]
    + list(DELIVERY_STATES)
    + [k.value.replace("_", " ") for k in WorkKind]
    + ["admin", "viewer", "ok", "no token pair yet", "disabled", "unknown", "stored", "deleted"]
    + [
        "started",
        "finished",
        "deferred",
        "scheduled",
        "Line",
        "Number",
        "Direction",
        "Status",
        "Delivery",
        "From",
        "To",
    ]
    + ["any format", "YYYY-MM-DD", "YYYY-MM-DD, inclusive"]
)


def literals() -> set[str]:
    found = set()
    for path in [*PACKAGE.rglob("*.html"), *(p for p in PACKAGE.glob("*.py") if p.name != "i18n.py")]:
        found |= {match.group(2) for match in LITERAL.finditer(path.read_text())}
    return found


def test_every_text_has_its_russian():
    texts = literals() | set(DYNAMIC)
    assert len(texts) > 150
    missing = sorted(text for text in texts if text not in RUSSIAN)
    assert missing == []


def test_placeholders_agree():
    for english, russian in RUSSIAN.items():
        assert sorted(re.findall(r"%\((\w+)\)s", english)) == sorted(re.findall(r"%\((\w+)\)s", russian)), english


def test_the_browsers_language_then_the_switch(app, http):
    make_user(app, "ops@example.com")
    page = http.get("/console/sign-in", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ru">' in page and "<h1>Вход</h1>" in page
    sign_in(http, "ops@example.com")
    overview = http.get("/console/", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Токен оператора" in overview and "Звонки по часам за 7 дней" in overview
    switched = http.get("/console/language?to=en&next=/console/calls", headers={"Accept-Language": "ru"})
    assert switched.status_code == 303 and switched.headers["Location"] == "/console/calls"
    assert "<h1>Calls</h1>" in http.get("/console/calls", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert http.get("/console/language?to=en&next=https://evil.example/").headers["Location"] == "/console/"
