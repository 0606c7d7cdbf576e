"""The dashboard in headless Chromium: filters, keyboard triage, verdicts, Fetch now, Claude, hostile listings.

Every test also passes the page watch (see conftest): no dialog, no CSP violation,
no page error and no request leaving 127.0.0.1.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import search
from e2e.conftest import XSS_TITLE, Watch, watched_page

pytestmark = pytest.mark.browser
INELIGIBLE = ("chip-loc-overseas-onsite", "chip-loc-remote-restricted", "chip-loc-country-other")


def total_on_page(page) -> int:
    return int(re.match(r"\s*(\d+) jobs?", page.locator(".results .summary").inner_text()).group(1))


def expected_total(db, **args) -> int:
    filters, _ = search.parse_filters(args, lambda name: True)
    return search.search(db, filters).total


def row_ids(page) -> list[int]:
    return [int(x) for x in page.locator("#listings > li.listing").evaluate_all(
        "rows => rows.map(r => r.dataset.listingId)")]


def test_dashboard_loads_and_filters_by_keyword_and_eligibility(page, live, db):
    page.goto("/")
    expect(page.locator("#listings > li.listing").first).to_be_visible()
    everything = total_on_page(page)
    assert everything == expected_total(db) > 0

    page.locator("#filters input[name=q]").fill("engineer")
    page.locator("#filters input[name=q]").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=engineer"))
    expect(page.locator(".results .summary")).to_contain_text(f"{expected_total(db, q='engineer')} job")
    by_keyword = total_on_page(page)
    assert 0 < by_keyword < everything

    page.locator("#filters input[name=eligible]").check()
    expect(page).to_have_url(re.compile(r"eligible=1"))
    expected = expected_total(db, q="engineer", eligible="1")
    expect(page.locator(".results .summary")).to_contain_text(f"{expected} job")
    assert 0 < expected < by_keyword
    for chip in page.locator("#listings .listing-meta .chip:first-child").all():
        classes = chip.get_attribute("class")
        assert not any(bad in classes for bad in INELIGIBLE), classes

    # The pushed address is bookmarkable: loading it directly gives the same list.
    ids = row_ids(page)
    page.goto(page.url)
    assert row_ids(page) == ids
    expect(page.locator("#filters input[name=eligible]")).to_be_checked()


def test_keyboard_triage_moves_stars_hides_and_opens(page, live, db):
    page.goto("/?sort=date")
    rows = page.locator("#listings > li.listing")
    expect(rows.first).to_be_visible()
    first, second = row_ids(page)[:2]

    page.keyboard.press("j")
    expect(page.locator(f"#listing-{first}")).to_have_class(re.compile(r"\bis-selected\b"))
    page.keyboard.press("j")
    expect(page.locator(f"#listing-{second}")).to_have_class(re.compile(r"\bis-selected\b"))
    expect(page.locator(f"#listing-{first}")).not_to_have_class(re.compile(r"\bis-selected\b"))
    page.keyboard.press("k")
    expect(page.locator(f"#listing-{first}")).to_have_class(re.compile(r"\bis-selected\b"))

    page.keyboard.press("s")
    expect(page.locator(f"#listing-{first}")).to_have_class(re.compile(r"\bstatus-starred\b"))
    # The swapped row keeps the selection mark.
    expect(page.locator(f"#listing-{first}")).to_have_class(re.compile(r"\bis-selected\b"))
    assert search.group_verdict(db, first)["status"] == "starred"

    page.keyboard.press("j")
    page.keyboard.press("h")
    expect(page.locator(f"#listing-{second}")).to_have_class(re.compile(r"\bstatus-hidden\b"))
    assert search.group_verdict(db, second)["status"] == "hidden"

    page.keyboard.press("k")
    page.keyboard.press("Enter")
    expect(page.locator(f"#detail-{first}")).to_be_visible()
    expect(page.locator(f"#detail-{first} .status-buttons button[value=starred]")).to_have_attribute(
        "aria-pressed", "true")

    # Keys typed into a field are text, not commands.
    page.locator("#filters input[name=q]").click()
    page.keyboard.type("sh")
    assert search.group_verdict(db, first)["status"] == "starred"
    assert search.group_verdict(db, second)["status"] == "hidden"
    # Reloaded, the hidden listing is gone from the active list and the starred one is marked.
    page.goto("/?sort=date")
    assert second not in row_ids(page)
    expect(page.locator(f"#listing-{first} .status-mark-starred")).to_be_visible()


def test_star_hide_and_override_score_with_a_reason(page, live, db, watch):
    target = next(lid for (source, _sid), lid in sorted(live["ids"].items()) if source == "lever")
    other = next(lid for (source, _sid), lid in sorted(live["ids"].items()) if source == "ashby")
    page.goto(f"/listing/{target}")
    detail = page.locator(f"#detail-{target}")
    expect(detail).to_be_visible()

    # Out of range: the browser itself refuses to send the form.
    detail.locator("input[name=override_score]").fill("150")
    detail.locator("input[name=override_reason]").fill("too high")
    detail.locator(".score-form button[type=submit]").click()
    assert detail.locator("input[name=override_score]").evaluate("el => el.validity.rangeOverflow")
    page.wait_for_timeout(300)
    assert not [u for u in watch.requests if u.endswith(f"/listing/{target}/score")]
    # No reason: the server says what is missing, inline, and stores nothing.
    detail.locator("input[name=override_score]").fill("60")
    detail.locator("input[name=override_reason]").fill("")
    detail.locator(".score-form button[type=submit]").click()
    expect(page.locator(f"#detail-{target} .score-form .error")).to_have_text("Say in one line why.")
    expect(page.locator(f"#detail-{target} input[name=override_score]")).to_have_value("60")
    assert search.group_verdict(db, target)["override_score"] is None

    page.locator(f"#detail-{target} input[name=override_score]").fill("77")
    page.locator(f"#detail-{target} input[name=override_reason]").fill("Great team,\nBerlin office")
    page.locator(f"#detail-{target} .score-form button[type=submit]").click()
    expect(page.locator(f"#detail-{target} .scores h3 .score")).to_have_text("77*")
    verdict = search.group_verdict(db, target)
    assert (verdict["override_score"], verdict["override_reason"]) == (77, "Great team, Berlin office")

    page.locator(f"#detail-{target} .status-buttons button[value=starred]").click()
    expect(page.locator(f"#detail-{target} .status-buttons button[value=starred]")).to_have_attribute(
        "aria-pressed", "true")
    assert search.group_verdict(db, target)["status"] == "starred"
    assert search.group_verdict(db, target)["override_score"] == 77

    page.goto(f"/?sort=date&source=ashby")
    page.locator(f"#listing-{other} button[data-action=hide]").click()
    expect(page.locator(f"#listing-{other}")).to_have_class(re.compile(r"\bstatus-hidden\b"))
    assert search.group_verdict(db, other)["status"] == "hidden"


def test_fetch_now_shows_progress_until_done(page, live, db):
    before = db.conn.execute("SELECT count(*) FROM listings WHERE source = 'remotive'").fetchone()[0]
    page.goto("/")
    page.locator("button.fetch-now").click()
    status = page.locator("#fetch-status")
    expect(status).to_contain_text("Fetching")
    expect(status.locator("progress")).to_be_visible()
    expect(status).to_contain_text("Last fetch finished", timeout=30_000)
    expect(status).to_contain_text("2 sources")
    expect(status.locator(".fetch-outcome.fetch-ok")).to_have_count(2)
    after = db.conn.execute("SELECT count(*) FROM listings WHERE source = 'remotive'").fetchone()[0]
    assert before == 0 and after > 0
    runs = dict(db.conn.execute("SELECT source, status FROM fetch_runs"))
    assert runs == {"remotive": "ok", "greenhouse:gitlab": "ok"}
    assert any("remotive.com/api" in url for url in live["internet"].requests)


def test_rescore_with_claude_shows_the_assessment_in_the_detail_panel(page, live, db):
    target = next(lid for (source, _sid), lid in sorted(live["ids"].items()) if source == "himalayas")
    fake = live["fake"]
    asked = len(fake.message_requests())
    page.goto(f"/listing/{target}")
    box = page.locator(f"#claude-rescore-{target}")
    box.get_by_role("button", name="Re-score with Claude").click()
    expect(box.locator(".claude-assessment")).to_be_visible(timeout=20_000)
    expect(box).to_contain_text("Strengths")
    expect(box.locator("[role=alert]")).to_have_count(0)
    assert len(fake.message_requests()) == asked + 1
    score = db.conn.execute(
        "SELECT score FROM scores WHERE listing_id = ? AND strategy = 'claude'", (target,)).fetchone()[0]
    expect(box.locator(".claude-assessment .score-line strong")).to_have_text(str(score))
    # The key stays on the server.
    assert "sk-ant-" not in page.content()


def assert_hostile_listing_is_inert(page, watch, lid: int) -> None:
    detail = page.locator(f"#detail-{lid}")
    expect(detail).to_be_visible()
    description = detail.locator(".description")
    expect(description).to_contain_text("We build Python backends.")
    assert description.locator("script, img, svg, iframe, style, button, div").count() == 0
    found = page.evaluate("""() => ({
        handlers: [...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
            .filter(a => a.name.startsWith('on')).map(a => el.tagName + ' ' + a.name)),
        htmx: [...document.querySelectorAll('.description *')].flatMap(el => [...el.attributes]
            .filter(a => a.name.startsWith('hx-') || a.name.startsWith('data-hx')).map(a => a.name)),
        links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
        scripts: [...document.scripts].map(s => s.getAttribute('src')),
    })""")
    assert found["handlers"] == [] and found["htmx"] == []
    assert not any(href.strip().lower().startswith(("javascript:", "data:", "vbscript:")) for href in found["links"])
    assert all(src and src.startswith("/static/") for src in found["scripts"]), found["scripts"]
    # The title shows the markup as text instead of running it.
    expect(detail.locator("h2")).to_have_text(XSS_TITLE)
    # The javascript: address is shown as text, never as a link.
    expect(detail.locator(".unsafe-url")).to_have_text("javascript:alert('url')")
    expect(description.locator("a[href='https://example.org/jobs/1']")).to_have_text("a real link")
    # hx-trigger="load" in the description would have fired by now if htmx had read it.
    page.wait_for_timeout(1500)
    # (The page itself loads /learning/status once; anything else would come from the description.)
    assert not [u for u in watch.requests
                if "/fetch" in u or ("/status" in u and not u.endswith("/learning/status"))], watch.requests


def test_hostile_listing_runs_nothing_and_calls_nothing(page, live, watch):
    lid = live["ids"][("hn", "xss-1")]
    page.goto("/?q=python+backends")
    row = page.locator(f"#listing-{lid}")
    expect(row.locator(".listing-title")).to_have_text(XSS_TITLE)
    expect(row.locator(".company")).to_have_text('Evil <b onmouseover="alert(1)">Corp</b>')
    assert row.get_attribute("data-url") is None
    row.locator(".listing-title").click()
    assert_hostile_listing_is_inert(page, watch, lid)
    row.hover()
    # Loaded as a whole page too (server-rendered, not swapped in by htmx).
    page.goto(f"/listing/{lid}")
    assert_hostile_listing_is_inert(page, watch, lid)


def test_the_watch_catches_dialogs_csp_violations_and_foreign_requests(browser, live):
    """The page watch every other test relies on does see each kind of problem."""
    watch = Watch(live["url"])
    context, pg = watched_page(browser, live, watch)
    try:
        pg.goto("/")
        # An inline script added to the live page: the CSP must block it and the watch must hear of it.
        pg.evaluate("""() => { const s = document.createElement('script');
                               s.textContent = 'window.ran = true'; document.body.appendChild(s); }""")
        pg.wait_for_timeout(300)
        assert pg.evaluate("() => window.ran === undefined")
        pg.evaluate("() => alert('from the test')")
        with pytest.raises(Exception):
            pg.goto("http://jobsift-e2e.invalid/", timeout=5000)
    finally:
        context.close()
    assert watch.dialogs == ["alert: from the test"]
    assert watch.csp and "script-src" in watch.csp[0]
    assert watch.foreign == ["http://jobsift-e2e.invalid/"]
