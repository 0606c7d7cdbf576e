"""Remotive: BOM accepted, notice keys ignored, candidate_required_location as location."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import stamina

from scraper import SOURCES, get_source
from scraper.http import make_client

PAYLOAD = Path(__file__).parent / "fixtures" / "remotive" / "remotive_all_2026-07.json"


@pytest.fixture(scope="module")
def parsed():
    return get_source("remotive").parse(PAYLOAD.read_bytes())


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


def test_bom_payload_parses_every_job(parsed):
    raw = PAYLOAD.read_bytes()
    assert raw[:3] == b"\xef\xbb\xbf"
    assert len(parsed.listings) == 35
    assert parsed.skipped == []
    # The same file read as text (BOM still first) gives the same listings.
    assert len(get_source("remotive").parse(raw.decode("utf-8")).listings) == 35


def test_field_mapping(parsed):
    job = by_id(parsed, "2090903")
    assert job.title == "Data Labeling Specialists"
    assert job.company == "Workada"
    # A remote-only board: the place named is where candidates may live.
    assert job.location == "Remote (USA)"
    assert job.posted_at == "2026-07-26T20:49:11+00:00"
    assert job.url == "https://remotive.com/remote-jobs/data/data-labeling-specialists-2090903"
    assert job.salary == "$18 - $22/hr"
    assert job.tags == ["research", "digital content", "spreadsheets"]
    assert job.raw["job_type"] == "freelance"

    clipster = by_id(parsed, "2091062")
    assert clipster.location == "Remote (Europe, UK, Germany, France, European timezones)"
    assert clipster.salary == ""


def test_trailing_spaces_and_ampersands(parsed):
    assert by_id(parsed, "1680495").company == "Coalition Technologies"
    assert by_id(parsed, "1680495").raw["company_name"] == "Coalition Technologies "
    assert by_id(parsed, "2091068").title == "Head of Marketing & Communications"


def test_tracking_image_is_left_for_the_sanitizer(parsed):
    assert by_id(parsed, "2090903").description_html.endswith(
        '<img src="https://remotive.com/job/track/2090903/blank.gif?source=public_api" alt=""/>'
    )


def test_notice_keys_never_become_listings(parsed):
    data = json.loads(PAYLOAD.read_bytes())
    assert {"00-warning", "0-legal-notice", "job-count"} <= set(data)
    assert {listing.source_id for listing in parsed.listings} == {str(job["id"]) for job in data["jobs"]}


def test_polite_interval_and_attribution():
    assert SOURCES["remotive"].min_interval_s == 6 * 3600
    assert (SOURCES["remotive"].attribution, SOURCES["remotive"].attribution_url) == ("Remotive", "https://remotive.com")


def test_fetch_requests_the_api_with_options():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=PAYLOAD.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        client = make_client(transport=httpx.MockTransport(handler))
        plain = get_source("remotive").fetch(client)
        narrowed = get_source("remotive", category="software-dev", limit=50).fetch(client)
    assert [str(r.url) for r in requests] == [
        "https://remotive.com/api/remote-jobs",
        "https://remotive.com/api/remote-jobs?category=software-dev&limit=50",
    ]
    assert len(plain.result.listings) == len(narrowed.result.listings) == 35
