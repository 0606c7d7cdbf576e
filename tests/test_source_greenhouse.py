"""Greenhouse: entity-escaped content becomes real HTML; bare, {"jobs"} and wrapped payloads."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import stamina

from scraper import get_source
from scraper.http import make_client

GH = Path(__file__).parent / "fixtures" / "greenhouse"
GITLAB = GH / "greenhouse_gitlab_content_trimmed3.json"
HELSING = GH / "greenhouse_helsing_trimmed.json"
CATAWIKI = GH / "greenhouse_catawiki_content_true_wrapped.json"


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


def test_field_mapping_and_real_html():
    parsed = get_source("greenhouse", board="gitlab").parse(GITLAB.read_bytes())
    assert len(parsed.listings) == 3 and parsed.skipped == []
    job = by_id(parsed, "8503792002")
    assert job.title == "Account Executive - Italy"
    assert job.company == "GitLab"
    assert job.location == "Remote, Italy"
    assert job.posted_at == "2026-04-17T09:58:03+00:00"
    assert job.url == "https://job-boards.greenhouse.io/gitlab/jobs/8503792002"
    assert job.tags == ["EMEA - Commercial"]
    assert job.raw["content"].startswith("&lt;div class=&quot;content-intro&quot;&gt;")
    assert job.description_html.startswith('<div class="content-intro"><p>GitLab is the intelligent orchestration platform')
    assert "&lt;" not in job.description_html and "&quot;" not in job.description_html


def test_helsing_board_with_meta_and_multi_city_location():
    parsed = get_source("greenhouse").parse(HELSING.read_bytes())
    research = by_id(parsed, "4911999101")
    assert research.title == "AI Research Engineer - 3D Computer Vision"
    assert research.location == "Berlin; London; Munich; Paris"
    assert research.url == "https://helsing.ai/jobs/4911999101?gh_jid=4911999101"
    assert research.description_html.startswith("<h2><strong>Who we are</strong></h2>")
    assert by_id(parsed, "4865187101").location == "Munich"


def test_wrapped_payload_and_company_names():
    parsed = get_source("greenhouse").parse(CATAWIKI.read_bytes())
    assert len(parsed.listings) == 50
    android = by_id(parsed, "6954117")
    assert (android.title, android.company, android.location) == ("Android Developer", "Catawiki", "Lisbon, Portugal")
    named = get_source("greenhouse", board="catawiki", company="Catawiki B.V.").parse(CATAWIKI.read_bytes())
    assert by_id(named, "6954117").company == "Catawiki B.V."


def test_bare_list_and_company_fallbacks():
    jobs = json.loads(GITLAB.read_bytes())["jobs"]
    for job in jobs:
        del job["company_name"]
    assert {l.company for l in get_source("greenhouse", board="gitlab").parse(jobs).listings} == {"Gitlab"}
    wrapped = {"company": "GitLab Inc.", "jobs": jobs}
    assert {l.company for l in get_source("greenhouse").parse(wrapped).listings} == {"GitLab Inc."}


def test_board_token_is_checked():
    with pytest.raises(ValueError, match="greenhouse: board must be a token"):
        get_source("greenhouse", board="../admin")
    with pytest.raises(ValueError, match=r"greenhouse: fetching needs a board, e.g. get_source\('greenhouse', board='acme'\)"):
        get_source("greenhouse").fetch(make_client())


def test_fetch_asks_for_content():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=GITLAB.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("greenhouse", board="gitlab").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [str(r.url) for r in requests] == ["https://boards-api.greenhouse.io/v1/boards/gitlab/jobs?content=true"]
    assert len(result.result.listings) == 3
