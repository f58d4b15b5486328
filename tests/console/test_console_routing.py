"""Routing in the console: the week as a grid, a block's form planned and applied, the rules'
messages inline, and apply refused when the web cabinet changed the settings meanwhile."""

from __future__ import annotations

import copy
import html
import re

from tests.console.test_console import csrf, make_user, sign_in

NUM = "4990000000"


def block_form(page: str, index: int = 0) -> dict[str, str]:
    """The fields of the ``index``-th block's form on the routing page, as the browser sends them."""
    form = re.findall(r'<form method="post" action="/console/routing/\d+/plan">(.*?)</form>', page, re.DOTALL)[index]
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                fields[name.group(1)] = "on"
        else:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def test_the_week_as_a_grid_and_a_block_planned_and_applied(app, http, client):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    page = http.get(f"/console/routing/{NUM}").get_data(as_text=True)
    assert page.count('<tr><th scope="row">') == 7  # one row a day
    fields = block_form(page)
    fields["num-" + fields["entries"]] = "8 (916) 555-44-33"  # a new forwarding entry
    planned = http.post(f"/console/routing/{NUM}/plan", data=fields)
    body = planned.get_data(as_text=True)
    assert planned.status_code == 200 and "9165554433" in body and 'name="edited"' in body
    edited = html.unescape(re.search(r'name="edited" value="([^"]*)"', body).group(1))
    applied = http.post(f"/console/routing/{NUM}/apply", data={"csrf_token": csrf(http, "/console/"), "edited": edited})
    assert applied.status_code == 200 and "Applied 1 change(s)" in applied.get_data(as_text=True)
    live = client.get_pbx_settings([NUM])[0].raw
    numbers = [r["num"] for r in live["profiles"][0]["scheduleBlocks"][0]["redirectNums"]]
    assert "9165554433" in numbers
    assert app.extensions["vats"].accounts.audit.recent()[0].result == "ok: 1 change(s)"


def test_the_rules_messages_inline_and_a_stale_apply_refused(app, http, client):
    make_user(app, "ops@example.com")
    sign_in(http, "ops@example.com")
    fields = block_form(http.get(f"/console/routing/{NUM}").get_data(as_text=True))
    refused = http.post(f"/console/routing/{NUM}/plan", data=fields | {"day-mon": "09:00-18:00"})
    assert refused.status_code == 422 and "gap 08:00–09:00 (no block rings)" in refused.get_data(as_text=True)

    planned = http.post(f"/console/routing/{NUM}/plan", data=fields | {"dial-0": "45"})
    edited = html.unescape(re.search(r'name="edited" value="([^"]*)"', planned.get_data(as_text=True)).group(1))
    cabinet = copy.deepcopy(client.get_pbx_settings([NUM])[0].raw)  # meanwhile, in the web cabinet
    cabinet["isDoNotDisturbMode"] = 1
    client.set_pbx_settings([cabinet])
    stale = http.post(f"/console/routing/{NUM}/apply", data={"csrf_token": csrf(http, "/console/"), "edited": edited})
    assert stale.status_code == 409 and 'data-testid="stale"' in stale.get_data(as_text=True)
    assert (
        client.get_pbx_settings([NUM])[0].raw["profiles"][0]["scheduleBlocks"][0]["redirectNums"][0]["dialTime"] != 45
    )


def test_a_viewer_sees_the_grid_without_forms_and_cannot_plan(app, http):
    make_user(app, "viewer@example.com", "viewer")
    sign_in(http, "viewer@example.com")
    page = http.get(f"/console/routing/{NUM}").get_data(as_text=True)
    assert 'data-testid="week"' in page and "/plan" not in page
    assert http.post(f"/console/routing/{NUM}/plan", data={"csrf_token": csrf(http, "/console/")}).status_code == 403
    assert http.get("/console/routing/4951112233").status_code == 404
