"""Calibration: the diverse sample, the derived profile, direct and batch scoring, resuming, and the CLI."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import claude_cli
import db as storage
from fake_anthropic import FakeAnthropic, store_recorded_listings
from scoring import calibration, claude, ledger
from scoring import profile as profile_mod
from scoring import queue
from scoring.profile import Example

KEY = "sk-ant-test-calibration"
CV = """# Ada Example
Senior backend and ML platform engineer, 8 years of Python and Go, Kubernetes, LLM inference.
Lives in Berlin, Germany. Wants remote-in-EU or Berlin roles. Not interested in sales or marketing.
"""


@pytest.fixture
def fake():
    f = FakeAnthropic(min_cache_tokens={}).start()
    yield f
    f.stop()


@pytest.fixture
def ids(db):
    ids = store_recorded_listings(db)
    queue.score_with_rules(db, list(ids.values()), profile_mod.load(profile_mod.BUNDLED / "example.json"))
    return ids


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(calibration, "STATE", calibration.CalibrationState())


def client_for(db, fake, **scoring):
    settings = claude.settings_from({"claude_max_retries": 0, "claude_timeout_s": 5, **scoring})
    return claude.ClaudeClient(settings, KEY, fake.base_url, lambda call: ledger.record(db, call))


def derive_requests(fake) -> list[dict]:
    return [b for b in fake.message_requests() if b["tools"][0]["name"] == "record_profile"]


def score_requests(fake) -> list[dict]:
    return [b for b in fake.message_requests() if b["tools"][0]["name"] == "record_score"]


def test_sample_spreads_over_sources_flags_and_bands_and_is_deterministic(db, ids):
    first = calibration.sample(db, 8, seed=3)
    assert first == calibration.sample(db, 8, seed=3)
    assert len(first) == len(set(first)) == 8
    rows = {r[0]: r[1:] for r in db.conn.execute(
        "SELECT l.id, l.source, fl.label, ff.label FROM listings l"
        " JOIN flags fl ON fl.listing_id = l.id AND fl.kind = 'location'"
        " JOIN flags ff ON ff.listing_id = l.id AND ff.kind = 'focus'")}
    sources = Counter(rows[i][0] for i in first)
    assert set(sources) == {"himalayas", "arbeitnow", "greenhouse", "ashby", "lever"}
    assert max(sources.values()) <= 2
    assert {rows[i][2] for i in first} == {"focus:priority", "focus:tech", "focus:non-tech"}
    assert len({rows[i][1] for i in first}) >= 4
    assert calibration.sample(db, 8, seed=4) != first
    # Asking for more than there is gives everything once.
    assert sorted(calibration.sample(db, 100)) == sorted(ids.values())


def test_sample_uses_the_persons_flag_overrides(db, ids):
    lids = list(ids.values())
    with storage.write(db):
        for lid in lids[:3]:
            db.conn.execute("INSERT INTO flag_overrides (listing_id, kind, label, reason, created_at)"
                            " VALUES (?, 'location', 'loc:unknown', 'unsure', '2026-01-01')", [lid])
    # Only three listings carry loc:unknown, so a spread-out sample of 6 takes at least one.
    assert set(calibration.sample(db, 6)) & set(lids[:3])


def test_calibration_writes_a_valid_profile_scores_and_an_agreement_row(db, fake, ids, instance):
    fake.scores = {"Title: AI Research Engineer -  3D Computer Vision\n": 88}
    result = calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=10, seed=5)

    path = instance / "scoring_profiles" / "ada.json"
    assert result["profile_path"] == str(path)
    prof = profile_mod.load(path)
    assert prof.cv_name == "ada" and prof.cv_summary.startswith("Senior Python and Go engineer")
    assert [c.name for c in prof.criteria] == ["ML / AI engineering", "Systems / backend"]
    # Wants weigh positive and red flags negative, whatever sign the answer used.
    assert {c.name: c.weight for c in prof.red_flags} == {"Sales / marketing": -35.0, "Internship": -30.0}
    assert "loc:bogus" not in prof.location_weights
    assert prof.location_weights["loc:overseas-onsite"] == -40.0
    assert prof.location_weights["loc:country-other"] == profile_mod.DEFAULT_LOCATION_WEIGHTS["loc:country-other"]
    assert prof.family_weights["sales_marketing"] == -40.0

    sampled = calibration.sample(db, 10, seed=5)
    assert ids["AI Research Engineer -  3D Computer Vision"] in sampled
    assert len(prof.examples) == result["scored"] == result["sampled"] == 10
    assert {e.listing_id for e in prof.examples} == set(sampled)
    stored = dict(db.conn.execute("SELECT listing_id, score FROM current_scores"))
    for e in prof.examples:
        assert e.source == "claude" and e.excerpt and e.reasoning
        assert e.score == stored[e.listing_id]
    assert {e.title: e.score for e in prof.examples}["AI Research Engineer -  3D Computer Vision"] == 88

    # One call derives the profile with the CV; the rest score with the new profile in the cached prefix.
    [derive] = derive_requests(fake)
    assert derive["messages"][0]["content"].endswith(CV.strip())
    assert derive["tool_choice"] == {"type": "tool", "name": "record_profile"}
    scoring = score_requests(fake)
    assert len(scoring) == 10
    assert all(b["system"][-1]["cache_control"] == {"type": "ephemeral"} for b in scoring)
    assert all(prof.cv_summary in b["system"][-1]["text"] for b in scoring)
    assert CV.strip() not in json.dumps(scoring)

    calls = list(db.query("SELECT * FROM llm_calls"))
    assert len(calls) == 11 and {c["purpose"] for c in calls} == {"calibrate"}
    assert result["cost_usd"] == pytest.approx(round(sum(c["cost_usd"] for c in calls), 4))

    [ev] = list(db.query("SELECT * FROM strategy_evals"))
    assert ev["strategy"] == "rules" and ev["label_set"] == "person" and ev["n"] == 10
    assert ev["profile_version"] == prof.version and ev["model"] == f"rules@{prof.weights_version}"
    assert ev["spearman"] == result["agreement"]["spearman"] and ev["valid_rate"] == 1.0
    assert -1.0 <= ev["spearman"] <= 1.0

    current = dict(db.conn.execute(
        "SELECT listing_id, strategy FROM current_scores WHERE listing_id IN (%s)" % ",".join("?" * 10), sampled))
    assert set(current.values()) == {"claude"}
    assert not (instance / "calibration" / "ada.json").exists()


def test_recalibrating_keeps_the_persons_own_examples(db, fake, ids, instance):
    mine = Example(title="My dream job", score=97, reasoning="exactly my stack", source="human", listing_id=None)
    profile_mod.save(profile_mod.Profile(cv_name="ada", examples=[mine]), instance / "scoring_profiles")
    calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=4)
    prof = profile_mod.load(instance / "scoring_profiles" / "ada.json")
    assert [e.title for e in prof.examples if e.source == "human"] == ["My dream job"]
    assert len(prof.examples) == 5


def test_batch_calibration_is_half_price_and_polls_until_ended(db, fake, ids, instance):
    fake.batch_polls = 3
    polls = []
    result = calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=6, batch=True, poll_s=7,
                             sleep=polls.append)
    assert result["scored"] == 6 and result["batch"] is True
    assert polls == [7, 7]
    created = [r for r in fake.requests if r["method"] == "POST" and r["path"] == "/v1/messages/batches"]
    assert len(created) == 1 and len(created[0]["body"]["requests"]) == 6
    # Only the profile derivation went through the Messages API.
    assert len(fake.message_requests()) == 1
    for row in db.query("SELECT * FROM llm_calls WHERE listing_id IS NOT NULL"):
        full = ledger.cost(row["model"], ledger.Usage(row["prompt_tokens"], row["completion_tokens"],
                                                      row["cache_read_tokens"], row["cache_write_tokens"]),
                           ledger.DEFAULT_PRICES)
        assert row["cost_usd"] == pytest.approx(full * 0.5)
    assert len(profile_mod.load(instance / "scoring_profiles" / "ada.json").examples) == 6


class Interrupted(Exception):
    pass


def test_an_interrupted_batch_continues_with_the_saved_batch_id(db, fake, ids, instance):
    fake.batch_polls = 3

    def stop(_seconds):
        raise Interrupted

    with pytest.raises(Interrupted):
        calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=5, batch=True, sleep=stop)
    saved = json.loads((instance / "calibration" / "ada.json").read_text())
    assert saved["batch_id"].startswith("msgbatch_") and len(saved["listing_ids"]) == 5
    assert not (instance / "scoring_profiles" / "ada.json").exists()

    result = calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=5, batch=True,
                             sleep=lambda s: None)
    assert result["scored"] == 5
    assert len([r for r in fake.requests if r["path"] == "/v1/messages/batches"]) == 1
    assert len(derive_requests(fake)) == 1  # the profile was not derived (and paid for) twice
    assert not (instance / "calibration" / "ada.json").exists()


def test_a_direct_run_stopped_by_rate_limits_continues_where_it_stopped(db, fake, ids, instance):
    fake.script.extend([{}, {}, {}, {"status": 429, "headers": {"retry-after": "0"}}])  # derive + 2 scores, then 429
    with pytest.raises(calibration.CalibrationError, match="2 listings are scored and saved: run again"):
        calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=5)
    assert calibration.STATE.snapshot()["phase"] == "error"
    result = calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=5)
    assert result["scored"] == 5
    assert len(derive_requests(fake)) == 1
    assert len(score_requests(fake)) == 2 + 1 + 3


def test_a_changed_cv_starts_over(db, fake, ids, instance):
    fake.script.extend([{}, {"status": 429, "headers": {"retry-after": "0"}}])
    with pytest.raises(calibration.CalibrationError):
        calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=3)
    calibration.run(db, client_for(db, fake), CV + "\nAlso Rust.", "ada", instance, sample_n=3)
    assert len(derive_requests(fake)) == 2


def test_batch_requests_that_errored_are_left_out_and_recorded(db, fake, ids, instance):
    sampled = calibration.sample(db, 4)
    fake.batch_errors = {f"listing-{sampled[0]}": "overloaded_error"}
    result = calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=4, batch=True,
                             sleep=lambda s: None)
    assert result["scored"] == 3 and result["sampled"] == 4
    [row] = list(db.query("SELECT * FROM llm_calls WHERE status = 'error'"))
    assert row["listing_id"] == sampled[0] and "errored" in row["error"]
    assert result["agreement"]["valid_rate"] == 0.75


def test_an_unusable_derived_profile_saves_nothing(db, fake, ids, instance):
    fake.script.append({"tool_input": {"cv_summary": "too short", "criteria": []}})
    with pytest.raises(claude.InvalidOutput, match="record_profile"):
        calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=4)
    assert not (instance / "scoring_profiles").exists()
    assert [r["status"] for r in db.query("SELECT status FROM llm_calls")] == ["invalid"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cv_name": "../etc/passwd"}, "letters, digits"),
        ({"cv_text": "   "}, "the CV is empty"),
        ({"sample_n": 0}, "at least one listing"),
    ],
)
def test_bad_input_is_refused_before_any_call(db, fake, instance, kwargs, message):
    args = {"cv_text": CV, "cv_name": "ada", "sample_n": 4, **kwargs}
    with pytest.raises(calibration.CalibrationError, match=message):
        calibration.run(db, client_for(db, fake), args["cv_text"], args["cv_name"], instance, sample_n=args["sample_n"])
    assert fake.requests == []


def test_no_listings_yet_is_a_clear_error(db, fake, instance):
    with pytest.raises(calibration.CalibrationError, match="no listings are stored yet"):
        calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=4)


def test_over_budget_needs_an_explicit_go_ahead(db, fake, ids, instance):
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="rescore", status="ok", cost_usd=9.0))
    with pytest.raises(claude.OverBudget):
        calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=3)
    assert fake.requests == []
    result = calibration.run(db, client_for(db, fake), CV, "ada", instance, sample_n=3, ignore_budget=True)
    assert result["scored"] == 3


def test_cli_calibrate(app, runner, db, fake, ids, tmp_path, monkeypatch):
    if "calibrate" not in app.cli.commands:
        claude_cli.init_app(app)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    app.config["CLAUDE_ENV_FILE"] = str(tmp_path / "no.env")
    app.instance_path = str(tmp_path / "instance")
    cv = tmp_path / "ada.md"
    cv.write_text(CV, encoding="utf-8")
    result = runner.invoke(args=["calibrate", "--cv", str(cv), "--sample", "5"])
    assert result.exit_code == 0, result.output
    assert "profile saved:" in result.output and "ada.json" in result.output
    assert "Claude scored 5 of 5 sampled listings" in result.output
    assert "derived rules vs Claude: spearman" in result.output
    assert profile_mod.load(tmp_path / "instance" / "scoring_profiles" / "ada.json").cv_name == "ada"
    spend = runner.invoke(args=["spend"])
    assert spend.exit_code == 0 and "claude-haiku-4-5: 6 calls" in spend.output


def test_cli_without_a_key_says_how_to_set_one(app, runner, tmp_path, monkeypatch):
    if "calibrate" not in app.cli.commands:
        claude_cli.init_app(app)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    app.config["CLAUDE_ENV_FILE"] = str(tmp_path / "no.env")
    cv = tmp_path / "ada.md"
    cv.write_text(CV, encoding="utf-8")
    result = runner.invoke(args=["calibrate", "--cv", str(cv)])
    assert result.exit_code != 0 and "ANTHROPIC_API_KEY" in result.output
    result = runner.invoke(args=["escalate"])
    assert result.exit_code != 0 and "ANTHROPIC_API_KEY" in result.output
