"""Scoring in the UI: active strategy and agreement, Score now, progress, demo label, evidence highlights."""

import re

import pytest

import db as storage
from sanitize import clean_html, highlight
from scoring import queue, service
from scoring.profile import BUNDLED, load
from scraper.base import Listing


def csrf(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture
def listings(db):
    items = [
        Listing(source="remotive", source_id="1", title="Senior Python Engineer", company="Acme",
                location="Remote (Europe)", description_html="<p>Build our <b>ML platform</b> in Python.</p>"),
        Listing(source="remotive", source_id="2", title="Account Executive", company="Beta",
                location="New York", description_html="<p>Sell things.</p>"),
    ]
    return storage.upsert_listings(db, items)["new"]


def test_page_names_strategy_and_its_measured_agreement(client, db, listings):
    assert "not measured yet" in client.get("/").get_data(as_text=True)
    summary = service.ensure_rules_evaluation(db)
    assert summary["n"] == 57 and summary["spearman"] > 0.7
    html = client.get("/").get_data(as_text=True)
    assert "Scoring: <strong>rules</strong>" in html
    assert f"rank agreement {summary['spearman']:.2f} on 57" in html
    # Measured once per profile version.
    assert service.ensure_rules_evaluation(db) is None


def test_score_now_scores_in_the_background_and_reports_progress(app, client, db, listings):
    assert service.wait_idle(120)  # a pass started by an earlier test must not absorb this one
    assert client.post("/score").status_code == 403  # no CSRF token
    r = client.post("/score", data={"csrf_token": csrf(client)})
    assert r.status_code == 200 and 'id="score-status"' in r.get_data(as_text=True)
    assert service.wait_idle(60)
    rows = dict(db.conn.execute("SELECT listing_id, score FROM current_scores").fetchall())
    assert set(rows) == set(listings)
    assert rows[listings[0]] > rows[listings[1]]
    status = client.get("/score/status").get_data(as_text=True)
    assert "Last pass" in status and "hx-get" not in status  # done: no more polling


def test_running_status_polls(client, monkeypatch):
    monkeypatch.setattr(queue.STATE, "running", True)
    monkeypatch.setattr(queue.STATE, "total", 10)
    monkeypatch.setattr(queue.STATE, "done", 3)
    html = client.get("/score/status").get_data(as_text=True)
    assert "Scoring 3 / 10" in html and 'hx-trigger="every 1500ms"' in html


def test_detail_labels_demo_model_scores_and_highlights_evidence(client, db, listings):
    from scoring.providers import demo_model_path
    from pathlib import Path

    demo = Path(demo_model_path()).stem
    storage.save_score(db, listings[0], strategy="fewshot", provider="llamacpp", model=demo, profile_version="v",
                       score=77, reasoning="fits", evidence=["ML platform"], grounded=1)
    html = client.get(f"/listing/{listings[0]}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "demo model" in html
    assert "<mark>ML platform</mark>" in html


def test_highlight_escapes_quotes_and_never_breaks_tags():
    cleaned = clean_html('<p>Use <a href="https://x.example/python">Python</a> &amp; Go daily</p>')
    out = str(highlight(cleaned, ["Python", "& Go", "<script>alert(1)</script>", "href"]))
    assert "<mark>Python</mark>" in out
    assert "<mark>&amp; Go</mark>" in out
    assert "<script" not in out
    assert 'href="https://x.example/python"' in out  # attributes untouched
    assert str(highlight(cleaned, [])) == cleaned
