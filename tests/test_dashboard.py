"""The dashboard through the Flask test client: full page vs htmx partial, detail, actions."""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
from flask import template_rendered

import db as storage
import search
from conftest import FIXTURES
from scraper import SOURCES, get_source

HTMX = {"HX-Request": "true"}


def parsed(source: str, path: str):
    """Listings of a recorded payload, read by the project's own parser for that board."""
    return get_source(source).parse((FIXTURES / path).read_bytes()).listings


@pytest.fixture
def stored(db):
    """Remotive's payload stored with flags; returns {source_id: listing id}."""
    listings = parsed("remotive", "remotive/remotive_all_2026-07.json")
    storage.upsert_listings(db, listings)
    ids = {sid: lid for lid, sid in db.conn.execute("SELECT id, source_id FROM listings")}
    for lid in ids.values():
        storage.save_flags(db, lid, [
            SimpleNamespace(kind="location", label="loc:remote", evidence="Worldwide"),
            SimpleNamespace(kind="focus", label="focus:tech", evidence="Engineer"),
        ], "test")
    return ids


@contextlib.contextmanager
def rendered(app):
    """Names of the templates rendered inside the block."""
    names: list[str] = []

    def record(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(record, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(record, app)


def csrf(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def post(client, url: str, data: dict, htmx: bool = True, origin: str = "row"):
    token = csrf(client)
    headers = {"X-CSRF-Token": token, **HTMX} if htmx else {}
    body = {"from": origin, "next": "/", **data}
    if not htmx:
        body["csrf_token"] = token
    return client.post(url, data=body, headers=headers)


# --- page vs partial --------------------------------------------------------------


def test_full_page_includes_the_partials(app, client, stored):
    with rendered(app) as names:
        resp = client.get("/")
    assert resp.status_code == 200
    assert names == ["index.html"]
    html = resp.get_data(as_text=True)
    assert html.startswith("<!doctype html>")
    assert '<div id="dashboard"' in html and '<ol id="listings"' in html  # the partial, included
    assert 'href="/sources"' in html and "<nav" in html


def test_htmx_request_gets_only_the_listings_partial(app, client, stored):
    with rendered(app) as names:
        resp = client.get("/?q=engineer", headers=HTMX)
    assert resp.status_code == 200
    assert names == ["_listings.html"]
    html = resp.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="dashboard"') and "<html" not in html


def test_history_restore_gets_the_full_page(app, client, stored):
    with rendered(app) as names:
        client.get("/", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert names == ["index.html"]


def test_detail_partial_and_full_page(app, client, stored):
    lid = stored["2091062"]
    with rendered(app) as names:
        partial = client.get(f"/listing/{lid}", headers=HTMX)
    assert names == ["_detail.html"]
    html = partial.get_data(as_text=True)
    assert "Senior Product Engineer (Fullstack)" in html and "Clipster" in html
    # The board's credit and link back, as its terms ask.
    assert SOURCES["remotive"].attribution in html
    assert f'href="{SOURCES["remotive"].attribution_url}"' in html
    assert "evidence for" not in html and "Worldwide" in html  # flag evidence shown
    with rendered(app) as names:
        full = client.get(f"/listing/{lid}?q=engineer")
    assert names == ["index.html"]
    assert f'<section id="detail-{lid}"' in full.get_data(as_text=True)
    assert 'value="engineer"' in full.get_data(as_text=True)


def test_detail_shows_every_score_with_provenance(client, db, stored):
    lid = stored["2091062"]
    storage.save_score(db, lid, score=62, strategy="rules", provider="rules", model="rules-v1",
                       reasoning="Fullstack product role, some backend.", evidence=["Fullstack"],
                       created_at="2026-11-20T10:00:00+00:00")
    storage.save_score(db, lid, score=71, strategy="fewshot", provider="llamacpp", model="qwen2.5-1.5b",
                       reasoning="Product engineering with Python.", evidence=["Senior Product Engineer"],
                       created_at="2026-11-21T10:00:00+00:00")
    html = client.get(f"/listing/{lid}", headers=HTMX).get_data(as_text=True)
    for text in ("62", "rules-v1", "Fullstack product role", "71", "qwen2.5-1.5b", "Senior Product Engineer",
                 "2026-11-21 10:00"):
        assert text in html
    assert html.index("qwen2.5-1.5b") < html.index("rules-v1")  # newest first


def test_missing_listing(client, stored):
    assert client.get("/listing/999999", headers=HTMX).status_code == 404
    full = client.get("/listing/999999")
    assert full.status_code == 404 and "no listing #999999" in full.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    "?days=abc&min_score=-5&page=0&sort=evil&q=%22%28",
    "?q=" + "x" * 5000,
    "?page=99999999999999999999&min_score=1e9&days=-7",
    "?source=%00%ff&loc=%3Cscript%3E&focus=&status=",
    "?q=NEAR%28a%20b%29%20OR%20*&eligible=2",
])
def test_garbage_query_strings_fall_back_to_defaults(client, stored, query):
    for headers in ({}, HTMX):
        resp = client.get("/" + query, headers=headers)
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert 'class="notice"' in html
        assert "<script>" not in html


def test_listings_show_flags_score_and_also_on(client, db, stored):
    original = parsed("remotive", "remotive/remotive_all_2026-07.json")[0]
    storage.upsert_listings(db, [replace(original, source="himalayas", source_id="dup-1")],
                            seen_at="2030-01-01T00:00:00+00:00")
    copy_id = db.conn.execute("SELECT id FROM listings WHERE source_id = 'dup-1'").fetchone()[0]
    storage.save_flags(db, copy_id, [SimpleNamespace(kind="location", label="loc:remote-restricted", evidence="USA"),
                                     SimpleNamespace(kind="focus", label="focus:non-tech", evidence="Labeling")], "t")
    storage.save_score(db, copy_id, score=83, strategy="rules")
    html = client.get('/?q="data labeling specialists"').get_data(as_text=True)
    assert re.search(r"1 job\s*</p>", html)
    row = re.search(rf'<li id="listing-{copy_id}".*?</li>', html, re.S).group(0)
    assert "also on: Remotive" in row
    assert ">remote-restricted<" in row and ">non-tech<" in row and ">83<" in row


def test_stale_listing_is_marked(client, db, stored):
    storage.mark_stale(db, "2999-01-01T00:00:00+00:00")
    html = client.get("/").get_data(as_text=True)
    assert 'class="stale-mark"' in html and "is-stale" in html


def test_pagination_links_keep_filters(client, db):
    storage.upsert_listings(db, parsed("remoteok", "remoteok/remoteok_api_2025-08-28.json"))
    html = client.get("/?sort=date").get_data(as_text=True)
    assert "page 1 of 2" in html
    assert 'href="/?sort=date&amp;page=2"' in html
    second = client.get("/?sort=date&page=2").get_data(as_text=True)
    assert "page 2 of 2" in second and 'rel="prev"' in second


# --- actions ----------------------------------------------------------------------


def test_star_returns_the_row_and_persists(app, client, db, stored):
    lid = stored["2091062"]
    with rendered(app) as names:
        resp = post(client, f"/listing/{lid}/status", {"status": "starred"})
    assert resp.status_code == 200
    assert names[-2:] == ["_row.html", "_detail.html"]
    html = resp.get_data(as_text=True)
    assert html.startswith(f'<li id="listing-{lid}"')
    assert f'id="detail-{lid}"' in html and 'hx-swap-oob="true"' in html
    assert storage.get_verdict(db, lid)["status"] == "starred"
    assert 'aria-pressed="true"' in html and 'value="new" data-action="star"' in html


def test_action_from_the_detail_panel_returns_detail_first(app, client, db, stored):
    lid = stored["2091062"]
    with rendered(app) as names:
        resp = post(client, f"/listing/{lid}/status", {"status": "applied"}, origin="detail")
    assert names[-2:] == ["_detail.html", "_row.html"]
    html = resp.get_data(as_text=True)
    assert html.startswith(f'<section id="detail-{lid}"')
    assert re.search(rf'<li id="listing-{lid}"[^>]*hx-swap-oob="true"', html)


def test_plain_form_post_redirects_back(client, db, stored):
    lid = stored["2091062"]
    resp = post(client, f"/listing/{lid}/status", {"status": "hidden", "next": "/?q=engineer"}, htmx=False)
    assert resp.status_code == 303 and resp.headers["Location"] == "/?q=engineer"
    assert storage.get_verdict(db, lid)["status"] == "hidden"
    offsite = post(client, f"/listing/{lid}/status", {"status": "new", "next": "https://evil.example/"}, htmx=False)
    assert offsite.headers["Location"] == "/"
    assert post(client, f"/listing/{lid}/status", {"status": "new", "next": "//evil.example"},
                htmx=False).headers["Location"] == "/"


def test_hide_then_unhide(client, db, stored):
    lid = stored["2091062"]
    post(client, f"/listing/{lid}/status", {"status": "hidden"})
    assert f'id="listing-{lid}"' not in client.get("/").get_data(as_text=True)
    assert f'id="listing-{lid}"' in client.get("/?status=hidden").get_data(as_text=True)
    post(client, f"/listing/{lid}/status", {"status": "new"})
    assert f'id="listing-{lid}"' in client.get("/").get_data(as_text=True)


def test_unknown_status_is_refused_inline(client, db, stored):
    lid = stored["2091062"]
    resp = post(client, f"/listing/{lid}/status", {"status": "bogus"})
    assert resp.status_code == 422 and "Unknown status" in resp.get_data(as_text=True)
    assert db.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0


def test_note_is_saved_and_an_overlong_one_is_kept_in_the_form(client, db, stored):
    lid = stored["2091062"]
    assert post(client, f"/listing/{lid}/note", {"note": "Ask about the Rails migration"},
                origin="detail").status_code == 200
    assert storage.get_verdict(db, lid)["note"] == "Ask about the Rails migration"
    long_note = "word " * 600
    resp = post(client, f"/listing/{lid}/note", {"note": long_note}, origin="detail")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "under 2000 characters" in html and long_note.strip() in html
    assert storage.get_verdict(db, lid)["note"] == "Ask about the Rails migration"


@pytest.mark.parametrize("score, reason, field", [
    ("abc", "because", "whole number"),
    ("101", "because", "whole number"),
    ("-1", "because", "whole number"),
    ("50.5", "because", "whole number"),
    ("1e2", "because", "whole number"),
    ("80", "", "one line why"),
    ("80", "x" * 300, "under 200 characters"),
])
def test_invalid_score_override_keeps_input_and_stored_value(client, db, stored, score, reason, field):
    lid = stored["2091062"]
    assert post(client, f"/listing/{lid}/score", {"override_score": "77", "override_reason": "Python backend"},
                origin="detail").status_code == 200
    resp = post(client, f"/listing/{lid}/score", {"override_score": score, "override_reason": reason},
                origin="detail")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert field in html.lower() or field in html
    assert f'value="{score}"' in html  # what the person typed is still there
    verdict = storage.get_verdict(db, lid)
    assert (verdict["override_score"], verdict["override_reason"]) == (77, "Python backend")


def test_score_override_saved_shown_and_cleared(client, db, stored):
    lid = stored["2091062"]
    storage.save_score(db, lid, score=40, strategy="rules")
    resp = post(client, f"/listing/{lid}/score", {"override_score": "88", "override_reason": "Exactly my\nstack "})
    assert resp.status_code == 200
    verdict = storage.get_verdict(db, lid)
    assert verdict["override_score"] == 88 and verdict["override_reason"] == "Exactly my stack"
    assert "88*" in resp.get_data(as_text=True)
    post(client, f"/listing/{lid}/score", {"override_score": "", "override_reason": ""})
    assert storage.get_verdict(db, lid)["override_score"] is None
    assert search.load_row(db, lid)["score"] == 40


def test_flag_override_wins_and_can_be_undone(client, db, stored):
    lid = stored["2091062"]
    resp = post(client, f"/listing/{lid}/flag", {"kind": "location", "label": "loc:home", "reason": "Berlin office"},
                origin="detail")
    assert resp.status_code == 200
    assert "Berlin office" in resp.get_data(as_text=True)
    assert f'id="listing-{lid}"' in client.get("/?loc=home").get_data(as_text=True)
    storage.save_flags(db, lid, [SimpleNamespace(kind="location", label="loc:overseas-onsite", evidence="x")], "v2")
    assert f'id="listing-{lid}"' in client.get("/?loc=home").get_data(as_text=True)
    post(client, f"/listing/{lid}/flag", {"kind": "location", "label": ""}, origin="detail")
    assert f'id="listing-{lid}"' not in client.get("/?loc=home").get_data(as_text=True)


@pytest.mark.parametrize("data", [
    {"kind": "location", "label": "focus:tech"},
    {"kind": "salary", "label": "loc:home"},
    {"kind": "location", "label": "loc:home", "reason": "r" * 500},
])
def test_invalid_flag_override_is_refused(client, db, stored, data):
    lid = stored["2091062"]
    resp = post(client, f"/listing/{lid}/flag", data, origin="detail")
    assert resp.status_code == 422 and 'class="error"' in resp.get_data(as_text=True)
    assert db.conn.execute("SELECT count(*) FROM flag_overrides").fetchone()[0] == 0


def test_actions_on_a_missing_listing(client, stored):
    for path in ("status", "note", "score", "flag"):
        assert post(client, f"/listing/424242/{path}", {"status": "starred"}).status_code == 404
        assert post(client, f"/listing/424242/{path}", {"status": "starred"}, htmx=False).status_code == 404


def test_verdicts_survive_refetching_the_same_and_a_changed_listing(client, db, stored):
    listings = parsed("remotive", "remotive/remotive_all_2026-07.json")
    lid = stored["2091062"]
    post(client, f"/listing/{lid}/status", {"status": "starred"})
    post(client, f"/listing/{lid}/note", {"note": "call Tuesday"})
    post(client, f"/listing/{lid}/score", {"override_score": "91", "override_reason": "great team"})
    storage.upsert_listings(db, listings)  # the same payload again
    changed = [replace(item, description_html=item.description_html + "<p>Updated: now hiring in Berlin</p>",
                       salary="€90k") if item.source_id == "2091062" else item for item in listings]
    result = storage.upsert_listings(db, changed)
    assert result["updated"] == [lid]
    verdict = storage.get_verdict(db, lid)
    assert (verdict["status"], verdict["note"], verdict["override_score"]) == ("starred", "call Tuesday", 91)
    html = client.get("/?status=starred").get_data(as_text=True)
    assert f'id="listing-{lid}"' in html and "€90k" in html
