"""HN 'Who is hiring?': top-level comments only, loose first line parsed, three payload shapes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import stamina

from scraper import get_source
from scraper.base import PayloadError
from scraper.hn import parse_first_line
from scraper.http import make_client

HN = Path(__file__).parent / "fixtures" / "hn"
HITS = HN / "hn_algolia_hits_trimmed_2026-07.json"
TREE = HN / "hn_algolia_items_48747976_trimmed4.json"
STORIES = HN / "hn_algolia_search_whoishiring_stories.json"


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


@pytest.fixture(scope="module")
def reshaped():
    return get_source("hn").parse(HITS.read_bytes())


def test_only_top_level_comments_become_listings(reshaped):
    data = json.loads(HITS.read_bytes())
    assert len(data["hits"]) == 7
    # 48859053 answers another post (parent 48837669), so it is not a job.
    assert [listing.source_id for listing in reshaped.listings] == [
        "48860201", "48843116", "48842567", "48837669", "48868436", "48804695",
    ]
    assert reshaped.skipped == []


def test_first_line_fields_of_real_posts(reshaped):
    qase = by_id(reshaped, "48860201")
    assert (qase.company, qase.title, qase.location) == (
        "Qase", "Developer Advocate / Technical Customer Support Specialist", "REMOTE",
    )
    assert qase.tags == ["Full-time"]
    assert qase.url == "https://news.ycombinator.com/item?id=48860201"
    assert qase.posted_at == "2026-07-10T14:10:34+00:00"

    wave = by_id(reshaped, "48843116")
    assert (wave.company, wave.title, wave.location) == ("Wave", "On-Premises SRE", "Remote (EMEA)")
    assert wave.salary == "Salary up to $185,500 + equity"

    resort = by_id(reshaped, "48868436")
    assert (resort.company, resort.title) == ("ResortPass", "Senior Software Engineer, Frontend")
    assert resort.location == "New York, NY; Onsite"
    assert resort.salary == "$160k–$180k ($210k for senior band) + Equity"
    assert resort.tags == ["Full-time", "Visa possible for exceptional candidates"]

    trinsic = by_id(reshaped, "48837669")
    assert (trinsic.company, trinsic.title, trinsic.location) == ("Trinsic", "Senior Product Engineer", "REMOTE (Europe)")


def test_post_without_separators_uses_its_next_line(reshaped):
    this_dot = by_id(reshaped, "48804695")
    assert this_dot.company == "This Dot Labs"
    assert this_dot.title == "Engineering Leads • Senior Engineers"


def test_description_is_the_full_comment_html(reshaped):
    data = json.loads(HITS.read_bytes())
    zeitlabs = by_id(reshaped, "48842567")
    assert zeitlabs.description_html == data["hits"][2]["comment_text"]
    assert zeitlabs.raw == data["hits"][2]


def test_items_tree_shape():
    parsed = get_source("hn").parse(TREE.read_bytes())
    assert [listing.source_id for listing in parsed.listings] == ["48747987", "48747990", "48748003", "48748007"]
    flywheel = by_id(parsed, "48747990")
    # Entities in the first line are unescaped: "&amp;" and "&#x2F;".
    assert (flywheel.company, flywheel.title, flywheel.location) == ("We The Flywheel", "AI-Native Engineers & Operators", "REMOTE (worldwide)")
    assert flywheel.tags == ["Contract / Part-time (10–40 hrs/wk)"]
    assert flywheel.posted_at == "2026-07-01T15:02:00+00:00"
    smarter = by_id(parsed, "48748003")
    assert (smarter.company, smarter.title, smarter.location, smarter.salary) == (
        "SmarterDx", "Multiple roles", "Remote (US only)", "150-250k+ + equity + benefits",
    )
    # A location in the company's parentheses, parts split by em dashes.
    prairie = by_id(parsed, "48748007")
    assert (prairie.company, prairie.title, prairie.location) == ("PrairieLearn", "Full-Stack Software Engineer", "Remote US")
    caselight = by_id(parsed, "48747987")
    assert caselight.company == "CaseLight"
    assert caselight.title == "CaseLight is looking for a U.S.-based developer for a 20–25% equity partnership."


def test_plain_algolia_search_response_shape():
    data = json.loads(HITS.read_bytes())
    parsed = get_source("hn").parse({"hits": data["hits"], "nbHits": 7, "page": 0})
    assert len(parsed.listings) == 6


def test_deleted_and_empty_comments_are_left_out():
    data = json.loads(HITS.read_bytes())
    data["hits"][0]["comment_text"] = None
    data["hits"][1]["comment_text"] = "   "
    parsed = get_source("hn").parse(json.dumps(data))
    assert [listing.source_id for listing in parsed.listings] == ["48842567", "48837669", "48868436", "48804695"]
    assert parsed.skipped == []


def test_story_hits_are_not_jobs_and_odd_shapes_are_payload_errors():
    assert get_source("hn").parse(STORIES.read_bytes()).listings == []
    with pytest.raises(PayloadError, match="expected an object with 'hits' or 'children'"):
        get_source("hn").parse(b'{"message": "not found"}')


def test_parse_first_line_with_nothing_to_read():
    empty = parse_first_line("<p></p>")
    assert (empty.company, empty.title, empty.location, empty.salary, empty.tags) == ("", "", "", "", [])


def test_fetch_finds_the_newest_story_then_its_comments():
    requests = []

    def handler(request):
        requests.append(request)
        body = STORIES if request.url.path.endswith("/search_by_date") else HITS
        return httpx.Response(200, content=body.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("hn").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [(r.url.path, dict(r.url.params)) for r in requests] == [
        ("/api/v1/search_by_date", {"tags": "story,author_whoishiring", "hitsPerPage": "20"}),
        # May 2026 (47975571) is the newest story in the recorded search.
        ("/api/v1/search", {"tags": "comment,story_47975571", "hitsPerPage": "1000"}),
    ]
    assert requests[0].url.host == "hn.algolia.com"
    assert len(result.result.listings) == 6
