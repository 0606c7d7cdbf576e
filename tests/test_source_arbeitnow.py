"""Arbeitnow: epoch-second dates, the remote flag spelled into the location, links.next paging."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import stamina

from scraper import SOURCES, get_source
from scraper.http import make_client

AN = Path(__file__).parent / "fixtures" / "arbeitnow"
TRIMMED = AN / "arbeitnow_job-board-api_trimmed3.json"
PAGE1 = AN / "arbeitnow_page1_raw_first2_plus_tail.json"


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


def test_field_mapping():
    parsed = get_source("arbeitnow").parse(TRIMMED.read_bytes())
    assert len(parsed.listings) == 3 and parsed.skipped == []
    intern = by_id(parsed, "praktikant-marketing-event-student-in-offenburg-442686")
    assert intern.title == "Praktikant Marketing/Event (m/w/d) - Student: in"
    assert intern.company == "Georg Kuhn GmbH"
    assert intern.location == "Offenburg"
    assert intern.posted_at == "2026-08-15T15:30:24+00:00"
    assert intern.url == "https://www.arbeitnow.com/jobs/companies/georg-kuhn-gmbh/praktikant-marketing-event-student-in-offenburg-442686"
    assert intern.tags == ["Marketing and Communication"]
    veeam = by_id(parsed, "remote-senior-account-executive-enterprise-165386")
    assert veeam.location == "Remote"
    assert veeam.description_html.startswith('<div class="content-intro">')


def test_remote_flag_is_added_to_a_city_location_and_raw_keeps_the_original():
    parsed = get_source("arbeitnow").parse(PAGE1.read_bytes())
    munich = by_id(parsed, "pflichtpraktikant-kommunikationsdesign-ux-ui-design-munich-186909")
    assert munich.raw["remote"] is True and munich.raw["location"] == "Munich"
    assert munich.location == "Munich (Remote)"
    assert munich.company == "energized& Company GmbH"
    assert munich.title == "Pflichtpraktikant Kommunikationsdesign & UX/UI-Design (m/w/d)"
    assert munich.tags == ["Remote", "IT", "Internship"]
    assert by_id(parsed, "finance-controlling-analyst-frankfurt-am-main-244541").location == "Frankfurt am Main"


def test_attribution():
    assert (SOURCES["arbeitnow"].attribution, SOURCES["arbeitnow"].attribution_url) == ("Arbeitnow", "https://www.arbeitnow.com")


def serve(pages):
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=pages[request.url.params.get("page", "1")])

    return requests, make_client(transport=httpx.MockTransport(handler))


def test_fetch_follows_links_next_up_to_the_page_limit():
    requests, client = serve({"1": PAGE1.read_bytes(), "2": TRIMMED.read_bytes()})
    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("arbeitnow").fetch(client)
    assert [str(r.url) for r in requests] == [
        "https://www.arbeitnow.com/api/job-board-api",
        "https://www.arbeitnow.com/api/job-board-api?page=2",
    ]
    assert len(result.result.listings) == 5

    requests, client = serve({"1": PAGE1.read_bytes(), "2": TRIMMED.read_bytes()})
    with stamina.set_testing(True, attempts=3, cap=True):
        one = get_source("arbeitnow", max_pages=1).fetch(client)
    assert len(requests) == 1 and len(one.result.listings) == 2


def test_fetch_never_follows_a_next_link_to_another_host():
    page = json.loads(PAGE1.read_bytes())
    page["links"]["next"] = "https://elsewhere.example/api?page=2"
    requests, client = serve({"1": json.dumps(page).encode()})
    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("arbeitnow").fetch(client)
    assert len(requests) == 1 and len(result.result.listings) == 2
