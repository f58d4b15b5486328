"""The console in chromium: sign in, the overview's figures against the ledger, calls filtered by
a number written another way, a call's recording played and seeked, CSRF and other accounts'
pages refused, no JavaScript error, no serious accessibility finding, screenshots of each page."""

from __future__ import annotations

import re
from datetime import timedelta

from integration.ledger.calls import call_filters
from integration.services.calls import run_sync
from integration.timeutil import utc_now
from tests.browser.conftest import Site, Watched, screenshot, serious_violations, sign_in
from tests.conftest import run_worker
from tests.test_accounts_serving import add_tenant


def synced(site: Site, control, refused: int = 0) -> list[str]:
    """The sandbox's history in the ledger, delivered to the local CRM, recordings fetched; the
    first ``refused`` calls' deliveries fail for good before the worker runs (as when a CRM
    answers 400). Returns the ids of those."""
    control.post("calls/generate", {"count": 60, "days": 3, "seed": 7, "recording_ratio": 0.5})
    runtime = site.runtime
    assert run_sync(runtime) is not None
    failing = [call.id for call, _ in runtime.call_ledger.page([], refused, 0, runtime.crm.name)] if refused else []
    for call_id in failing:
        runtime.delivery_ledger.fail_attempt(
            call_id, runtime.crm.name, "the CRM refused the activity: 400", utc_now(), retryable=False
        )
    done = run_worker(site.env)
    assert done.returncode == 0, done.stderr
    return failing


def test_signing_in_and_reading_the_overview_calls_and_a_call(site: Site, control, page: Watched):
    synced(site, control)
    site.user("ops@example.com")
    browser = page.page

    response = browser.goto(site.url + "/")
    assert browser.url.startswith(site.url + "/console/sign-in") and response.status == 200
    assert serious_violations(browser) == []
    screenshot(browser, "sign-in")
    sign_in(browser, site.url, "ops@example.com")
    assert browser.url == site.url + "/console/"

    # The overview's figures are the ledger's.
    runtime = site.runtime
    now = utc_now()
    per_hour = runtime.call_ledger.per_hour(now - timedelta(days=7), now)
    answered = sum(n for (_, status), n in per_hour.items() if status == "answered")
    missed = sum(n for (_, status), n in per_hour.items() if status != "answered")
    assert f"{answered} answered, {missed} missed" in browser.locator("#chart-h + p").inner_text()
    work = runtime.work_ledger.unfinished()
    for kind in ("deliver_call", "fetch_recording"):
        for status in ("pending", "failed"):
            shown = browser.locator(f'[data-testid=work] td[data-kind="{kind}"][data-status="{status}"]').inner_text()
            assert int(shown) == work.get((kind, status), 0)
    today = runtime.callback_ledger.counts_since(now.replace(hour=0))
    assert int(
        browser.locator('[data-testid=click-to-calls-today] dd[data-status="placed"]').inner_text()
    ) == today.get("placed", 0)
    assert browser.locator("[data-testid=chart] rect").count() > 0
    assert serious_violations(browser) == []
    screenshot(browser, "overview")

    # Calls: filtered by a number written the way a person would.
    recorded = next(
        call
        for call, _ in runtime.call_ledger.page([], 500, 0, runtime.crm.name)
        if call.record_file_id and call.ext_e164 and call.ext_e164.startswith("+7")
    )
    digits = recorded.ext_e164[2:]
    written = f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    browser.get_by_role("link", name="Calls").click()
    assert serious_violations(browser) == []
    screenshot(browser, "calls")
    browser.get_by_label("Number").fill(written)
    browser.get_by_role("button", name="Filter").click()
    browser.wait_for_load_state()
    rows = browser.locator("[data-testid=calls] tbody tr")
    expected = runtime.call_ledger.page(call_filters(match_key=digits), 500, 0, runtime.crm.name)
    assert rows.count() == len(expected) >= 1
    shown_number = f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    assert all(shown_number in text for text in rows.all_inner_texts())

    # A bad filter is named next to its field.
    browser.get_by_label("From").fill("last tuesday")
    browser.get_by_role("button", name="Filter").click()
    browser.wait_for_load_state()
    assert browser.locator("#f-since-problem").is_visible()
    assert browser.get_by_label("From").get_attribute("aria-invalid") == "true"
    screenshot(browser, "calls-refused")

    # A call's page: the match, the delivery, and the recording, played and seeked.
    browser.goto(f"{site.url}/console/calls/{recorded.id}")
    assert "delivered" in browser.locator("[data-testid=delivery]").inner_text()
    audio = browser.locator("audio[data-testid=recording]")
    audio.wait_for()
    browser.wait_for_function("document.querySelector('audio').readyState >= 1", timeout=10_000)
    duration = audio.evaluate("a => a.duration")
    assert duration > 1
    target = round(duration / 2, 1)
    position = audio.evaluate(
        """(a, target) => new Promise(done => {
            a.addEventListener('seeked', () => done(a.currentTime), {once: true});
            a.addEventListener('error', () => done(-1), {once: true});
            a.currentTime = target;
        })""",
        target,
    )
    assert abs(position - target) < 1
    assert serious_violations(browser) == []
    screenshot(browser, "call")

    browser.get_by_role("link", name="Audit log").click()
    assert "console.sign-in" in browser.locator("[data-testid=audit]").inner_text()
    screenshot(browser, "audit")


def test_csrf_another_account_and_a_viewer_in_the_browser(site: Site, control, page: Watched):
    add_tenant(site.app, control, "acme", ("4991110000",))
    site.user("viewer@example.com", "viewer", "default")
    site.user("root@example.com")
    browser = page.page

    sign_in(browser, site.url, "viewer@example.com")
    assert browser.locator("main form[method=post]").count() == 0  # nothing to act on for a viewer
    assert browser.get_by_role("link", name="Accounts").count() == 0
    # Another account's pages, and one that does not exist: the same 404 page.
    for path in ("/a/acme/console/", "/a/nobody/console/calls", "/console/accounts"):
        response = browser.goto(site.url + path)
        assert response.status == 404 and "Not found" in browser.locator("h1").inner_text()
    screenshot(browser, "not-found")

    # A form sent without its CSRF token is refused, and the session stays.
    browser.goto(site.url + "/console/")
    browser.evaluate("document.querySelector('form.who input[name=csrf_token]').remove()")
    browser.get_by_role("button", name="Sign out").click()
    browser.wait_for_load_state()
    assert "The form was refused" in browser.locator("h1").inner_text()
    assert browser.goto(site.url + "/console/").status == 200
    browser.get_by_role("button", name="Sign out").click()
    browser.wait_for_load_state()
    assert re.search(r"/console/sign-in", browser.url)

    sign_in(browser, site.url, "root@example.com")
    browser.get_by_role("link", name="Accounts").click()
    table = browser.locator("[data-testid=accounts]")
    assert table.locator("tbody tr").count() == 2
    assert serious_violations(browser) == []
    screenshot(browser, "accounts")
    table.get_by_role("link", name="acme").click()
    assert browser.url == site.url + "/a/acme/console/"
    assert "Account acme" in browser.locator(".account").inner_text()


def test_a_failed_delivery_retried_and_the_routing_applied_in_the_browser(site: Site, control, client, page: Watched):
    [call_id] = synced(site, control, refused=1)
    site.user("ops@example.com")
    browser = page.page
    sign_in(browser, site.url, "ops@example.com")

    browser.get_by_role("link", name="Stuck work").click()
    row = browser.locator(f'[data-testid=stuck] tr[data-subject="{call_id}"]')
    assert "the CRM refused the activity: 400" in row.inner_text() and "gave up" in row.inner_text()
    assert serious_violations(browser) == []
    screenshot(browser, "stuck-work")
    row.get_by_role("button", name=re.compile("^Retry")).click()
    browser.wait_for_load_state()
    assert "queued again" in browser.locator(".flash").inner_text()
    assert run_worker(site.env).returncode == 0
    browser.goto(f"{site.url}/console/calls/{call_id}")
    assert "delivered" in browser.locator("[data-testid=delivery]").inner_text()

    # Routing: the grid, a block's forwarding edited, planned, applied and read back.
    browser.get_by_role("link", name="Routing").click()
    browser.get_by_role("link", name="+7 499 000-00-00").click()
    assert browser.locator("[data-testid=week] tbody tr").count() == 7
    assert serious_violations(browser) == []
    screenshot(browser, "routing")
    block = browser.locator("details.block").first
    block.locator("summary").click()
    block.get_by_label("New forwarding number").fill("8 916 555-44-33")
    block.get_by_role("button", name="Plan").click()
    browser.wait_for_load_state()
    assert "9165554433" in browser.locator("[data-testid=changes]").inner_text()
    screenshot(browser, "routing-plan")
    browser.get_by_role("button", name="Apply").click()
    browser.wait_for_load_state()
    assert "Applied 1 change(s)" in browser.locator(".flash").inner_text()
    live = client.get_pbx_settings(["4990000000"])[0].raw
    assert "9165554433" in [r["num"] for r in live["profiles"][0]["scheduleBlocks"][0]["redirectNums"]]

    # Planned, then changed in the web cabinet behind the console's back: apply is refused.
    block = browser.locator("details.block").first
    block.locator("summary").click()
    block.get_by_label("Dial time, s 1").fill("45")
    block.get_by_role("button", name="Plan").click()
    browser.wait_for_load_state()
    live["isDoNotDisturbMode"] = 1
    client.set_pbx_settings([live])
    browser.get_by_role("button", name="Apply").click()
    browser.wait_for_load_state()
    assert browser.locator("[data-testid=stale]").is_visible()
    screenshot(browser, "routing-refused")
