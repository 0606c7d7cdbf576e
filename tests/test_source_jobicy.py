"""Jobicy (optional source): geography as a remote location, salary fields, entity tags."""

from __future__ import annotations

from pathlib import Path

import httpx
import stamina

from scraper import SOURCES, get_source
from scraper.http import make_client

PAYLOAD = Path(__file__).parent / "fixtures" / "jobicy" / "jobicy_v2_remote-jobs.json"


def test_field_mapping():
    parsed = get_source("jobicy").parse(PAYLOAD.read_bytes())
    assert len(parsed.listings) == 4 and parsed.skipped == []
    mozilla = parsed.listings[0]
    assert (mozilla.source_id, mozilla.title, mozilla.company) == ("145880", "Senior Software Engineer (Contract)", "Mozilla")
    assert mozilla.location == "Remote, Germany"
    assert mozilla.posted_at == "2026-07-10T20:00:05+00:00"
    assert mozilla.url == "https://jobicy.com/jobs/145880-senior-software-engineer-contract"
    revenuecat = parsed.listings[3]
    assert revenuecat.salary == "$151k+/year"
    assert revenuecat.location == "Remote, EMEA, LATAM, Canada, USA"
    assert revenuecat.tags == ["Marketing & Sales", "Full-Time", "Senior"]
    assert "Any" not in parsed.listings[1].tags
    assert SOURCES["jobicy"].attribution_url == "https://jobicy.com"


def test_fetch():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=PAYLOAD.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("jobicy").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [str(r.url) for r in requests] == ["https://jobicy.com/api/v2/remote-jobs?count=50"]
    assert len(result.result.listings) == 4
