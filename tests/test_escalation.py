"""Hybrid mode: which local scores go to Claude, the bounded worker, the budget cap, failures, and the report."""

from __future__ import annotations

import json

import pytest

import db as storage
from fake_anthropic import FakeAnthropic, store_recorded_listings
from scoring import claude, escalation, ledger, metrics
from scoring import profile as profile_mod
from scoring import queue
from scoring.strategies import ScoreResult

KEY = "sk-ant-test-escalation"


def local(score: int, grounded: bool = True, strategy: str = "fewshot", **detail) -> ScoreResult:
    return ScoreResult(score=score, reasoning="local", evidence=["x"] if grounded else ["made up"], grounded=grounded,
                       strategy=strategy, provider="llamacpp", model="qwen", detail=detail)


HYBRID = claude.settings_from({"mode": "hybrid", "claude_max_retries": 0, "claude_timeout_s": 5})


@pytest.fixture
def fake():
    f = FakeAnthropic(min_cache_tokens={}).start()
    yield f
    f.stop()


@pytest.fixture
def profile():
    return profile_mod.load(profile_mod.BUNDLED / "example.json")


@pytest.fixture
def ids(db):
    return store_recorded_listings(db)


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(escalation, "STATE", escalation.EscalationState())


def client_for(db, fake, settings=HYBRID):
    return claude.ClaudeClient(settings, KEY, fake.base_url, lambda call: ledger.record(db, call))


@pytest.mark.parametrize(
    "result, others, expected",
    [
        (local(64), [], []),
        (local(65), [], ["band"]),
        (local(85), [], ["band"]),
        (local(86), [], []),
        (local(30, grounded=False), [], ["ungrounded"]),
        (local(70, grounded=False), [], ["band", "ungrounded"]),
        (local(40), [local(65, strategy="rules")], []),  # exactly the margin is agreement
        (local(40), [local(66, strategy="rules")], ["disagreement"]),
        (local(40), [local(90, strategy="rules"), local(45, strategy="facts")], ["disagreement"]),
        (local(90, spread=20.0), [], []),
        (local(90, spread=20.5), [], ["spread"]),
        (local(20), [local(10, strategy="rules", spread=31.0)], ["spread"]),
    ],
)
def test_triggers(result, others, expected):
    assert escalation.triggers(result, others, HYBRID) == expected


def test_triggers_follow_the_configured_band_and_margins():
    s = claude.settings_from({"uncertainty_band": [40, 60], "disagreement_margin": 10, "spread_threshold": 5})
    assert escalation.triggers(local(50, spread=6.0), [local(61)], s) == ["band", "disagreement", "spread"]
    assert escalation.triggers(local(70), [local(75)], s) == []


def save_local(db, lid: int, r: ScoreResult, profile) -> int:
    return queue.save(db, lid, r, profile)


def test_band_and_ungrounded_escalate_exactly_the_right_listings(db, ids, profile):
    plan = {
        "AI Engineer": local(65),
        "Research Engineer": local(85),
        "Android Engineer III": local(64),
        "Senior System Software Engineer, NvSci": local(86),
        "Accounts Payable Lead": local(30, grounded=False),
        "AI Research Engineer -  3D Computer Vision": local(70, grounded=False),
    }
    for title, r in plan.items():
        save_local(db, ids[title], r, profile)
        escalation.after_local_score(db, ids[title], r, [], HYBRID)
    rows = {r["listing_id"]: r for r in db.query("SELECT * FROM escalations")}
    assert set(rows) == {ids["AI Engineer"], ids["Research Engineer"], ids["Accounts Payable Lead"],
                         ids["AI Research Engineer -  3D Computer Vision"]}
    assert json.loads(rows[ids["AI Research Engineer -  3D Computer Vision"]]["reasons"]) == ["band", "ungrounded"]
    assert json.loads(rows[ids["Accounts Payable Lead"]]["reasons"]) == ["ungrounded"]
    for lid, row in rows.items():
        assert row["status"] == "queued" and row["attempts"] == 0
        current = db.conn.execute("SELECT score_id FROM current_scores WHERE listing_id = ?", [lid]).fetchone()[0]
        assert row["local_score_id"] == current


def test_rules_scores_of_recorded_listings_escalate_by_band(db, ids, profile):
    """Through the queue's own rules scoring: every listing the rules put in [65, 85] is queued, no other."""
    queue.score_with_rules(db, list(ids.values()), profile)
    rules = queue.RulesStrategy(profile)
    views = queue.listing_views(db, list(ids.values()))
    expected = set()
    for lid, v in views.items():
        r = rules.score(v)
        if escalation.after_local_score(db, lid, r, [], HYBRID):
            expected.add(lid)
    stored = {lid: s for lid, s in db.conn.execute(
        "SELECT cs.listing_id, s.score FROM current_scores cs JOIN scores s ON s.id = cs.score_id")}
    in_band = {lid for lid, s in stored.items() if 65 <= s <= 85}
    queued = {r[0] for r in db.conn.execute("SELECT listing_id FROM escalations")}
    assert queued == expected
    assert in_band <= queued
    # Rules evidence is quoted from the listing, so only the band can send them.
    assert queued == in_band


def test_no_escalation_outside_hybrid_mode_or_when_claude_or_the_person_decided(db, ids, profile):
    lid = ids["AI Engineer"]
    r = local(70)
    save_local(db, lid, r, profile)
    assert escalation.after_local_score(db, lid, r, [], claude.settings_from({})) == []
    storage.save_score(db, lid, strategy="claude", provider="anthropic", model="m", score=80, reasoning="",
                       evidence=[], detail={})
    assert escalation.after_local_score(db, lid, r, [], HYBRID) == []
    assert db.conn.execute("SELECT count(*) FROM escalations").fetchone()[0] == 0


def test_an_open_escalation_is_updated_not_duplicated(db, ids, profile):
    lid = ids["AI Engineer"]
    save_local(db, lid, local(70), profile)
    escalation.after_local_score(db, lid, local(70), [], HYBRID)
    save_local(db, lid, local(75, grounded=False), profile)
    escalation.after_local_score(db, lid, local(75, grounded=False), [], HYBRID)
    [row] = db.query("SELECT * FROM escalations")
    assert json.loads(row["reasons"]) == ["band", "ungrounded"]


def queue_titles(db, ids, profile, titles) -> list[int]:
    out = []
    for title in titles:
        lid = ids[title]
        sid = save_local(db, lid, local(70), profile)
        escalation.enqueue(db, lid, ["band"], sid)
        out.append(lid)
    return out


TITLES = ["AI Engineer", "Research Engineer", "Android Engineer III", "Accounts Payable Lead",
          "Senior System Software Engineer, NvSci"]


def test_run_makes_claude_the_current_score_and_keeps_the_local_one(db, fake, ids, profile):
    lids = queue_titles(db, ids, profile, TITLES)
    fake.scores = {"AI Engineer": 91, "Accounts Payable Lead": 4}
    result = escalation.run_escalations(db, client_for(db, fake), HYBRID, max_workers=2, profile=profile)
    assert result == {"started": True, "done": 5, "failed": 0, "requeued": 0, "paused": "", "total": 5}
    sent = sorted(b["messages"][0]["content"].splitlines()[0] for b in fake.message_requests())
    assert sent == sorted(f"Title: {t}" for t in TITLES)
    for lid in lids:
        cur = db.query("SELECT s.* FROM current_scores cs JOIN scores s ON s.id = cs.score_id WHERE cs.listing_id = ?",
                       [lid])
        [cur] = list(cur)
        assert cur["strategy"] == "claude" and cur["provider"] == "anthropic" and cur["model"] == "claude-haiku-4-5"
        detail = json.loads(cur["detail"])
        assert detail["escalation"] == ["band"]
        # The local score stays in the history with its provenance.
        [loc] = list(db.query("SELECT * FROM scores WHERE id = ?", [detail["local_score_id"]]))
        assert loc["strategy"] == "fewshot" and loc["listing_id"] == lid and loc["score"] == 70
        [esc] = list(db.query("SELECT * FROM escalations WHERE listing_id = ?", [lid]))
        assert esc["status"] == "done" and esc["claude_score_id"] == cur["id"] and esc["attempts"] == 1
    assert db.conn.execute("SELECT score FROM current_scores WHERE listing_id = ?",
                           [ids["AI Engineer"]]).fetchone()[0] == 91
    calls = list(db.query("SELECT * FROM llm_calls"))
    assert len(calls) == 5 and {c["purpose"] for c in calls} == {"escalate"}
    assert {c["listing_id"] for c in calls} == set(lids)


def test_concurrency_is_bounded_by_max_workers(db, fake, ids, profile):
    queue_titles(db, ids, profile, TITLES)
    fake.delay = 0.3
    escalation.run_escalations(db, client_for(db, fake), HYBRID, max_workers=2, profile=profile)
    assert fake.max_in_flight == 2


def test_the_budget_cap_stops_escalation_and_leaves_rows_queued(db, fake, ids, profile):
    queue_titles(db, ids, profile, TITLES)
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="rescore", status="ok", cost_usd=5.0))
    result = escalation.run_escalations(db, client_for(db, fake), HYBRID, profile=profile)
    assert result["paused"] == escalation.BUDGET_MESSAGE and result["done"] == 0
    assert fake.message_requests() == []
    assert escalation.counts(db)["queued"] == 5
    assert escalation.STATE.snapshot()["paused"] == escalation.BUDGET_MESSAGE


def test_reaching_the_budget_mid_run_stops_before_the_next_call(db, fake, ids, profile):
    queue_titles(db, ids, profile, TITLES)
    # One call costs about $0.0015 here: the budget allows the first two, not a third.
    settings = claude.settings_from({"mode": "hybrid", "claude_max_retries": 0, "monthly_budget_usd": 0.002})
    result = escalation.run_escalations(db, client_for(db, fake, settings), settings, max_workers=1, profile=profile)
    assert result["paused"] == escalation.BUDGET_MESSAGE
    assert result["done"] == len(fake.message_requests()) == 2
    assert escalation.counts(db) == {"queued": 3, "running": 0, "done": 2, "failed": 0}
    assert ledger.month_spend(db) >= 0.002


def test_rate_limit_after_retries_leaves_the_row_queued_with_the_error(db, fake, ids, profile):
    lids = queue_titles(db, ids, profile, TITLES)
    fake.script.extend([{"status": 429, "headers": {"retry-after": "0"}}] * 2)
    settings = claude.settings_from({"mode": "hybrid", "claude_max_retries": 1})
    result = escalation.run_escalations(db, client_for(db, fake, settings), settings, max_workers=1, profile=profile)
    assert "rate limiting" in result["paused"] and result["done"] == 0 and result["requeued"] == 1
    first = next(iter(db.query("SELECT * FROM escalations WHERE listing_id = ?", [lids[0]])))
    assert first["status"] == "queued" and first["attempts"] == 1 and "429" in first["error"]
    # The run stopped instead of hammering the API with the rest.
    assert escalation.counts(db)["queued"] == 5
    assert len(fake.message_requests()) == 2
    # The listing keeps its local score.
    kept = db.conn.execute("SELECT strategy FROM current_scores WHERE listing_id = ?", [lids[0]]).fetchone()[0]
    assert kept == "fewshot"
    # A later run picks it up.
    result = escalation.run_escalations(db, client_for(db, fake, settings), settings, profile=profile)
    assert result["done"] == 5
    assert next(iter(db.query("SELECT attempts FROM escalations WHERE listing_id = ?", [lids[0]])))["attempts"] == 2


@pytest.mark.parametrize("step, error", [({"status": 500}, "HTTP 500"), ({"delay": 2.0}, "did not answer")])
def test_server_errors_and_timeouts_leave_rows_queued(db, fake, ids, profile, step, error):
    queue_titles(db, ids, profile, TITLES[:2])
    fake.script.append(step)
    settings = claude.settings_from({"mode": "hybrid", "claude_max_retries": 0, "claude_timeout_s": 0.5})
    result = escalation.run_escalations(db, client_for(db, fake, settings), settings, max_workers=1, profile=profile)
    assert error in result["paused"]
    assert escalation.counts(db)["queued"] == 2
    assert error in next(iter(db.query("SELECT error FROM escalations ORDER BY id LIMIT 1")))["error"]


def test_malformed_answers_are_retried_then_marked_failed(db, fake, ids, profile):
    [lid] = queue_titles(db, ids, profile, ["AI Engineer"])
    settings = claude.settings_from({"mode": "hybrid", "claude_max_retries": 0, "escalation_max_attempts": 2})
    for attempt in (1, 2):
        fake.script.append({"tool_input": {"score": 500, "reasoning": "x", "evidence": []}})
        escalation.run_escalations(db, client_for(db, fake, settings), settings, profile=profile)
        [row] = list(db.query("SELECT * FROM escalations"))
        assert row["attempts"] == attempt
        assert row["status"] == ("queued" if attempt == 1 else "failed")
        assert "score" in row["error"]
    assert db.conn.execute("SELECT strategy FROM current_scores WHERE listing_id = ?", [lid]).fetchone()[0] == "fewshot"
    assert [r["status"] for r in db.query("SELECT status FROM llm_calls")] == ["invalid", "invalid"]


def test_a_listing_claude_already_scored_is_not_paid_for_twice(db, fake, ids, profile):
    [lid] = queue_titles(db, ids, profile, ["AI Engineer"])
    sid = storage.save_score(db, lid, strategy="claude", provider="anthropic", model="m", score=77, reasoning="r",
                             evidence=[], detail={"purpose": "rescore"})
    result = escalation.run_escalations(db, client_for(db, fake), HYBRID, profile=profile)
    assert result["done"] == 1 and fake.message_requests() == []
    [row] = list(db.query("SELECT * FROM escalations"))
    assert row["status"] == "done" and row["claude_score_id"] == sid


def test_rows_left_running_by_a_killed_run_are_queued_again(db, fake, ids, profile):
    old, fresh = queue_titles(db, ids, profile, ["AI Engineer", "Research Engineer"])
    with storage.write(db):
        db.conn.execute("UPDATE escalations SET status = 'running', updated_at = '2026-01-01T00:00:00+00:00'"
                        " WHERE listing_id = ?", [old])
        # A row another process claimed a moment ago is left to it.
        db.conn.execute("UPDATE escalations SET status = 'running', updated_at = ? WHERE listing_id = ?",
                        [storage.now_iso(), fresh])
    result = escalation.run_escalations(db, client_for(db, fake), HYBRID, profile=profile)
    assert result["done"] == 1
    assert escalation.counts(db) == {"queued": 0, "running": 1, "done": 1, "failed": 0}


def test_report_counts_each_trigger_and_their_union():
    results = [local(70), local(30, grounded=False), local(90), local(50), local(80, spread=30.0)]
    labels = [20, 35, 88, 52, 60]
    others = [[local(72), local(30), local(40), local(55), local(78)]]
    rows = {r["trigger"]: r for r in escalation.report(results, labels, HYBRID, others)}
    assert rows["none"]["escalated"] == 0
    assert rows["band"]["escalated"] == 2
    assert rows["ungrounded"]["escalated"] == 1
    assert rows["disagreement"]["escalated"] == 1
    assert rows["spread"]["escalated"] == 1
    assert rows["any"]["escalated"] == 4 and rows["any"]["share"] == 0.8
    base = [70, 30, 90, 50, 80]
    assert rows["none"]["mae"] == round(metrics.mae(base, labels), 1)
    assert rows["none"]["spearman"] == round(metrics.spearman(base, labels), 3)
    # Escalated listings take their labels: only listing 4 (index 3) keeps its local score.
    assert rows["any"]["mae"] == round(metrics.mae([20, 35, 88, 50, 60], labels), 1)
    assert rows["any"]["mae"] < rows["band"]["mae"] < rows["none"]["mae"]


def test_report_leaves_out_listings_the_local_strategy_failed_on():
    rows = escalation.report([local(70), None, local(20)], [60, 50, 10], HYBRID)
    assert rows[0]["escalated"] == 0 and rows[-1]["escalated"] == 1
    assert rows[-1]["share"] == 0.5


def test_dev_report_on_the_shipped_labels():
    rep = escalation.dev_report(HYBRID)
    rows = {r["trigger"]: r for r in rep["rows"]}
    assert rep["n"] == 57 and rep["local"] == "rules"
    assert rows["any"]["escalated"] >= rows["band"]["escalated"] > 0
    assert rows["disagreement"]["escalated"] == 0  # nothing to disagree with
    assert rows["any"]["mae"] < rows["none"]["mae"]
    text = escalation.format_report(rep, HYBRID)
    assert "band [65, 85]" in text and "any" in text


def test_run_pending_needs_hybrid_mode_and_a_key(db, app, fake, ids, profile, tmp_path, monkeypatch):
    queue_titles(db, ids, profile, ["AI Engineer"])
    path, env_file = app.config["DATABASE"], tmp_path / "no.env"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    scoring = {"mode": "hybrid", "claude_max_retries": 0}
    assert escalation.run_pending(path, {}, tmp_path, env_file) == {"started": False, "reason": "hybrid mode is off"}
    result = escalation.run_pending(path, scoring, tmp_path, env_file)
    assert result["started"] is False and "ANTHROPIC_API_KEY" in result["reason"]
    env_file.write_text(f"ANTHROPIC_API_KEY={KEY}\n")
    result = escalation.run_pending(path, scoring, tmp_path, env_file)
    assert result["started"] is True and result["done"] == 1
    assert fake.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
