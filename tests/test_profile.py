"""Scoring profiles: validation, versioning, example selection, files."""

import json

import pytest

from scoring import profile as profile_mod
from scoring.profile import Example, Profile
from scoring.prompts import select_examples


def test_bundled_example_profile_loads():
    p = profile_mod.load(profile_mod.BUNDLED / "example.json")
    assert p.cv_name == "example"
    assert p.criteria and p.red_flags
    assert all(c.weight > 0 for c in p.criteria)
    assert all(c.weight < 0 for c in p.red_flags)


def test_version_changes_with_content_and_not_otherwise():
    a = Profile(cv_name="me", cv_summary="x")
    b = Profile(cv_name="me", cv_summary="x")
    assert a.version == b.version
    b.examples.append(Example(title="T", score=50))
    assert a.version != b.version
    # Examples do not change the rule weights.
    assert a.weights_version == b.weights_version


def test_invalid_profile_names_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cv_name": "../etc/passwd"}))
    with pytest.raises(ValueError, match="cv_name"):
        profile_mod.load(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read profile"):
        profile_mod.load(broken)


def test_save_and_active(tmp_path):
    p = Profile(cv_name="mine", cv_summary="Go developer")
    path = profile_mod.save(p, tmp_path)
    assert path.name == "mine.json"
    assert profile_mod.active(tmp_path).cv_summary == "Go developer"
    assert profile_mod.active(tmp_path / "empty").cv_name == "example"
    with pytest.raises(ValueError):
        profile_mod.active(tmp_path, "nobody")


def test_example_selection_human_first_then_bands_deterministic():
    ex = [Example(title=f"c{i}", score=s, source="claude") for i, s in enumerate([95, 90, 70, 50, 20, 10, 5])]
    ex.append(Example(title="h", score=33, source="human", created_at="2026-01-01"))
    chosen = select_examples(ex, cap=5)
    assert len(chosen) == 5
    assert any(e.source == "human" for e in chosen)
    # One from each band at least.
    from scoring.metrics import band

    assert {band(e.score) for e in chosen} == {"strong", "plausible", "weak", "no"}
    assert chosen == select_examples(list(reversed(ex)), cap=5)
