"""Remote OK: legal notice skipped, mojibake and escaped escapes repaired, fields mapped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import stamina

from scraper import SOURCES, get_source
from scraper.http import make_client

PAYLOAD = Path(__file__).parent / "fixtures" / "remoteok" / "remoteok_api_2025-08-28.json"


@pytest.fixture(scope="module")
def parsed():
    return get_source("remoteok").parse(PAYLOAD.read_bytes())


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


def test_legal_notice_is_not_a_listing_and_the_blank_job_is_skipped(parsed):
    items = json.loads(PAYLOAD.read_bytes())
    assert "legal" in items[0]
    assert len(items) == 98
    # 97 jobs: one published with an empty position and company is skipped, with its index.
    assert len(parsed.listings) == 96
    assert parsed.skipped == ["remoteok item 97: missing position"]
    assert parsed.listings[0].source_id == "1097929"


def test_field_mapping(parsed):
    lead = by_id(parsed, "1097929")
    assert lead.source == "remoteok"
    assert lead.title == "Engineering Lead"
    assert lead.company == "Aragon"
    assert lead.location == "Remote"
    assert lead.posted_at == "2025-08-28T12:00:03+00:00"
    assert lead.url == "https://remoteOK.com/remote-jobs/remote-engineering-lead-aragon-1097929"
    assert lead.salary == "$60k–$140k"
    assert "backend" in lead.tags and "digital nomad" in lead.tags

    python = by_id(parsed, "1096950")
    assert (python.title, python.company, python.location) == ("Python Developer", "Ampcontrol", "")
    assert python.posted_at == "2025-08-27T15:24:06+00:00"


def test_entities_in_titles_and_companies_are_unescaped(parsed):
    assert by_id(parsed, "1093880").title == "Manager Site Reliability & DevOps"
    assert by_id(parsed, "1093856").company == "CI&T"


def test_mojibake_and_literal_newlines_are_repaired(parsed):
    lead = by_id(parsed, "1097929")
    assert "<b>💪 What you’ll do</b>" in lead.description_html
    assert by_id(parsed, "1096950").description_html.startswith('<h2>🚀About <a href="https://www.ampcontrol.io/">Ampcontrol</a></h2>')
    assert "today! 📸✨</p>" in by_id(parsed, "1093792").description_html
    assert "transformação tecnológica" in by_id(parsed, "1093856").description_html
    for listing in parsed.listings:
        text = listing.description_html + listing.title + listing.company
        assert "\\n" not in listing.description_html, listing.source_id
        assert not re.search("[\x80-\x9f]|Ã.|â\x80", text), listing.source_id


def test_raw_keeps_the_item_as_published(parsed):
    lead = by_id(parsed, "1097929")
    assert "What youâ\x80\x99ll do" in lead.raw["description"]
    assert lead.raw["slug"] == "remote-engineering-lead-aragon-1097929"
    json.dumps(lead.raw)


def test_attribution_and_registry():
    assert SOURCES["remoteok"].attribution == "Remote OK"
    assert SOURCES["remoteok"].attribution_url == "https://remoteok.com"


def test_fetch_requests_the_api_and_parses_it():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=PAYLOAD.read_bytes(), headers={"ETag": '"ro1"'})

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("remoteok").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [str(r.url) for r in requests] == ["https://remoteok.com/api"]
    assert len(result.result.listings) == 96
    assert result.validators == {"https://remoteok.com/api": {"etag": '"ro1"'}}
    assert result.not_modified is False
