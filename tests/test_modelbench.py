"""The model bench: rank math, fake engines through the provider registry, the real demo model, and the CLI."""

from __future__ import annotations

import json
import re
import pytest

import config as config_mod
import db as storage
import learning_cli
import learning_views
from fake_anthropic import store_recorded_listings
from scoring import modelbench, providers, queue
from scoring import profile as profile_mod
from scoring.profile import Example

BUNDLED_FILE = profile_mod.BUNDLED / "example.json"
# Claude's labels for five recorded listings: one per band and then some.
LABELS = {"AI Engineer": 10, "Research Engineer": 30, "Android Engineer III": 50, "Accounts Payable Lead": 70,
          "Senior System Software Engineer, NvSci": 90}


class FakeEngine(providers.Engine):
    """A scripted local model, registered like the real providers: its behaviour is named by `model`.

    oracle: answers each listing's label after 2 s; flat: always 50 after 0.5 s; broken: not JSON after 0.1 s.
    """

    provider = "fake"
    answers: dict[str, int] = {}

    def __init__(self, model: str) -> None:
        self.model = model
        self.is_demo = False
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: dict) -> "FakeEngine":
        return cls(settings.get("model") or "oracle")

    def complete(self, messages, *, json_schema=None, max_tokens=128, temperature=0.0, top_logprobs=0):
        self.calls += 1
        title = re.search(r"^Title: (.*)$", messages[-1]["content"], re.M).group(1)
        if self.model == "broken":
            text, latency = "I think it is fine", 100
        elif self.model == "flat":
            text, latency = json.dumps({"score": 50, "reasoning": "average", "evidence": title}), 500
        else:
            text, latency = json.dumps({"score": self.answers[title], "reasoning": "as labeled", "evidence": title}), 2000
        return providers.Completion(text=text, model=self.model, prompt_tokens=400, completion_tokens=20,
                                    latency_ms=latency)


@pytest.fixture
def fake_provider(monkeypatch):
    monkeypatch.setitem(providers.PROVIDERS, "fake", FakeEngine)
    return FakeEngine


@pytest.fixture
def labeled(db):
    ids = store_recorded_listings(db)
    prof = profile_mod.load(BUNDLED_FILE)
    queue.score_with_rules(db, list(ids.values()), prof)
    for title, score in LABELS.items():
        storage.save_score(db, ids[title], strategy="claude", provider="anthropic", model="claude-haiku-4-5",
                           profile_version=prof.version, score=score, reasoning="Claude", evidence=[], grounded=1)
    FakeEngine.answers = dict(LABELS)
    return ids


def row(**kw):
    base = {"n": 10, "spearman": 0.0, "mae": 0.0, "band_agreement": 0.0, "valid_rate": 1.0, "median_s": 1.0,
            "model": kw.get("model", "m"), "strategy": "fewshot"}
    return {**base, **kw}


def test_rank_weighs_quality_against_speed():
    a = row(model="a", spearman=0.8, mae=10, band_agreement=0.6, median_s=4.0)
    b = row(model="b", spearman=0.4, mae=20, band_agreement=0.5, valid_rate=0.5, median_s=1.0)
    c = row(model="c", n=0, spearman=None, mae=None, band_agreement=None, valid_rate=0.0, median_s=0.2)
    # a: quality 1.0 * (0.5*0.8 + 0.25*0.9 + 0.25*0.6) = 0.775, speed 1/4 -> 0.8*0.775 + 0.2*0.25 = 0.67
    # b: quality 0.5 * (0.5*0.4 + 0.25*0.8 + 0.25*0.5) = 0.2625, fastest -> 0.8*0.2625 + 0.2 = 0.41
    # c: no usable answer -> 0 (and its speed does not count as the fastest)
    ranked = modelbench.rank([c, b, a])
    assert [(r["model"], r["rank_score"]) for r in ranked] == [("a", 0.67), ("b", 0.41), ("c", 0.0)]
    assert (a["quality"], a["speed"], b["quality"], b["speed"]) == (0.775, 0.25, 0.2625, 1.0)
    # Speed first: 0.2*0.775 + 0.8*0.25 = 0.355 against 0.2*0.2625 + 0.8 = 0.8525.
    ranked = modelbench.rank([a, b], quality_weight=0.2, speed_weight=0.8)
    assert [(r["model"], r["rank_score"]) for r in ranked] == [("b", 0.8525), ("a", 0.355)]


def test_weights_and_model_lists_are_checked():
    assert modelbench.weights_from({}) == (0.8, 0.2)
    assert modelbench.weights_from({"bench_quality_weight": 1, "bench_speed_weight": 0}) == (1.0, 0.0)
    with pytest.raises(ValueError, match="bench_speed_weight must be a number >= 0"):
        modelbench.weights_from({"bench_speed_weight": "fast"})
    with pytest.raises(ValueError, match="cannot both be 0"):
        modelbench.weights_from({"bench_quality_weight": 0, "bench_speed_weight": 0})
    specs, problems = modelbench.configured_models({"models": [
        {"provider": "llamacpp", "model_path": "/m/qwen.gguf"},
        {"provider": "openai", "base_url": "http://localhost:11434/v1/", "model": "qwen2.5:1.5b"},
        {"provider": "nope"}, "qwen.gguf", {"base_url": "ftp://x"},
    ]})
    assert [s.ref for s in specs] == ["/m/qwen.gguf", "http://localhost:11434/v1#qwen2.5:1.5b"]
    assert len(problems) == 3 and "unknown provider 'nope'" in problems[0]
    assert modelbench.spec_from_arg("http://127.0.0.1:8080/v1#smol") == modelbench.ModelSpec(
        "openai", base_url="http://127.0.0.1:8080/v1", model="smol")
    assert modelbench.spec_from_arg("models/x.gguf").provider == "llamacpp"
    # Nothing listed: the one configured engine.
    assert modelbench.configured_models({"local_provider": "openai", "base_url": "http://h/v1"})[0][0].ref == "http://h/v1"


def test_bench_with_fake_engines_ranks_stores_and_feeds_auto(db, labeled, fake_provider):
    prof = profile_mod.load(BUNDLED_FILE)
    settings = {"local_model": "auto", "models": [{"provider": "fake", "model": m} for m in ("broken", "flat", "oracle")]}
    out = modelbench.run(db, prof, settings, strategies=("fewshot",))
    assert (out["label_source"], out["n"], out["errors"]) == ("claude", 5, [])
    by = {r["model"]: r for r in out["rows"]}
    assert [r["model"] for r in out["rows"]] == ["oracle", "flat", "broken"]
    o = by["oracle"]
    assert (o["n"], o["mae"], o["spearman"], o["band_agreement"], o["valid_rate"], o["grounded_rate"]) == \
        (5, 0.0, 1.0, 1.0, 1.0, 1.0)
    # 400 prompt and 20 output tokens per 2 s call.
    assert (o["median_s"], o["prompt_tps"], o["gen_tps"]) == (2.0, 200.0, 10.0)
    # Quality 1, speed 0.5/2 -> 0.8 + 0.2*0.25.
    assert o["rank_score"] == 0.85
    f = by["flat"]
    # Always 50 against 10/30/50/70/90: MAE 24, no rank information, only the 50 in its band.
    assert (f["mae"], f["spearman"], f["band_agreement"], f["median_s"]) == (24.0, 0.0, 0.2, 0.5)
    assert f["rank_score"] == round(0.8 * (0.25 * 0.76 + 0.25 * 0.2) + 0.2, 4)
    b = by["broken"]
    assert (b["n"], b["valid_rate"], b["rank_score"], b["median_s"]) == (0, 0.0, 0.0, 0.2)  # tried twice per listing

    stored = modelbench.latest_run(db)
    assert [(r["model"], r["model_ref"], r["rank_score"], r["label_source"]) for r in stored] == [
        ("oracle", "#oracle", 0.85, "claude"), ("flat", "#flat", f["rank_score"], "claude"),
        ("broken", "#broken", 0.0, "claude")]
    assert modelbench.best_model_settings(db, settings)["local_provider"] == "fake"
    assert modelbench.best_model_settings(db, settings)["model"] == "oracle"
    assert modelbench.best_model_settings(db, {"model_path": "/m/x.gguf"}) == {"model_path": "/m/x.gguf"}
    # The engine `auto` will use gets its evaluation recorded on the person's label set.
    ev = next(db.query("SELECT * FROM strategy_evals ORDER BY id DESC LIMIT 1"))
    assert (ev["strategy"], ev["model"], ev["label_set"], ev["n"], ev["spearman"]) == ("fewshot", "oracle", "person", 5, 1.0)
    assert providers.make_engine(modelbench.best_model_settings(db, settings)).model == "oracle"


def test_listings_shown_as_examples_are_left_out_when_enough_remain(db, labeled, fake_provider):
    prof = profile_mod.load(BUNDLED_FILE)
    extra = {"Quereinsteiger: Redaktion, Marketing, Vertrieb (m/w/d)": 20, "Account Executive - Italy": 5}
    for title, score in extra.items():
        storage.save_score(db, labeled[title], strategy="claude", provider="anthropic", model="h",
                           profile_version=prof.version, score=score, reasoning="Claude", evidence=[], grounded=1)
    prof.examples = [Example(title=t, score=s, source="claude", listing_id=labeled[t]) for t, s in extra.items()]
    items, source = modelbench.bench_items(db, prof)
    assert source == "claude"
    assert sorted(i.listing_id for i in items) == sorted(labeled[t] for t in LABELS)
    # With too few left, nothing is left out.
    prof.examples = [Example(title=t, score=LABELS[t], source="claude", listing_id=labeled[t]) for t in LABELS]
    items, _ = modelbench.bench_items(db, prof)
    assert len(items) == 7


def test_few_labels_fall_back_to_the_dev_set_and_limit_spreads(db, fake_provider):
    prof = profile_mod.load(BUNDLED_FILE)
    items, source = modelbench.bench_items(db, prof)
    assert source == "dev" and len(items) == 57
    picked = modelbench.spread(items, 3)
    assert len(picked) == 3 and picked[0].label < picked[1].label < picked[2].label


def test_an_unreachable_server_is_reported_not_raised(db, labeled):
    prof = profile_mod.load(BUNDLED_FILE)
    dead = modelbench.ModelSpec("openai", base_url="http://127.0.0.1:9/v1", model="x")
    out = modelbench.run(db, prof, {}, [dead], ("fewshot",))
    assert out["rows"] == []
    assert "cannot reach the server" in out["errors"][0]


def test_unknown_strategies_are_refused(db, labeled):
    with pytest.raises(ValueError, match="unknown strategy 'rules'"):
        modelbench.run(db, profile_mod.load(BUNDLED_FILE), {}, [], ("rules",))


# ---------------------------------------------------------------- the real demo model, through the CLI


@pytest.fixture
def cli_app(app, tmp_path):
    app.instance_path = str(tmp_path / "instance")
    if "bench-models" not in app.cli.commands:
        learning_cli.init_app(app)
    if "learning" not in app.blueprints:
        learning_views.init_app(app)
    return app


@pytest.mark.engine
def test_bench_models_cli_with_the_demo_model(cli_app, runner, client, db, demo_model):
    result = runner.invoke(args=["bench-models", "--models", demo_model, "--strategies", "fewshot,facts",
                                 "--limit", "2"])
    assert result.exit_code == 0, result.output
    rows = modelbench.latest_run(db)
    assert sorted(r["strategy"] for r in rows) == ["facts", "fewshot"]
    for r in rows:
        assert r["model"] == "SmolLM2-135M-Instruct.Q4_1" and r["provider"] == "llamacpp"
        assert r["label_source"] == "dev" and r["model_ref"] == demo_model
        assert 0 <= r["valid_rate"] <= 1 and r["median_s"] > 0
        # A real engine reports real token counts: the prompt is read far faster than the answer is written.
        assert r["prompt_tps"] > r["gen_tps"] > 0
    assert "run " in result.output and "SmolLM2-135M-Instruct.Q4_1" in result.output

    html = client.get("/models").get_data(as_text=True)
    assert "SmolLM2-135M-Instruct.Q4_1" in html and html.count("<tr><td>") == 2


def test_bench_models_cli_reports_a_bad_server(cli_app, runner, db, labeled):
    result = runner.invoke(args=["bench-models", "--models", "http://127.0.0.1:9/v1#x", "--strategies", "fewshot"])
    assert result.exit_code != 0
    assert "cannot reach the server" in result.output and "no model could be benched" in result.output
    result = runner.invoke(args=["bench-models", "--strategies", "rules"])
    assert result.exit_code != 0 and "unknown strategy 'rules'" in result.output


def test_models_page_names_the_auto_choice(cli_app, client, db, labeled, fake_provider):
    settings = {"local_model": "auto", "models": [{"provider": "fake", "model": "oracle"}]}
    modelbench.run(db, profile_mod.load(BUNDLED_FILE), settings, strategies=("fewshot",))
    cli_app.config["JOBSIFT"] = config_mod.Config(scoring=settings)
    html = client.get("/models").get_data(as_text=True)
    assert 'local_model = "auto"' in html and "<strong>oracle</strong>" in html
