"""The agreement report on a small database whose every figure is computed by hand in the comments."""

from __future__ import annotations

import re

import pytest

import db as storage
import learning_views
from fake_anthropic import store_recorded_listings
from scoring import report

HTMX = {"HX-Request": "true"}
TITLES = ["AI Engineer", "Research Engineer", "Android Engineer III", "Accounts Payable Lead",
          "Senior System Software Engineer, NvSci"]


@pytest.fixture
def report_app(app, tmp_path):
    app.instance_path = str(tmp_path / "instance")
    if "learning" not in app.blueprints:
        learning_views.init_app(app)
    return app


def score(db, lid, strategy, value, version, at, grounded=1):
    storage.save_score(db, lid, strategy=strategy, provider="test", model="m", profile_version=version, score=value,
                       reasoning="r", evidence=[], grounded=grounded, created_at=at)


@pytest.fixture
def five(db):
    """Five listings L1..L5 scored by rules (v1), then fewshot and Claude (v2), three overridden by the person.

    rules   10  30  50  70  90   (L5 ungrounded)
    fewshot 20  20  60  80   -   (L2 ungrounded)
    claude   0  40  60   -   -
    current  0  40  60  80  90   (claude, claude, claude, fewshot, rules: the last saved)
    person   -   -  70  90  20
    """
    ids = store_recorded_listings(db)
    L = [ids[t] for t in TITLES]
    for lid, s, g in zip(L, (10, 30, 50, 70, 90), (1, 1, 1, 1, 0)):
        score(db, lid, "rules", s, "v1", "2026-01-01T00:00:00+00:00", g)
    for lid, s, g in zip(L, (20, 20, 60, 80), (1, 0, 1, 1)):
        score(db, lid, "fewshot", s, "v2", "2026-02-01T00:00:00+00:00", g)
    for lid, s in zip(L, (0, 40, 60)):
        score(db, lid, "claude", s, "v2", "2026-02-02T00:00:00+00:00")
    for lid, s in zip(L[2:], (70, 90, 20)):
        storage.set_verdict(db, lid, override_score=s, override_reason="mine")
    with storage.write(db):
        for lid in L[:2]:
            db.conn.execute("INSERT INTO escalations (listing_id, reasons, status, created_at, updated_at)"
                            " VALUES (?, '[\"band\"]', 'done', '', '')", [lid])
        for lid, cost, status in ((L[0], 0.01, "ok"), (L[1], 0.03, "ok"), (L[2], 0.005, "error"), (None, 0.002, "ok")):
            db.conn.execute("INSERT INTO llm_calls (provider, model, purpose, listing_id, status, cost_usd, created_at)"
                            " VALUES ('anthropic', 'claude-haiku-4-5', 'calibrate', ?, ?, ?, '2026-02-02')",
                            [lid, status, cost])
    return L


def by_strategy(rep):
    return {r["strategy"]: r for r in rep["rows"]}


def test_agreement_per_strategy_matches_hand_computed_values(db, five):
    rep = report.build(db)
    rows = by_strategy(rep)
    assert list(rows) == ["rules", "fewshot", "claude", "hybrid"]
    assert rep["labels"] == {"claude": 3, "person": 3}

    # rules vs Claude: (10,0) (30,40) (50,60): MAE 10; same order; bands no/no, no/weak, weak/weak.
    assert rows["rules"]["vs_claude"] == {"n": 3, "mae": 10.0, "spearman": 1.0, "band_agreement": 0.667}
    # rules vs person: (50,70) (70,90) (90,20): MAE 110/3; ranks (1,2,3) vs (2,3,1) -> rho -0.5; no band shared.
    assert rows["rules"]["vs_person"] == {"n": 3, "mae": 36.7, "spearman": -0.5, "band_agreement": 0.0}
    assert rows["rules"]["scored"] == 5 and rows["rules"]["ungrounded_rate"] == 0.2

    # fewshot vs Claude: (20,0) (20,40) (60,60): MAE 40/3; tied ranks (1.5,1.5,3) vs (1,2,3) -> 1.5/sqrt(3).
    assert rows["fewshot"]["vs_claude"] == {"n": 3, "mae": 13.3, "spearman": 0.866, "band_agreement": 0.667}
    assert rows["fewshot"]["vs_person"] == {"n": 2, "mae": 10.0, "spearman": 1.0, "band_agreement": 0.0}
    assert rows["fewshot"]["ungrounded_rate"] == 0.25

    # Claude is the reference: not compared with itself; against the person only L3 (60 vs 70).
    assert rows["claude"]["vs_claude"] == {"n": 0}
    assert rows["claude"]["vs_person"] == {"n": 1, "mae": 10.0, "spearman": 0.0, "band_agreement": 0.0}

    # hybrid = the current score: 0 40 60 80 90.
    assert rows["hybrid"]["vs_claude"] == {"n": 3, "mae": 0.0, "spearman": 1.0, "band_agreement": 1.0}
    assert rows["hybrid"]["vs_person"] == {"n": 3, "mae": 30.0, "spearman": -0.5, "band_agreement": 0.0}
    assert rows["hybrid"]["ungrounded_rate"] == 0.2  # only L5's current (rules) score


def test_rates_and_claude_spend(db, five):
    rep = report.build(db)
    assert rep["scored_listings"] == 5
    assert (rep["escalations"], rep["escalation_rate"]) == (2, 0.4)
    assert rep["override_rate"] == 0.6
    # Spent: every call, failed ones included. Per listing: the ok calls about a listing, (0.01 + 0.03) / 2.
    assert rep["spend"] == {"spent_usd": 0.047, "per_listing_usd": 0.02, "all_claude_usd": 0.1}


def test_agreement_per_profile_version(db, five):
    rows = [(r["profile_version"], r["strategy"], r["scored"], r["vs_claude"].get("mae"), r["vs_person"].get("mae"))
            for r in report.build(db)["over_time"]]
    assert rows == [("v1", "rules", 5, 10.0, 36.7), ("v2", "fewshot", 4, 13.3, 10.0), ("v2", "claude", 3, None, 10.0)]


def test_recalibrate_banner_needs_enough_labels_below_the_threshold(db, five):
    # hybrid vs person is rho -0.5 on 3 labels: below 0.5, but fewer than 10 labels.
    assert report.build(db)["recalibrate"] is False
    assert report.build(db, settings={"recalibrate_min_labels": 3})["recalibrate"] is True
    assert report.build(db, settings={"recalibrate_min_labels": 3, "recalibrate_below": -0.6})["recalibrate"] is False


def test_ten_labels_in_reverse_order_ask_for_recalibration(db):
    ids = list(store_recorded_listings(db).values())[:10]
    for i, lid in enumerate(ids):
        score(db, lid, "rules", 10 * i, "v1", "2026-01-01T00:00:00+00:00")
        storage.set_verdict(db, lid, override_score=90 - 10 * i, override_reason="no")
    rep = report.build(db)
    assert rep["person_agreement"]["n"] == 10 and rep["person_agreement"]["spearman"] == -1.0
    assert rep["recalibrate"] is True
    for i, lid in enumerate(ids):
        storage.set_verdict(db, lid, override_score=10 * i + 5, override_reason="yes")
    assert report.build(db)["recalibrate"] is False


def test_chart_geometry(db, five):
    rep = report.build(db)
    # Newest local strategy is fewshot; reference is the person's label where there is one, else Claude's.
    assert rep["chart_strategy"] == "fewshot"
    points = sorted((p["x"], p["y"], p["source"]) for p in rep["scatter"]["points"])
    assert points == [(0, 20, "claude"), (40, 20, "claude"), (70, 60, "human"), (90, 80, "human")]
    first = next(p for p in rep["scatter"]["points"] if p["x"] == 0)
    # 300 px with 36 px margins: x = 36 + 0 * 228, y = 300 - 36 - 0.2 * 228.
    assert (first["cx"], first["cy"]) == (36.0, 218.4)
    bars = rep["histogram"]["bars"]
    assert [b["count"] for b in bars] == [1, 0, 0, 0, 1, 0, 1, 0, 1, 1]
    assert (bars[9]["lo"], bars[9]["hi"], bars[0]["hi"]) == (90, 100, 9)
    assert bars[0]["height"] == 228.0 and bars[1]["height"] == 0.0
    rules_chart = report.build(db, chart_strategy="rules")["scatter"]["points"]
    assert sorted((p["x"], p["y"]) for p in rules_chart) == [(0, 10), (20, 90), (40, 30), (70, 50), (90, 70)]


def test_group_verdict_is_the_persons_label(db):
    from scraper.base import Listing

    ids = store_recorded_listings(db)
    a = ids["AI Engineer"]
    title, company = db.conn.execute("SELECT title, company FROM listings WHERE id = ?", [a]).fetchone()
    storage.upsert_listings(db, [Listing(source="remotive", source_id="dup", title=title, company=company)])
    b = db.conn.execute("SELECT id FROM listings WHERE source_id = 'dup'").fetchone()[0]
    with storage.write(db):
        storage.set_verdict(db, a, override_score=20, override_reason="old")
        db.conn.execute("UPDATE verdicts SET updated_at = '2026-01-01' WHERE listing_id = ?", [a])
    storage.set_verdict(db, b, override_score=None, status="starred")
    # The job's latest verdict (on b) has no override: the person has no label on this job now.
    assert report.build(db)["labels"]["person"] == 0


def test_the_calibration_page_draws_the_report(report_app, client, db, five):
    resp = client.get("/calibration")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.startswith("<!doctype html>")
    assert "Agreement with 3 Claude labels and 3 of yours" in html
    assert html.count('class="chart-point label-') == 4
    assert html.count('class="chart-bar') == 10
    assert " style=" not in html and "<script>" not in html, "the CSP forbids inline styles and scripts"
    assert "Time to recalibrate" not in html
    assert "$0.0470" in html and "$0.10" in html
    partial = client.get("/calibration?chart=rules", headers=HTMX).get_data(as_text=True)
    assert partial.startswith('<div id="learning-report"') and partial.count('class="chart-point label-') == 5


def test_the_calibration_page_shows_the_banner(report_app, client, db, five):
    report_app.config["JOBSIFT"] = type(report_app.config["JOBSIFT"])(scoring={"recalibrate_min_labels": 3})
    html = client.get("/calibration").get_data(as_text=True)
    assert "Time to recalibrate" in html and "-0.50" in html


def test_an_empty_database_renders(report_app, client):
    html = client.get("/calibration").get_data(as_text=True)
    assert "Nothing is scored yet." in html
    assert re.search(r'<svg class="chart chart-scatter"', html)
