"""Focus flags: the title decides first, whole words only, longer phrases win, evidence says where."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import config as config_mod
from scoring import flags

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FOCUS = config_mod.Focus()


def _remoteok() -> dict[str, dict]:
    items = json.loads((FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_text(encoding="utf-8"))[1:]
    return {str(item["id"]): item for item in items}


def _catawiki() -> list[dict]:
    data = json.loads(
        (FIXTURES / "greenhouse" / "greenhouse_catawiki_content_true_wrapped.json").read_text(encoding="utf-8")
    )
    return data["jobs"]


def test_front_end_developer_mentioning_hands_on_and_sales_stays_tech():
    description = (
        "You will be hands-on from day one, pairing with our sales team to ship customer-facing pages "
        "in React and TypeScript."
    )
    flag = flags.classify_focus("Junior Front End Developer", description, FOCUS)
    assert flag == flags.Flag("focus", "focus:tech", "title: Developer")


def test_real_front_end_listing_is_never_non_tech():
    jobs = [job for job in _catawiki() if job["title"] == "Front-End Engineer"]
    assert len(jobs) == 2
    for job in jobs:
        item = SimpleNamespace(title=job["title"], location=job["location"]["name"], description_html=job["content"])
        _, focus = flags.compute_flags(item, config_mod.Config())
        # The description names designers and a recruiter (non-tech words); the title decides.
        assert "Designer" in job["content"] and "recruiter" in job["content"]
        assert focus.label == "focus:priority"
        assert focus.evidence == "title: Engineer; description: Backend"


@pytest.mark.parametrize(
    "title,label,evidence",
    [
        ("Electrical Engineer", "focus:non-tech", "title: Electrical Engineer"),
        ("Senior Mechanical Engineer - Robotics", "focus:non-tech", "title: Mechanical Engineer"),
        ("Civil Engineer", "focus:non-tech", "title: Civil Engineer"),
        ("Software Engineer", "focus:tech", "title: Engineer"),
    ],
)
def test_longer_phrase_wins_over_engineer(title, label, evidence):
    flag = flags.classify_focus(title, "Experience with software tools is a plus.", FOCUS)
    assert (flag.label, flag.evidence) == (label, evidence)


def test_rust_never_matches_trust():
    focus = config_mod.Focus(priority=("rust",), tech=("engineer",), non_tech=("sales",))
    assert flags.classify_focus("Engineer", "We value trust and rustic offices.", focus).label == "focus:tech"
    assert flags.classify_focus("Engineer", "Our services are written in Rust.", focus) == flags.Flag(
        "focus", "focus:priority", "title: Engineer; description: Rust"
    )
    assert flags.classify_focus("Trust & Safety Specialist", "", focus).label == "focus:non-tech"
    assert flags.classify_focus("Rust Engineer", "", focus) == flags.Flag("focus", "focus:priority", "title: Rust")


def test_multi_word_terms_match_across_spaces_and_hyphens():
    for title in ("ML Platform Engineer", "ML-Platform Engineer", "Engineer, ml platform"):
        flag = flags.classify_focus(title, "", FOCUS)
        assert flag.label == "focus:priority", title
    assert flags.classify_focus("Back-end Engineer", "", FOCUS).evidence == "title: Back-end"


@pytest.mark.parametrize(
    "item_id,label,evidence",
    [
        ("1096950", "focus:priority", "title: Python"),  # Python Developer
        ("1095650", "focus:non-tech", "title: Assistant"),  # Executive Assistant
        ("1093858", "focus:tech", "title: Engineer"),  # Smart Contract Engineer, no priority term anywhere
        ("1093802", "focus:priority", "title: Engineer; description: backend"),  # FullStack Engineer
        ("1093987", "focus:non-tech", "title: Sales"),  # Sales Development Representative
    ],
)
def test_real_listings(item_id, label, evidence):
    item = _remoteok()[item_id]
    flag = flags.classify_focus(item["position"], item["description"], FOCUS)
    assert (flag.label, flag.evidence) == (label, evidence)


def test_non_tech_title_beats_tech_words_in_description():
    item = _remoteok()["1093883"]  # Marketing Programs Specialist
    assert flags.classify_focus("Marketing Programs Specialist", "Python, Kubernetes, backend, API", FOCUS) == (
        flags.Flag("focus", "focus:non-tech", "title: Marketing")
    )
    assert flags.classify_focus(item["position"], item["description"], FOCUS).label == "focus:non-tech"


def test_main_role_is_the_first_part_of_the_title():
    assert flags.classify_focus("Recruiter - Engineering", "", FOCUS).evidence == "title: Recruiter"
    assert flags.classify_focus("Data Engineer, Marketing", "", FOCUS).label == "focus:tech"


def test_no_role_word_in_title_decided_by_description():
    tech = flags.classify_focus("Ninja", "You will run Kubernetes clusters as our SRE.", FOCUS)
    assert tech == flags.Flag("focus", "focus:tech", "description: Kubernetes, SRE")
    priority = flags.classify_focus("Ninja", "Kubernetes and Python every day.", FOCUS)
    assert priority.label == "focus:priority"
    one = flags.classify_focus("Ninja", "Some software experience helps.", FOCUS)
    assert one == flags.Flag("focus", "focus:non-tech", "description: only one tech term (software)")
    sales = flags.classify_focus("Rockstar", "Sales and marketing, with a little software.", FOCUS)
    assert sales.label == "focus:non-tech"
    nothing = flags.classify_focus("Rockstar", "", FOCUS)
    assert nothing.label == "focus:non-tech" and nothing.evidence


def test_markup_is_not_a_listing_word():
    item = SimpleNamespace(
        title="Engineer", location="Berlin",
        description_html='<p>See <a href="https://python.org/backend">our page</a>.</p>',
    )
    location, focus = flags.compute_flags(item, config_mod.Config())
    assert location == flags.Flag("location", "loc:home", "Berlin")
    assert focus == flags.Flag("focus", "focus:tech", "title: Engineer")


def test_priority_term_far_into_a_long_description():
    description = "<p>" + "We ship things. " * 2000 + "Our stack is Golang.</p>"
    item = SimpleNamespace(title="Software Engineer", location="", description_html=description)
    assert flags.compute_flags(item, config_mod.Config())[1].evidence == "title: Engineer; description: Golang"


def test_evidence_is_taken_from_the_input():
    for item in _remoteok().values():
        flag = flags.classify_focus(item["position"], item["description"], FOCUS)
        assert flag.label in flags.FOCUS_LABELS
        where, _, quote = flag.evidence.partition(": ")
        if where == "title":
            assert quote.split("; description: ")[0] in item["position"]


@pytest.mark.parametrize("title,description", [(None, None), (3, b"bytes"), ("", ""), ("x" * 10_000, "y" * 100_000)])
def test_bad_input_never_crashes(title, description):
    flag = flags.classify_focus(title, description, FOCUS)
    assert flag.kind == "focus" and flag.label in flags.FOCUS_LABELS and flag.evidence


def test_compute_flags_returns_one_flag_of_each_kind():
    result = flags.compute_flags(SimpleNamespace(title="Python Developer", location="Remote (US)"), config_mod.Config())
    assert [f.kind for f in result] == ["location", "focus"]
    assert [f.label for f in result] == ["loc:remote-restricted", "focus:priority"]
