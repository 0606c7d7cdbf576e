"""Strategies on a real llama.cpp engine (the tiny demo model), in-process and through a real server.

The demo model's judgments are not meaningful; these tests check the plumbing a real
model goes through: constrained JSON, validation, grounding, provenance, fallbacks.
"""

import pytest

import db as storage
from scoring import queue
from scoring.evaluate import DEV_PERSON, dev_set, listing_view
from scoring.profile import BUNDLED, Example, load
from scoring.strategies import FactsStrategy, FewshotStrategy
from scraper.base import Listing

import config as config_mod

pytestmark = pytest.mark.engine

CFG = config_mod.Config(person=DEV_PERSON)


@pytest.fixture(scope="module")
def profile():
    p = load(BUNDLED / "example.json")
    p.examples = [
        Example(title="Staff ML Platform Engineer", company="Acme", location="Remote, EU", score=92,
                reasoning="ML platform IC, remote EU"),
        Example(title="Account Executive", company="Beta", location="New York", score=2, reasoning="sales, US"),
    ]
    return p


@pytest.fixture(scope="module")
def two_listings():
    labeled = dev_set()
    return [listing_view(it.listing, CFG) for it in labeled[:2]]


def _check(result, engine, strategy):
    assert 0 <= result.score <= 100
    assert result.strategy == strategy
    assert result.provider == engine.provider and result.model == engine.model
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert isinstance(result.grounded, bool)


def test_fewshot_in_process(llamacpp_engine, profile, two_listings):
    s = FewshotStrategy(profile, llamacpp_engine)
    for v in two_listings:
        _check(s.score(v), llamacpp_engine, "fewshot")


def test_fewshot_logprobs_in_process(llamacpp_engine, profile, two_listings):
    r = FewshotStrategy(profile, llamacpp_engine, use_logprobs=True).score(two_listings[0])
    _check(r, llamacpp_engine, "fewshot")
    # The expected value over the score digits comes with its spread.
    assert "digit_distribution" in r.detail and r.detail["spread"] >= 0
    assert abs(sum(r.detail["digit_distribution"].values()) - 1) < 0.01


def test_facts_in_process(llamacpp_engine, profile, two_listings):
    r = FactsStrategy(profile, llamacpp_engine).score(two_listings[1])
    _check(r, llamacpp_engine, "facts")
    facts = r.detail["facts"]
    from scoring.prompts import ROLE_FAMILIES, SENIORITY, WORK_MODES

    assert facts["role_family"] in ROLE_FAMILIES
    assert facts["seniority"] in SENIORITY and facts["work_mode"] in WORK_MODES
    assert len(facts["stack"]) <= 5


def test_fewshot_and_facts_through_server(openai_engine, profile, two_listings):
    _check(FewshotStrategy(profile, openai_engine).score(two_listings[0]), openai_engine, "fewshot")
    _check(FactsStrategy(profile, openai_engine).score(two_listings[0]), openai_engine, "facts")


def _fill(db, n):
    items = [Listing(source="t", source_id=str(i), title=f"Senior Python Engineer {i}", company="Acme",
                     location="Remote, Europe", description_html="<p>Python, Kubernetes, ML platform.</p>")
             for i in range(n)]
    return storage.upsert_listings(db, items)["new"]


def test_server_killed_mid_run_falls_back_to_rules_and_recovers(tmp_path, demo_model, start_llama_server, profile):
    from scoring.providers import OpenAIEngine

    db = storage.connect(tmp_path / "jobs.db")
    ids = _fill(db, 4)
    state = queue.QueueState()
    with start_llama_server(demo_model) as server:
        engine = OpenAIEngine(base_url=server.base_url, timeout=240)

        def kill_after_first(i, n, result):
            if i == 1:
                server.stop()

        out = queue.run(db, profile, "fewshot", lambda: engine, progress=kill_after_first, state=state)
    assert out["started"] and out["fallbacks"] >= 1
    assert "EngineError" in state.last_error
    rows = {r["listing_id"]: r for r in db.query(
        "SELECT cs.listing_id, s.strategy, s.detail FROM current_scores cs JOIN scores s ON s.id = cs.score_id")}
    assert set(rows) == set(ids)  # nothing lost: every listing has a score
    assert [r["strategy"] for r in rows.values()].count("fewshot") == 1
    fallbacks = [r for r in rows.values() if r["strategy"] == "rules"]
    assert fallbacks and all("fallback" in r["detail"] for r in fallbacks)
    # The fallbacks are still pending for the model ...
    assert len(queue.pending(db, "fewshot", profile)) == 3
    # ... and a later run with the engine back replaces them.
    with start_llama_server(demo_model) as server:
        engine = OpenAIEngine(base_url=server.base_url, timeout=240)
        state2 = queue.QueueState()
        out = queue.run(db, profile, "fewshot", lambda: engine, state=state2)
    assert out["scored"] == 3 and out["fallbacks"] == 0
    assert queue.pending(db, "fewshot", profile) == []
    db.conn.close()


def test_unreachable_engine_gives_rules_scores_and_says_so(tmp_path, profile):
    from scoring.providers import OpenAIEngine

    db = storage.connect(tmp_path / "jobs.db")
    _fill(db, 2)
    state = queue.QueueState()
    engine = OpenAIEngine(base_url="http://127.0.0.1:9/v1", model="m", timeout=2)
    out = queue.run(db, profile, "facts", lambda: engine, state=state)
    assert out["fallbacks"] == 2 and state.last_error
    strategies = [r[0] for r in db.conn.execute(
        "SELECT s.strategy FROM current_scores cs JOIN scores s ON s.id = cs.score_id")]
    assert strategies == ["rules", "rules"]
    db.conn.close()
