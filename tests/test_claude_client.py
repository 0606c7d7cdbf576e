"""The Claude client against a local fake of the API, through the real SDK: bodies, caching, costs, failures, keys."""

from __future__ import annotations

import logging
import time

import pytest

import db as storage
from fake_anthropic import FakeAnthropic, store_recorded_listings
from scoring import claude, ledger, prompts
from scoring import profile as profile_mod
from scoring.queue import listing_views

KEY = "sk-ant-test-7f3c9e1d5b2a"


@pytest.fixture
def fake():
    f = FakeAnthropic(min_cache_tokens={}).start()
    yield f
    f.stop()


@pytest.fixture
def listings(db):
    ids = store_recorded_listings(db)
    return ids, listing_views(db, list(ids.values()))


@pytest.fixture
def example_profile():
    return profile_mod.load(profile_mod.BUNDLED / "example.json")


def make_client(db, fake, **scoring):
    settings = claude.settings_from({"claude_max_retries": 0, "claude_timeout_s": 5, **scoring})
    return claude.ClaudeClient(settings, KEY, fake.base_url, lambda call: ledger.record(db, call))


def calls(db) -> list[dict]:
    return list(db.query("SELECT * FROM llm_calls ORDER BY id"))


def test_score_request_has_cached_prefix_forced_tool_and_listing_last(db, fake, listings, example_profile):
    ids, views = listings
    lid = ids["AI Engineer"]
    client = make_client(db, fake)
    result = client.score(views[lid], example_profile, listing_id=lid)

    [body] = fake.message_requests()
    assert body["model"] == "claude-haiku-4-5"
    assert body["tool_choice"] == {"type": "tool", "name": "record_score"}
    assert body["tools"] == [claude.SCORE_TOOL]
    schema = body["tools"][0]["input_schema"]
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 0, "maximum": 100,
                                             "description": "Fit 0-100 per the rubric."}
    assert schema["required"] == ["score", "reasoning", "evidence"]
    system = body["system"]
    assert [b.get("cache_control") for b in system] == [None, {"type": "ephemeral"}]
    assert prompts.RUBRIC in system[0]["text"]
    assert example_profile.cv_summary in system[1]["text"]
    # Nothing about the listing in the cached prefix; all of it in the user turn.
    assert "GitLab" not in system[0]["text"] + system[1]["text"]
    assert body["messages"] == [{"role": "user", "content": prompts.listing_block(views[lid])}]
    headers = fake.requests[0]["headers"]
    # SDK 2.x sends the API key as a bearer token.
    assert headers["authorization"] == f"Bearer {KEY}"
    assert "anthropic-version" in headers

    assert result.strategy == "claude" and result.provider == "anthropic" and result.model == "claude-haiku-4-5"
    assert result.evidence == ["AI Engineer"] and result.grounded is True
    assert 20 <= result.score <= 89


def test_second_call_reads_the_cached_prefix_and_costs_are_priced_per_token_kind(db, fake, listings, example_profile):
    ids, views = listings
    client = make_client(db, fake)
    client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    client.score(views[ids["Research Engineer"]], example_profile, listing_id=ids["Research Engineer"])

    first, second = calls(db)
    assert first["cache_write_tokens"] > 500 and first["cache_read_tokens"] == 0
    assert second["cache_read_tokens"] == first["cache_write_tokens"] and second["cache_write_tokens"] == 0
    for row in (first, second):
        assert row["provider"] == "anthropic" and row["purpose"] == "escalate" and row["status"] == "ok"
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["latency_ms"] >= 0
        # Haiku 4.5: $1 input, $5 output, $1.25 cache write, $0.10 cache read per million tokens.
        expected = (row["prompt_tokens"] * 1.0 + row["completion_tokens"] * 5.0
                    + row["cache_write_tokens"] * 1.25 + row["cache_read_tokens"] * 0.10) / 1e6
        assert row["cost_usd"] == pytest.approx(expected)
    assert second["cost_usd"] < first["cost_usd"] / 3
    assert [r["listing_id"] for r in (first, second)] == [ids["AI Engineer"], ids["Research Engineer"]]


def test_configured_prices_override_the_defaults(db, fake, listings, example_profile):
    ids, views = listings
    client = make_client(db, fake, prices={"claude-haiku-4-5": {"input": 10.0}})
    client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    [row] = calls(db)
    # Cache prices follow a changed input price (1.25x for writes) unless given too.
    expected = (row["prompt_tokens"] * 10.0 + row["completion_tokens"] * 5.0 + row["cache_write_tokens"] * 12.5) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)


def test_a_prefix_below_the_models_minimum_is_not_cached_and_is_logged_once(db, listings, example_profile, caplog,
                                                                           monkeypatch):
    monkeypatch.setattr(claude, "_noted_prefixes", set())  # "once" is per process
    fake = FakeAnthropic().start()  # the real minimums: 4,096 tokens on Haiku 4.5
    try:
        ids, views = listings
        client = make_client(db, fake)
        with caplog.at_level(logging.INFO, logger="scoring.claude"):
            for title in ("AI Engineer", "Research Engineer", "Android Engineer III"):
                client.score(views[ids[title]], example_profile, listing_id=ids[title])
        notes = [r.getMessage() for r in caplog.records if "caching minimum" in r.getMessage()]
        assert len(notes) == 1
        assert "claude-haiku-4-5's 4096-token caching minimum" in notes[0]
        assert all(r["cache_read_tokens"] == 0 and r["cache_write_tokens"] == 0 for r in calls(db))
    finally:
        fake.stop()


def test_rate_limit_is_retried_after_the_retry_after_delay(db, fake, listings, example_profile):
    ids, views = listings
    fake.script.append({"status": 429, "headers": {"retry-after": "0.3"}})
    client = make_client(db, fake, claude_max_retries=1)
    result = client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    assert result.score >= 0
    first, second = [r for r in fake.requests if r["path"] == "/v1/messages"]
    assert second["at"] - first["at"] >= 0.3
    # One logical call, one ledger row.
    assert [r["status"] for r in calls(db)] == ["ok"]


def test_rate_limit_that_outlasts_the_retries_is_transient_and_recorded(db, fake, listings, example_profile):
    ids, views = listings
    fake.script.extend([{"status": 429, "headers": {"retry-after": "0"}}] * 2)
    client = make_client(db, fake, claude_max_retries=1)
    with pytest.raises(claude.Transient, match="rate limiting"):
        client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    assert len(fake.message_requests()) == 2
    [row] = calls(db)
    assert row["status"] == "rate_limited" and row["cost_usd"] == 0 and "429" in row["error"]
    assert row["listing_id"] == ids["AI Engineer"]


def test_server_error_is_transient(db, fake, listings, example_profile):
    ids, views = listings
    fake.script.extend([{"status": 500, "headers": {"retry-after-ms": "10"}}] * 3)
    client = make_client(db, fake, claude_max_retries=2)
    with pytest.raises(claude.Transient, match="HTTP 500"):
        client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    assert len(fake.message_requests()) == 3
    assert [r["status"] for r in calls(db)] == ["error"]


def test_a_slow_answer_times_out_at_the_configured_timeout(db, fake, listings, example_profile):
    ids, views = listings
    fake.script.append({"delay": 3.0})
    client = make_client(db, fake, claude_timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(claude.Transient, match="did not answer within 0.5 s"):
        client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    assert time.monotonic() - t0 < 2.5
    [row] = calls(db)
    assert row["status"] == "timeout"


@pytest.mark.parametrize(
    "tool_input, problem",
    [
        ({"score": "high", "reasoning": "x", "evidence": []}, "score"),
        ({"score": 150, "reasoning": "x", "evidence": []}, "score"),
        ({"score": 70, "evidence": []}, "reasoning"),
        ({"score": 70, "reasoning": "x", "evidence": "not a list"}, "evidence"),
        ("just text", "input"),
    ],
)
def test_malformed_tool_input_is_rejected_and_recorded_never_stored(db, fake, listings, example_profile, tool_input,
                                                                     problem):
    ids, views = listings
    fake.script.append({"tool_input": tool_input})
    client = make_client(db, fake)
    with pytest.raises(claude.InvalidOutput, match=problem):
        client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    [row] = calls(db)
    assert row["status"] == "invalid" and problem in row["error"]
    # The tokens were paid for even though the answer was unusable.
    assert row["cost_usd"] > 0
    assert db.conn.execute("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_an_answer_cut_off_at_max_tokens_is_invalid(db, fake, listings, example_profile):
    ids, views = listings
    fake.script.append({"stop_reason": "max_tokens"})
    with pytest.raises(claude.InvalidOutput, match="max_tokens"):
        make_client(db, fake).score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])


def test_evidence_not_in_the_listing_is_marked_ungrounded(db, fake, listings, example_profile):
    ids, views = listings
    fake.script.append({"tool_input": {"score": 80, "reasoning": "fits", "evidence": ["AI Engineer",
                                                                                      "ten years of Rust"]}})
    r = make_client(db, fake).score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    assert r.grounded is False
    assert r.detail["ungrounded_quotes"] == ["ten years of Rust"]


def test_assessment_uses_the_rescore_model_and_returns_strengths_gaps_recommendations(db, fake, listings,
                                                                                      example_profile):
    ids, views = listings
    r = make_client(db, fake).assess(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    [body] = fake.message_requests()
    assert body["model"] == "claude-sonnet-4-6"
    assert body["tool_choice"] == {"type": "tool", "name": "record_assessment"}
    assert set(body["tools"][0]["input_schema"]["required"]) >= {"strengths", "gaps", "recommendations"}
    assert r.detail["strengths"] and r.detail["gaps"] and r.detail["recommendations"]
    [row] = calls(db)
    assert row["purpose"] == "rescore" and row["model"] == "claude-sonnet-4-6"
    # Sonnet 4.6: $3 input, $15 output, $3.75 cache write per million tokens.
    assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] * 3 + row["completion_tokens"] * 15
                                             + row["cache_write_tokens"] * 3.75) / 1e6)


def test_no_key_means_no_client_and_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    env_file = tmp_path / ".env"
    assert claude.resolve_key(env_file) is None
    with pytest.raises(claude.NoKey, match="ANTHROPIC_API_KEY"):
        claude.client_for(claude.ClaudeSettings(), None, env_file)
    with pytest.raises(claude.NoKey):
        claude.ClaudeClient(claude.ClaudeSettings(), "")


def test_key_and_base_url_come_from_dotenv_unless_the_environment_sets_them(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("ANTHROPIC_API_KEY=sk-from-file\nANTHROPIC_BASE_URL=http://127.0.0.1:9/\n")
    assert claude.resolve_key(env_file) == "sk-from-file"
    assert claude.resolve_base_url(env_file) == "http://127.0.0.1:9/"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    assert claude.resolve_key(env_file) == "sk-from-env"
    import os

    # Reading .env never writes into the environment.
    assert "ANTHROPIC_BASE_URL" not in os.environ


def test_the_key_never_reaches_errors_the_database_or_logs(db, fake, listings, example_profile, caplog):
    ids, views = listings
    # An API that echoes the key back in its error message.
    fake.script.append({"status": 401, "message": f"invalid x-api-key {KEY}"})
    fake.script.append({"status": 400, "message": f"bad request for {KEY}"})
    client = make_client(db, fake)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(claude.Rejected) as rejected:
        client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    with pytest.raises(claude.Failed) as failed:
        client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    client.score(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    assert KEY not in str(rejected.value) and KEY not in str(failed.value)
    assert "[api key]" in str(failed.value)
    assert KEY not in repr(client)
    dump = "\n".join(db.conn.iterdump())
    assert KEY not in dump
    assert "rejected the key (HTTP 401)" in dump
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)


def test_settings_fall_back_to_defaults_and_say_why(caplog):
    s = claude.settings_from({
        "claude_timeout_s": "soon", "monthly_budget_usd": -3, "uncertainty_band": [90, 10],
        "claude_model": "claude-haiku-4-5-20251001", "mode": "hybrid", "prices": {"my-model": "cheap"},
    })
    assert s.timeout_s == 60.0 and s.monthly_budget_usd == 5.0 and s.uncertainty_band == (65, 85)
    assert s.model == "claude-haiku-4-5-20251001" and s.mode == "hybrid"
    assert len(s.problems) == 4
    assert any("claude_timeout_s" in p for p in s.problems)
    # A dated model id is priced like its family.
    assert ledger.price_for(s.model, s.prices) == ledger.DEFAULT_PRICES["claude-haiku-4-5"]


def test_price_rows_override_single_prices_and_derive_cache_prices_for_new_models():
    s = claude.settings_from({"prices": {
        "claude-haiku-4-5": {"output": 4.0},
        "claude-new-1": {"input": 2.0, "output": 10.0},
        "claude-free": {"input": "zero", "output": 1.0},
    }})
    assert s.prices["claude-haiku-4-5"] == {"input": 1.0, "output": 4.0, "cache_write": 1.25, "cache_read": 0.10}
    assert s.prices["claude-new-1"] == {"input": 2.0, "output": 10.0, "cache_write": 2.5, "cache_read": 0.2}
    assert "claude-free" not in s.prices
    assert s.problems == ("[scoring.prices.\"claude-free\"] input = 'zero' is not usable; using 0.0",)


def test_an_unknown_model_is_priced_at_the_dearest_known_price(caplog):
    with caplog.at_level(logging.WARNING, logger="scoring.ledger"):
        p = ledger.price_for("claude-unknown-9", ledger.DEFAULT_PRICES)
    assert p == ledger.DEFAULT_PRICES["claude-sonnet-4-6"]
    assert "claude-unknown-9" in caplog.text


def test_batch_results_are_priced_at_half(db, fake, listings, example_profile):
    ids, views = listings
    client = make_client(db, fake)
    lid = ids["AI Engineer"]
    batch_id = client.create_batch([client.batch_request("listing-a", views[lid], example_profile)])
    assert client.batch_progress(batch_id)["status"] == "in_progress"
    assert client.batch_progress(batch_id)["status"] == "ended"
    results = client.batch_scores(batch_id, {"listing-a": (lid, views[lid])}, example_profile)
    assert results["listing-a"].evidence == ["AI Engineer"]
    [row] = calls(db)
    full = ledger.cost("claude-haiku-4-5", ledger.Usage(row["prompt_tokens"], row["completion_tokens"],
                                                       row["cache_read_tokens"], row["cache_write_tokens"]),
                       ledger.DEFAULT_PRICES)
    assert row["cost_usd"] == pytest.approx(full / 2)
    body = next(r["body"] for r in fake.requests if r["path"] == "/v1/messages/batches")
    params = body["requests"][0]["params"]
    assert params["tool_choice"] == {"type": "tool", "name": "record_score"}
    assert params["system"][-1]["cache_control"] == {"type": "ephemeral"}


def test_month_spend_and_budget(db):
    storage_rows = [("claude-haiku-4-5", 1.5), ("claude-sonnet-4-6", 2.0)]
    for model, cost in storage_rows:
        ledger.record(db, ledger.CallRecord(model=model, purpose="escalate", status="ok", cost_usd=cost))
    assert ledger.month_spend(db) == pytest.approx(3.5)
    assert not ledger.over_budget(db, 5.0)
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="rescore", status="ok", cost_usd=1.5))
    assert ledger.over_budget(db, 5.0)
    # Last month's calls do not count.
    with storage.write(db):
        db.conn.execute("UPDATE llm_calls SET created_at = '2000-01-15T10:00:00+00:00'")
    assert ledger.month_spend(db) == 0


def test_models_that_refuse_a_forced_tool_are_asked_to_use_it_and_still_validated(db, fake, listings,
                                                                                   example_profile):
    ids, views = listings
    client = make_client(db, fake, claude_rescore_model="claude-sonnet-5-5",
                         prices={"claude-sonnet-5-5": {"input": 2.0, "output": 10.0, "cache_write": 2.5,
                                                       "cache_read": 0.1}})
    r = client.assess(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
    [body] = fake.message_requests()
    assert body["tool_choice"] == {"type": "auto"}
    assert r.detail["strengths"]
    fake.script.append({"tool_input": {"score": 50}})
    with pytest.raises(claude.InvalidOutput):
        client.assess(views[ids["AI Engineer"]], example_profile, listing_id=ids["AI Engineer"])
