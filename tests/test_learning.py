"""The person's overrides teach the scorer: examples, refit, version bump, stale re-scoring, and the status partial."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

import db as storage
import learning_views
import search
from fake_anthropic import store_recorded_listings
from scoring import learning, queue, service
from scoring import profile as profile_mod
from scoring.profile import Example
from scoring.strategies import FewshotStrategy
from scoring.text import listing_text

HTMX = {"HX-Request": "true"}
BUNDLED_FILE = profile_mod.BUNDLED / "example.json"


@pytest.fixture
def instance(app, tmp_path):
    path = tmp_path / "instance"
    path.mkdir()
    app.instance_path = str(path)
    return path


@pytest.fixture
def learning_app(app, instance):
    if "learning" not in app.blueprints:
        learning_views.init_app(app)
    return app


@pytest.fixture
def ids(db):
    ids = store_recorded_listings(db)
    queue.score_with_rules(db, list(ids.values()), profile_mod.load(BUNDLED_FILE))
    return ids


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(learning, "STATE", learning.LearningState())
    monkeypatch.setattr(learning, "_THREAD", None)
    monkeypatch.setattr(learning, "_JOB", {})
    yield
    assert learning.wait_idle(60), "the refit worker outlived its test"
    assert service.wait_idle(60), "a scoring pass outlived its test"


def active(instance, settings=None):
    return service.active_profile(instance, settings or {})


def override(db, lid, score, reason, instance, settings=None, rescore=None):
    """What the dashboard does: store the verdict, then call the hook."""
    search.set_group_verdict(db, lid, override_score=score, override_reason=reason)
    return learning.on_score_override(db, lid, score, reason, instance, settings or {}, rescore=rescore,
                                      background=False)


class RecordingEngine:
    """A local engine stand-in that answers a fixed score and keeps every prompt it was sent."""

    provider = "recording"
    model = "recording-1"
    is_demo = False

    def __init__(self):
        self.sent = []

    def complete(self, messages, *, json_schema=None, max_tokens=128, temperature=0.0, top_logprobs=0):
        from types import SimpleNamespace

        self.sent.append(messages)
        return SimpleNamespace(text=json.dumps({"score": 50, "reasoning": "middling", "evidence": "Engineer"}),
                               model=self.model, prompt_tokens=100, completion_tokens=10, latency_ms=3,
                               top_logprobs=None, cached_tokens=None)


# ---------------------------------------------------------------- overrides become examples


def test_override_becomes_a_human_example_in_a_copy_of_the_bundled_profile(db, ids, instance):
    shipped = hashlib.sha256(BUNDLED_FILE.read_bytes()).hexdigest()
    lid = ids["AI Engineer"]
    prof = override(db, lid, 90, "Exactly my stack; the residency limit is wrong", instance)

    assert hashlib.sha256(BUNDLED_FILE.read_bytes()).hexdigest() == shipped, "data/ must never be written"
    saved = instance / "scoring_profiles" / "example.json"
    assert saved.exists()
    assert profile_mod.load(saved).version == prof.version == active(instance).version
    assert prof.version != profile_mod.load(BUNDLED_FILE).version
    [example] = [e for e in prof.examples if e.source == "human"]
    row = db.conn.execute("SELECT title, company, location, description_html FROM listings WHERE id = ?",
                          [lid]).fetchone()
    assert (example.listing_id, example.score, example.reasoning) == (lid, 90, "Exactly my stack; the residency limit is wrong")
    assert (example.title, example.company, example.location) == row[:3]
    assert example.excerpt == listing_text(row[3], 300)
    assert 200 < len(example.excerpt) <= 302
    assert example.created_at


def test_a_human_example_replaces_claudes_and_clearing_removes_it(db, ids, instance):
    a, b = ids["AI Engineer"], ids["Research Engineer"]
    base = profile_mod.load(BUNDLED_FILE)
    base.examples = [
        Example(title="AI Engineer", score=30, reasoning="Claude: residency", source="claude", listing_id=a),
        Example(title="Research Engineer", score=20, reasoning="Claude: onsite abroad", source="claude", listing_id=b),
    ]
    profile_mod.save(base, instance / "scoring_profiles")

    prof = override(db, a, 85, "Remote EU is fine for me", instance)
    assert [(e.source, e.listing_id, e.score) for e in prof.examples] == [("claude", b, 20), ("human", a, 85)]
    # Overriding again replaces the person's own example instead of adding one.
    prof = override(db, a, 80, "Second thoughts", instance)
    assert [(e.source, e.listing_id, e.score) for e in prof.examples] == [("claude", b, 20), ("human", a, 80)]

    prof = override(db, a, None, None, instance)
    assert [(e.source, e.listing_id) for e in prof.examples] == [("claude", b)]
    assert [(e.source, e.listing_id) for e in active(instance).examples] == [("claude", b)]


def test_clearing_from_another_board_of_the_same_job_removes_the_example(db, ids, instance):
    from scraper.base import Listing

    a = ids["AI Engineer"]
    title, company = db.conn.execute("SELECT title, company FROM listings WHERE id = ?", [a]).fetchone()
    storage.upsert_listings(db, [Listing(source="remotive", source_id="copy-1", title=title, company=company,
                                         location="Remote", description_html="<p>Same job elsewhere.</p>")])
    copy = db.conn.execute("SELECT id FROM listings WHERE source_id = 'copy-1'").fetchone()[0]
    assert learning.group_ids(db, a) == {a, copy}
    override(db, a, 77, "Good one", instance)
    # Overridden again from the other board: one example, on the listing holding the job's verdict.
    prof = override(db, copy, 79, "Better than I thought", instance)
    assert [(e.listing_id, e.score) for e in prof.examples if e.source == "human"] == [(a, 79)]
    assert {lid: lab.score for lid, lab in learning.human_labels(db).items()} == {a: 79}
    prof = override(db, copy, None, None, instance)
    assert not [e for e in prof.examples if e.source == "human"]


def test_an_override_of_a_missing_listing_is_refused_clearly(db, ids, instance):
    with pytest.raises(ValueError, match="no listing #99999"):
        learning.on_score_override(db, 99999, 50, "x", instance, {}, background=False)


# ---------------------------------------------------------------- refit, version bump, stale scores


def test_refit_waits_for_enough_labels_then_moves_scores_toward_them(db, ids, instance):
    settings = {"refit_min_labels": 4}
    wanted = {"Senior Account Executive, Enterprise": 5, "AI Engineer": 92, "Senior System Software Engineer, NvSci": 88,
              "Research Engineer": 60}
    rules_before = {lid: s for lid, s in db.conn.execute("SELECT listing_id, score FROM current_scores")}
    versions = [active(instance, settings).version]
    for i, (title, score) in enumerate(wanted.items()):
        prof = override(db, ids[title], score, f"my call on {title}", instance, settings)
        versions.append(prof.version)
        if i < 3:
            assert active(instance, settings).weights is None, "fitted before there were enough labels"
    prof = active(instance, settings)
    assert prof.weights is not None and prof.weights.n_labels == 4
    assert len(set(versions + [prof.version])) == len(versions) + 1, "every change must bump the version"

    # Every listing scored with an older version is now pending, and the re-score lands nearer the labels.
    assert set(queue.pending(db, "rules", prof)) == set(ids.values())
    queue.run(db, prof, "rules", state=queue.QueueState())
    assert queue.pending(db, "rules", prof) == []
    after = {lid: s for lid, s in db.conn.execute("SELECT listing_id, score FROM current_scores")}
    err_before = sum(abs(rules_before[ids[t]] - s) for t, s in wanted.items())
    err_after = sum(abs(after[ids[t]] - s) for t, s in wanted.items())
    assert err_after < err_before

    # The person's labels are recorded for `auto`, measured on folds the weights were not fitted to.
    row = next(db.query("SELECT * FROM strategy_evals WHERE label_set = 'person' ORDER BY id DESC LIMIT 1"))
    assert (row["strategy"], row["n"], row["profile_version"]) == ("rules", 4, prof.version)
    assert row["model"] == f"rules@{prof.weights_version}"


def test_claude_labels_join_the_fit_and_the_persons_win_for_the_same_listing(db, ids, instance):
    prof = profile_mod.load(BUNDLED_FILE)
    claude = {"AI Engineer": 40, "Research Engineer": 35, "Android Engineer III": 30, "Accounts Payable Lead": 2}
    for title, score in claude.items():
        storage.save_score(db, ids[title], strategy="claude", provider="anthropic", model="claude-haiku-4-5",
                           profile_version=prof.version, score=score, reasoning="Claude says", evidence=[], grounded=1)
    override(db, ids["AI Engineer"], 90, "Mine", instance, {"refit_min_labels": 5})
    labels = learning.combined_labels(db, active(instance))
    assert {lid: (lab.source, lab.score) for lid, lab in labels.items()} == {
        ids["AI Engineer"]: ("human", 90), ids["Research Engineer"]: ("claude", 35),
        ids["Android Engineer III"]: ("claude", 30), ids["Accounts Payable Lead"]: ("claude", 2),
    }
    assert active(instance).weights is None  # 4 labels < 5
    override(db, ids["Research Engineer"], 70, "Also fine", instance, {"refit_min_labels": 4})
    assert active(instance, {"refit_min_labels": 4}).weights.n_labels == 4


def test_refit_uses_the_persons_flag_overrides(db, ids, instance):
    lid = ids["AI Engineer"]
    search.set_flag_override(db, lid, "location", "loc:remote", "EU residents welcome")
    labels = {lid: learning.Label(lid, 90, "human")}
    [(_, facts)] = learning.labeled_facts(db, labels).values()
    assert facts.location_label == "loc:remote"
    assert facts.location_evidence == "your override: EU residents welcome"


def test_clearing_all_overrides_drops_the_fit(db, ids, instance):
    settings = {"refit_min_labels": 2}
    for title, score in (("AI Engineer", 90), ("Research Engineer", 50)):
        override(db, ids[title], score, "x", instance, settings)
    assert active(instance, settings).weights is not None
    override(db, ids["Research Engineer"], None, None, instance, settings)
    assert active(instance, settings).weights is None


def test_bad_learning_settings_fall_back_with_a_message():
    ls = learning.settings_from({"refit_min_labels": "many", "example_cap": -1, "recalibrate_below": 3})
    assert (ls.refit_min_labels, ls.example_cap, ls.recalibrate_below) == (5, 8, 0.5)
    assert len(ls.problems) == 3 and "refit_min_labels = 'many'" in ls.problems[0]
    assert learning.settings_from({"refit_min_labels": 3, "example_cap": 4}).refit_min_labels == 3


# ---------------------------------------------------------------- the few-shot prompt


def test_an_override_changes_the_next_fewshot_prefix_once(db, ids, instance):
    base = profile_mod.load(BUNDLED_FILE)
    # Ten of Claude's examples: more than the cap, so the person's must push one out.
    base.examples = [Example(title=f"Claude example {i}", company="Co", location="Remote", score=5 + 10 * i,
                             reasoning=f"claude reason {i}", source="claude") for i in range(10)]
    profile_mod.save(base, instance / "scoring_profiles")
    views = queue.listing_views(db, list(ids.values()))
    engine = RecordingEngine()

    FewshotStrategy(active(instance), engine).score(views[ids["Research Engineer"]])
    lid = ids["Senior System Software Engineer, NvSci"]
    title, company, location = db.conn.execute("SELECT title, company, location FROM listings WHERE id = ?",
                                               [lid]).fetchone()
    override(db, lid, 91, "Systems work I want, and remote in Europe", instance)
    after = FewshotStrategy(active(instance), engine)
    after.score(views[ids["AI Engineer"]])
    after.score(views[ids["Android Engineer III"]])

    (before_sys, _), (sys1, user1), (sys2, user2) = [(m[0]["content"], m[1]["content"]) for m in engine.sent]
    line = f"- {title} | {company} | {location} -> 91: Systems work I want, and remote in Europe"
    assert line not in before_sys
    assert sys1.count(line) == 1
    assert sys1 == sys2, "the prefix must stay byte-identical between listings"
    assert user1 != user2
    example_lines = [x for x in sys1.splitlines() if x.startswith("- ")]
    assert len(example_lines) == 8  # example_cap: the prompt stays bounded


# ---------------------------------------------------------------- flag overrides


def test_a_flag_override_wins_and_marks_the_listing_stale(db, ids, instance):
    prof = active(instance)
    lid = ids["AI Engineer"]
    storage.save_score(db, lid, strategy="fewshot", provider="llamacpp", model="m", profile_version=prof.version,
                       weights_version=prof.weights_version, score=20, reasoning="model", evidence=[], grounded=1)
    assert lid not in queue.pending(db, "fewshot", prof)
    before = db.conn.execute("SELECT score FROM scores WHERE listing_id = ? AND strategy = 'rules'"
                             " ORDER BY id DESC", [lid]).fetchone()[0]

    search.set_flag_override(db, lid, "location", "loc:remote", "EU residents welcome")
    learning.on_flag_override(db, lid, instance, {}, background=False)

    assert queue.effective_flags(db, [lid])[lid]["location"][0] == "loc:remote"
    score, strategy, detail = db.conn.execute(
        "SELECT s.score, s.strategy, s.detail FROM current_scores cs JOIN scores s ON s.id = cs.score_id"
        " WHERE cs.listing_id = ?", [lid]).fetchone()
    assert strategy == "rules"
    assert "loc:remote" in json.loads(detail)["contributions"]
    assert score > before  # remote instead of restricted elsewhere
    assert lid in queue.pending(db, "fewshot", prof)


# ---------------------------------------------------------------- through the dashboard


def csrf(client) -> str:
    html = client.get("/calibration").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def post(client, url, data):
    return client.post(url, data={"from": "detail", "next": "/", **data},
                       headers={**HTMX, "X-CSRF-Token": csrf(client)})


def test_the_dashboard_override_teaches_and_rescores_in_the_background(learning_app, client, db, ids, instance):
    lid = ids["AI Engineer"]
    resp = post(client, f"/listing/{lid}/score", {"override_score": "88", "override_reason": "My kind of job"})
    assert resp.status_code == 200
    assert learning.wait_idle(60) and service.wait_idle(60)
    prof = active(instance)
    assert [(e.listing_id, e.score) for e in prof.examples if e.source == "human"] == [(lid, 88)]
    # The background pass re-scored every listing with the new profile version.
    versions = {v for (v,) in db.conn.execute(
        "SELECT s.profile_version FROM current_scores cs JOIN scores s ON s.id = cs.score_id")}
    assert versions == {prof.version}
    assert search.group_verdict(db, lid)["override_score"] == 88

    resp = post(client, f"/listing/{lid}/score", {"override_score": "", "override_reason": ""})
    assert resp.status_code == 200
    assert learning.wait_idle(60) and service.wait_idle(60)
    assert not [e for e in active(instance).examples if e.source == "human"]


def test_the_dashboard_flag_override_rescores_the_listing(learning_app, client, db, ids, instance):
    lid = ids["AI Engineer"]
    resp = post(client, f"/listing/{lid}/flag", {"kind": "location", "label": "loc:remote", "reason": "EU ok"})
    assert resp.status_code == 200
    assert learning.wait_idle(60) and service.wait_idle(60)
    detail = db.conn.execute("SELECT s.detail FROM current_scores cs JOIN scores s ON s.id = cs.score_id"
                             " WHERE cs.listing_id = ?", [lid]).fetchone()[0]
    assert "loc:remote" in json.loads(detail)["contributions"]


def test_a_failing_hook_never_loses_the_override(learning_app, client, db, ids, instance, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(learning, "on_score_override", broken)
    lid = ids["AI Engineer"]
    resp = post(client, f"/listing/{lid}/score", {"override_score": "70", "override_reason": "Still mine"})
    assert resp.status_code == 200
    assert "disk full" not in resp.get_data(as_text=True)
    assert search.group_verdict(db, lid)["override_score"] == 70
    assert "learning from the score override" in caplog.text


def test_the_status_partial_counts_stale_listings_and_shows_moves(learning_app, client, db, ids, instance):
    settings = {"refit_min_labels": 2}
    learning_app.config["JOBSIFT"] = type(learning_app.config["JOBSIFT"])(scoring=settings)
    for title, score in (("AI Engineer", 95), ("Senior Account Executive, Enterprise", 3)):
        override(db, ids[title], score, "x", instance, settings)
    html = client.get("/learning/status").get_data(as_text=True)
    assert f"{len(ids)} listings are being re-scored with your latest labels" in html
    assert 'id="learning-status"' in html

    queue.run(db, active(instance, settings), "rules", state=queue.QueueState())
    html = client.get("/learning/status", headers=HTMX).get_data(as_text=True)
    assert "Every listing is scored with your latest labels" in html
    assert 'hx-trigger="every 2s"' not in html
    moves = learning.ranking_moves(db, instance)
    assert moves["rescored"] == len(ids) and moves["compared"] == len(ids)
    assert f"{moves['moved']} of {len(ids)} scores moved" in html
    assert len(moves["top_now"]) == 10
    top_now = [t["id"] for t in moves["top_now"]]
    assert top_now.index(ids["AI Engineer"]) < 3


def test_the_worker_refits_in_the_background_and_waits_for_a_running_pass(db, ids, instance):
    import threading
    import time

    busy = threading.Event()
    busy.set()
    answers = []

    def rescore():
        answers.append(not busy.is_set())  # False while an older scoring pass still runs
        return answers[-1]

    settings = {"refit_min_labels": 2}
    for title, score in (("AI Engineer", 90), ("Accounts Payable Lead", 5)):
        search.set_group_verdict(db, ids[title], override_score=score, override_reason="x")
        learning.on_score_override(db, ids[title], score, "x", instance, settings, rescore=rescore)
    deadline = time.monotonic() + 30
    while len(answers) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answers[:2] == [False, False]
    assert learning.STATE.snapshot()["phase"] == "waiting"
    busy.clear()
    assert learning.wait_idle(30)
    assert answers[-1] is True and answers.count(True) == 1
    state = learning.STATE.snapshot()
    assert (state["running"], state["phase"], state["last_error"]) == (False, "", "")
    # Both labels made it into the fit, however the two requests were coalesced.
    assert active(instance, settings).weights.n_labels == 2
    assert state["last"]["n_labels"] == 2


def test_a_missing_named_profile_is_reported_not_crashed(learning_app, client, db, ids, instance, caplog):
    learning_app.config["JOBSIFT"] = type(learning_app.config["JOBSIFT"])(scoring={"profile": "nope"})
    html = client.get("/learning/status").get_data(as_text=True)
    assert "no scoring profile named &#39;nope&#39;" in html
    page = client.get("/calibration")
    assert page.status_code == 200 and "no scoring profile named &#39;nope&#39;" in page.get_data(as_text=True)
    lid = ids["AI Engineer"]
    resp = post(client, f"/listing/{lid}/score", {"override_score": "60", "override_reason": "kept anyway"})
    assert resp.status_code == 200
    assert search.group_verdict(db, lid)["override_score"] == 60
    assert "no scoring profile named 'nope'" in caplog.text


def test_a_test_app_on_the_real_instance_folder_never_teaches_the_real_profile(app, client, db, ids, caplog):
    # A test app left on the project's own instance/ folder (as Flask defaults it).
    app.instance_path = str(learning_views.DEFAULT_INSTANCE)
    real = learning_views.DEFAULT_INSTANCE / "scoring_profiles"
    before = sorted(p.name for p in real.glob("*.json")) if real.exists() else []
    lid = ids["AI Engineer"]
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    resp = client.post(f"/listing/{lid}/score", data={"override_score": "61", "override_reason": "test only",
                                                      "next": "/"}, headers={**HTMX, "X-CSRF-Token": token})
    assert resp.status_code == 200
    assert search.group_verdict(db, lid)["override_score"] == 61
    assert (sorted(p.name for p in real.glob("*.json")) if real.exists() else []) == before
    assert "not learning from the override" in caplog.text
