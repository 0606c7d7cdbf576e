"""Training export: chat JSONL with the few-shot prompts, the person's labels winning, a stable validation split."""

from __future__ import annotations

import hashlib
import json

import pytest

import db as storage
import learning_cli
import search
from fake_anthropic import store_recorded_listings
from scoring import prompts, queue, training
from scoring import profile as profile_mod
from scoring.profile import Example, Profile
from scoring.text import html_to_text, is_grounded

BUNDLED_FILE = profile_mod.BUNDLED / "example.json"
CLAUDE = {
    "AI Engineer": (35, "AI engineering, but residency limited to another region", ["AI Engineer"]),
    "Research Engineer": (30, "Research role on site in another country", ["Research Engineer"]),
    "Android Engineer III": (15, "Mobile-only role abroad", ["Android"]),
    "Accounts Payable Lead": (2, "Finance, not software", ["Accounts Payable"]),
}


@pytest.fixture
def labeled(db):
    ids = store_recorded_listings(db)
    prof = profile_mod.load(BUNDLED_FILE)
    for title, (score, reasoning, evidence) in CLAUDE.items():
        storage.save_score(db, ids[title], strategy="claude", provider="anthropic", model="claude-haiku-4-5",
                           profile_version=prof.version, score=score, reasoning=reasoning, evidence=evidence,
                           grounded=1)
    # The person disagrees with Claude on one listing and labels one Claude never saw.
    search.set_group_verdict(db, ids["AI Engineer"], override_score=88, override_reason="EU residents welcome, I checked")
    search.set_group_verdict(db, ids["Senior System Software Engineer, NvSci"], override_score=80,
                             override_reason="Systems work, remote possible")
    return ids


@pytest.fixture
def prof():
    p = profile_mod.load(BUNDLED_FILE)
    p.examples = [Example(title="Staff ML Platform Engineer", company="X", location="Remote EU", score=92,
                          reasoning="ML platform, senior, remote EU", source="claude")]
    return p


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_writes_fewshot_prompts_and_answers(db, labeled, prof, tmp_path):
    result = training.export(db, prof, tmp_path / "train.jsonl", val=0.0)
    assert (result.train, result.val, result.human, result.claude, result.val_path) == (5, 0, 2, 3, None)
    lines = read(tmp_path / "train.jsonl")
    views = queue.listing_views(db, list(labeled.values()))
    by_title = {}
    for line in lines:
        assert list(line) == ["messages"]
        roles = [m["role"] for m in line["messages"]]
        assert roles == ["system", "user", "assistant"]
        title = line["messages"][1]["content"].splitlines()[0].removeprefix("Title: ")
        by_title[title] = line["messages"]
    assert set(by_title) == set(CLAUDE) | {"Senior System Software Engineer, NvSci"}

    examples = prompts.select_examples(prof.examples, 8)
    for title, messages in by_title.items():
        expected = prompts.fewshot_messages(prof, views[labeled[title]], examples)
        assert messages[:2] == expected, "the same prompts as the fewshot strategy"
        reply = json.loads(messages[2]["content"])
        assert list(reply) == ["score", "reasoning", "evidence"]
        schema = prompts.fewshot_schema()["properties"]
        assert len(reply["reasoning"]) <= schema["reasoning"]["maxLength"]
        assert len(reply["evidence"]) <= schema["evidence"]["maxLength"]
        text = html_to_text(views[labeled[title]]["description_html"])
        assert is_grounded(reply["evidence"], title, text), f"{title}: evidence must quote the listing"
    # The person's label wins over Claude's for the same listing; Claude's keep their evidence.
    assert json.loads(by_title["AI Engineer"][2]["content"])["score"] == 88
    assert json.loads(by_title["AI Engineer"][2]["content"])["reasoning"] == "EU residents welcome, I checked"
    assert json.loads(by_title["Android Engineer III"][2]["content"]) == {
        "score": 15, "reasoning": "Mobile-only role abroad", "evidence": "Android"}
    # The system prompt is the same for every line: one cached prefix when the tuned model scores.
    assert len({m[0]["content"] for m in by_title.values()}) == 1


def test_split_is_by_listing_identity_and_stable_when_labels_are_added(db, labeled, prof, tmp_path):
    out = tmp_path / "t.jsonl"
    training.export(db, prof, out, val=0.5, seed=3)
    val_path = tmp_path / "t.val.jsonl"

    def titles(path):
        return {line["messages"][1]["content"].splitlines()[0] for line in read(path)}

    first_train, first_val = titles(out), titles(val_path)
    assert first_train and first_val and not (first_train & first_val)
    for lid in labeled.values():
        src, sid = db.conn.execute("SELECT source, source_id FROM listings WHERE id = ?", [lid]).fetchone()
        digest = hashlib.sha256(f"3:{src}:{sid}".encode()).digest()
        assert training.in_validation(src, sid, 0.5, seed=3) == (int.from_bytes(digest[:8], "big") / 2**64 < 0.5)

    # More labels later: every earlier listing stays on its side.
    for title in ("Research Engineer", "Product Manager - Web3/ DeFi", "AI Transformation Owner, CRO", "Accounts Payable Lead"):
        search.set_group_verdict(db, labeled[title], override_score=40, override_reason="later")
    training.export(db, prof, out, val=0.5, seed=3)
    assert first_train <= titles(out) and first_val <= titles(val_path)
    assert len(titles(out) | titles(val_path)) == 7
    # Another seed gives another split.
    splits = {s: {k for k in labeled if training.in_validation("x", k, 0.5, s)} for s in range(4)}
    assert len({frozenset(v) for v in splits.values()}) > 1


def test_export_refuses_bad_input_clearly(db, prof, tmp_path):
    with pytest.raises(ValueError, match="no labeled listings to export"):
        training.export(db, prof, tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="--val must be from 0 to below 1"):
        training.export(db, prof, tmp_path / "t.jsonl", val=1.5)
    with pytest.raises(ValueError, match="no CV summary or criteria"):
        training.export(db, Profile(cv_name="empty"), tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="must differ"):
        training.export(db, prof, tmp_path / "t.jsonl", val_out=tmp_path / "t.jsonl")
    assert not (tmp_path / "t.jsonl").exists()


@pytest.fixture
def cli_app(app, tmp_path):
    app.instance_path = str(tmp_path / "instance")
    if "export-training" not in app.cli.commands:
        learning_cli.init_app(app)
    return app


def test_export_training_cli(cli_app, runner, db, labeled, tmp_path):
    out = tmp_path / "data" / "train.jsonl"
    result = runner.invoke(args=["export-training", "--out", str(out), "--val", "0.4", "--seed", "1"])
    assert result.exit_code == 0, result.output
    train, val = read(out), read(tmp_path / "data" / "train.val.jsonl")
    assert len(train) + len(val) == 5
    assert f"wrote {len(train)} training examples to {out} and {len(val)} validation examples" in result.output
    assert "(2 labeled by you, 3 by Claude)" in result.output

    # MLX-LM's layout: train.jsonl and valid.jsonl in one folder.
    result = runner.invoke(args=["export-training", "--out", str(out), "--val-out", str(out.parent / "valid.jsonl")])
    assert result.exit_code == 0, result.output
    assert len(read(out)) + len(read(out.parent / "valid.jsonl")) == 5

    bad = runner.invoke(args=["export-training", "--out", str(out), "--val", "2"])
    assert bad.exit_code != 0 and "--val must be from 0 to below 1" in bad.output
