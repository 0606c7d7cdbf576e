"""Lever: millisecond dates, locations with work mode, salary range, one HTML description."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import stamina

from scraper import get_source
from scraper.http import make_client

LEVER = Path(__file__).parent / "fixtures" / "lever"
HINGE = LEVER / "lever_hinge_trimmed.json"
PALANTIR = LEVER / "lever_palantir_2postings.json"


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


def test_field_mapping_ms_dates_and_salary():
    parsed = get_source("lever", board="matchgroup", company="Match Group").parse(HINGE.read_bytes())
    assert len(parsed.listings) == 2 and parsed.skipped == []
    android = by_id(parsed, "3414ba28-35f7-45d3-8e13-35c883959635")
    assert android.raw["createdAt"] == 1779223091267
    assert android.posted_at == "2026-05-19T20:38:11+00:00"
    assert android.title == "Android Engineer III"
    assert android.company == "Match Group"
    assert android.location == "New York, New York (Hybrid)"
    assert android.salary == "$150k–$180k/year"
    assert android.url == "https://jobs.lever.co/matchgroup/3414ba28-35f7-45d3-8e13-35c883959635"
    assert android.tags == ["Full-time", "Engineering", "Hinge"]
    # No salaryRange published: no salary.
    assert by_id(parsed, "0152fd07-2715-4fe1-a208-af9d03c0b358").salary == ""


def test_description_joins_body_lists_and_closing_text():
    data = json.loads(HINGE.read_bytes())
    html = by_id(get_source("lever").parse(data), data[0]["id"]).description_html
    assert html.startswith(data[0]["description"])
    assert "<h3>Responsibilities</h3>\n<ul><li><strong>Cross-Disciplinary Collaboration:</strong>" in html
    assert "<h3>What We're Looking For</h3>" in html
    assert html.endswith(data[0]["additional"])


def test_company_from_the_hosted_url_when_no_board_is_given():
    parsed = get_source("lever").parse(PALANTIR.read_bytes())
    admin = by_id(parsed, "ac978161-6f46-4f6b-ad9e-a258e642751c")
    assert admin.company == "Palantir"
    assert admin.location == "London, United Kingdom (Hybrid)"
    assert admin.posted_at == "2024-03-25T21:50:16+00:00"
    assert by_id(parsed, "0bbfd4f4-41ff-4ec6-b73f-5200efd5d4d3").location == "Palo Alto, CA (Hybrid)"


def test_all_locations_and_remote_mode():
    data = json.loads(PALANTIR.read_bytes())
    data[0]["categories"]["allLocations"] = ["London, United Kingdom", "Berlin, Germany"]
    data[0]["workplaceType"] = "remote"
    del data[1]["workplaceType"]
    parsed = get_source("lever").parse(data)
    assert parsed.listings[0].location == "London, United Kingdom; Berlin, Germany (Remote)"
    assert parsed.listings[1].location == "Palo Alto, CA"


def test_fetch_uses_the_site_and_eu_host():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=PALANTIR.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        client = make_client(transport=httpx.MockTransport(handler))
        result = get_source("lever", board="palantir").fetch(client)
        get_source("lever", board="palantir", eu=True).fetch(client)
    assert [str(r.url) for r in requests] == [
        "https://api.lever.co/v0/postings/palantir?mode=json",
        "https://api.eu.lever.co/v0/postings/palantir?mode=json",
    ]
    assert len(result.result.listings) == 2
