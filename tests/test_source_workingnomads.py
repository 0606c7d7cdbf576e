"""Working Nomads (optional source): ids from job URLs, comma-separated tags, offset dates."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import stamina

from scraper import get_source
from scraper.http import make_client

PAYLOAD = Path(__file__).parent / "fixtures" / "workingnomads" / "workingnomads_exposed_jobs.json"


def test_field_mapping():
    parsed = get_source("workingnomads").parse(PAYLOAD.read_bytes())
    assert [l.source_id for l in parsed.listings] == ["1719512", "1719508", "1713292", "1712616"]
    analyst = parsed.listings[0]
    assert (analyst.title, analyst.company, analyst.location) == ("AI Content Analyst (No Experience Required)", "Peroptyx", "Australia")
    assert analyst.posted_at == "2026-07-10T13:24:39+00:00"
    assert analyst.tags == ["Administration", "analyst", "english", "media", "researcher"]
    assert parsed.listings[3].location == "Japan - Remote"


def test_item_without_url_or_title_is_skipped():
    data = json.loads(PAYLOAD.read_bytes())
    del data[0]["url"]
    data[1]["title"] = ""
    parsed = get_source("workingnomads").parse(data)
    assert len(parsed.listings) == 2
    assert parsed.skipped == ["workingnomads item 0: missing url", "workingnomads item 1: missing title"]


def test_fetch():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=PAYLOAD.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("workingnomads").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [str(r.url) for r in requests] == ["https://www.workingnomads.com/api/exposed_jobs/"]
    assert len(result.result.listings) == 4
