"""Strategies on edge cases of model output, with a scripted engine (real engines: test_scoring_engine.py)."""

import json
import math

import pytest

from scoring.profile import Example, Profile, load, BUNDLED
from scoring.strategies import (
    FactsStrategy, FewshotStrategy, OutputError, RulesStrategy, digit_distribution, parse_json, view,
)


class ScriptedEngine:
    """Answers from a list, recording the messages it was sent."""

    provider = "scripted"
    model = "scripted-1"
    is_demo = False

    def __init__(self, answers, top_logprobs=None):
        self.answers = list(answers)
        self.sent = []
        self.top = top_logprobs

    def complete(self, messages, *, json_schema=None, max_tokens=128, temperature=0.0, top_logprobs=0):
        from types import SimpleNamespace

        self.sent.append((messages, json_schema, top_logprobs))
        return SimpleNamespace(text=self.answers.pop(0), model=self.model, prompt_tokens=100, completion_tokens=20,
                               latency_ms=5, top_logprobs=self.top if top_logprobs else None, cached_tokens=None)


LISTING = {
    "title": "Senior Backend Engineer (Python)",
    "company": "Acme",
    "location": "Remote, Europe",
    "description_html": "<p>We build <b>ML platform</b> services in Python and Go on Kubernetes.</p>",
}
FLAGS = {"location": ("loc:remote", "Remote, Europe"), "focus": ("focus:priority", "title: Backend")}


@pytest.fixture
def profile():
    p = load(BUNDLED / "example.json")
    p.examples = [Example(title="Staff ML Platform Engineer", company="X", location="Remote EU", score=92,
                          reasoning="ML platform, senior, remote EU")]
    return p


def test_rules_reasoning_quotes_matches(profile):
    r = RulesStrategy(profile).score(view(LISTING, FLAGS))
    assert r.score >= 85
    assert "Backend" in r.reasoning and "location remote" in r.reasoning
    assert r.grounded and r.evidence


def test_rules_sinks_non_tech_overseas(profile):
    v = view({"title": "Sales Representative", "location": "Chicago, IL", "description_html": "Sell robots"},
             {"location": ("loc:overseas-onsite", "Chicago, IL"), "focus": ("focus:non-tech", "title: Sales")})
    assert RulesStrategy(profile).score(v).score <= 10


def test_fewshot_valid_answer_grounded(profile):
    eng = ScriptedEngine([json.dumps({"score": 88, "reasoning": "fits", "evidence": "ML platform"})])
    r = FewshotStrategy(profile, eng).score(view(LISTING, FLAGS))
    assert (r.score, r.grounded, r.strategy, r.model) == (88, True, "fewshot", "scripted-1")
    messages, schema, _ = eng.sent[0]
    assert list(schema["properties"])[0] == "score"
    # The listing is last; the examples and profile are in the stable prefix.
    assert "Staff ML Platform Engineer" in messages[0]["content"]
    assert "Senior Backend Engineer" in messages[-1]["content"]
    assert "Senior Backend Engineer" not in messages[0]["content"]


def test_prefix_is_identical_across_listings(profile):
    eng = ScriptedEngine([json.dumps({"score": 1, "reasoning": "", "evidence": ""})] * 2)
    s = FewshotStrategy(profile, eng)
    s.score(view(LISTING, FLAGS))
    s.score(view({**LISTING, "title": "Other"}, FLAGS))
    assert eng.sent[0][0][0] == eng.sent[1][0][0]


def test_fewshot_ungrounded_evidence_is_marked(profile):
    eng = ScriptedEngine([json.dumps({"score": 90, "reasoning": "x", "evidence": "ten years of Haskell"})])
    assert FewshotStrategy(profile, eng).score(view(LISTING, FLAGS)).grounded is False


def test_malformed_output_retried_once_then_error(profile):
    eng = ScriptedEngine(["not json", json.dumps({"score": 150, "reasoning": "x", "evidence": "Python"})])
    r = FewshotStrategy(profile, eng).score(view(LISTING, FLAGS))
    assert r.score == 100  # clamped
    assert r.prompt_tokens == 200  # both attempts accounted
    eng = ScriptedEngine(["{", '{"reasoning": "no score"}'])
    with pytest.raises(OutputError, match="scripted-1"):
        FewshotStrategy(profile, eng).score(view(LISTING, FLAGS))


def test_digit_scale_expected_value_from_logprobs(profile):
    top = [{'{"': -0.01}, {"score": -0.01}, {'":': -0.01},
           {"8": math.log(0.5), "6": math.log(0.25), "x": math.log(0.2), "9": math.log(0.05)}]
    eng = ScriptedEngine([json.dumps({"score": 8, "reasoning": "x", "evidence": "Python"})], top_logprobs=top)
    r = FewshotStrategy(profile, eng, use_logprobs=True).score(view(LISTING, FLAGS))
    dist = digit_distribution(top)
    assert set(dist) == {8, 6, 9} and sum(dist.values()) == pytest.approx(1.0)
    expected = (8 * 0.5 + 6 * 0.25 + 9 * 0.05) / 0.8 * 100 / 9
    assert r.score == round(expected)
    assert r.detail["spread"] > 0
    assert eng.sent[0][2] == 5  # logprobs asked for only in this mode


def test_facts_score_computed_from_facts(profile):
    answer = {"role_family": "backend", "role_quote": "Senior Backend Engineer", "seniority": "senior",
              "seniority_quote": "Senior", "work_mode": "remote", "work_mode_quote": "Remote",
              "allowed_regions": "Europe", "stack": ["Python", "Go", "Kubernetes"]}
    eng = ScriptedEngine([json.dumps(answer)])
    r = FactsStrategy(profile, eng).score(view(LISTING, FLAGS))
    c = r.detail["contributions"]
    assert c["family:backend"] == profile.family_weights["backend"]
    assert c["seniority:senior"] == profile.seniority_weights["senior"]
    assert "stack:Python" in c
    assert r.grounded and r.score > 80
    answer["role_family"] = "sales_marketing"
    r2 = FactsStrategy(profile, ScriptedEngine([json.dumps(answer)])).score(view(LISTING, FLAGS))
    assert r2.score < r.score - 40


def test_parse_json_tolerates_prose_but_not_garbage():
    from scoring.strategies import FewshotAnswer

    assert parse_json('Sure! {"score": 5, "reasoning": "r", "evidence": "e"} done', FewshotAnswer).score == 5
    with pytest.raises(OutputError):
        parse_json("", FewshotAnswer)
    with pytest.raises(OutputError):
        parse_json('{"score": "high"}', FewshotAnswer)
