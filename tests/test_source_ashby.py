"""Ashby: primary and secondary locations, null isRemote/workplaceType, compensation summary."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import stamina

from scraper import get_source
from scraper.http import make_client

ASHBY = Path(__file__).parent / "fixtures" / "ashby"
NOTION = ASHBY / "ashby_notion_trimmed3.json"
OPENAI = ASHBY / "ashby_openai_2jobs_apiVersion.json"


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


def test_field_mapping_and_secondary_locations():
    parsed = get_source("ashby", board="notion").parse(NOTION.read_bytes())
    assert len(parsed.listings) == 3 and parsed.skipped == []
    designer = by_id(parsed, "d177d052-ef57-4900-acf2-d58e9eded620")
    assert designer.title == "Product Designer"
    assert designer.company == "Notion"
    # isRemote is true but workplaceType says Hybrid: the precise field wins.
    assert designer.location == "San Francisco, California; New York, New York (Hybrid)"
    assert designer.posted_at == "2026-07-02T17:18:41+00:00"
    assert designer.url == "https://jobs.ashbyhq.com/notion/d177d052-ef57-4900-acf2-d58e9eded620"
    assert designer.description_html.startswith("<h1>Who We Are</h1>")
    assert designer.tags == ["Product Design", "FullTime"]


def test_null_remote_fields():
    parsed = get_source("ashby").parse(OPENAI.read_bytes())
    tpm = by_id(parsed, "8fb1615c-34bf-47c4-a1d1-b7b2f836bbd3")
    assert tpm.raw["isRemote"] is None and tpm.raw["workplaceType"] is None
    assert tpm.location == "San Francisco"
    assert tpm.company == "Openai"
    assert get_source("ashby", board="openai", company="OpenAI").parse(OPENAI.read_bytes()).listings[0].company == "OpenAI"


def test_is_remote_speaks_when_workplace_type_is_absent_and_unlisted_jobs_are_left_out():
    data = json.loads(OPENAI.read_bytes())
    data["jobs"][0]["isRemote"] = True
    data["jobs"][1]["isListed"] = False
    parsed = get_source("ashby").parse(data)
    assert [l.location for l in parsed.listings] == ["San Francisco (Remote)"]


def test_compensation_summary_becomes_the_salary():
    data = json.loads(NOTION.read_bytes())
    data["jobs"][0]["compensation"] = {
        "compensationTierSummary": "$150K – $200K • Offers Equity",
        "scrapeableCompensationSalarySummary": "$150K - $200K",
    }
    data["jobs"][1]["compensation"] = {"compensationTierSummary": "€90K – €110K", "scrapeableCompensationSalarySummary": None}
    parsed = get_source("ashby").parse(data)
    assert [l.salary for l in parsed.listings] == ["$150K - $200K", "€90K – €110K", ""]


def test_fetch_asks_for_compensation():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=NOTION.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("ashby", board="notion").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [str(r.url) for r in requests] == ["https://api.ashbyhq.com/posting-api/job-board/notion?includeCompensation=true"]
    assert len(result.result.listings) == 3
