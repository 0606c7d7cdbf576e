"""Himalayas: epoch-second dates, restrictions as location, time zones as tags, offset paging."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import stamina

from scraper import SOURCES, get_source
from scraper.himalayas import utc_label
from scraper.http import make_client

PAYLOAD = Path(__file__).parent / "fixtures" / "himalayas" / "himalayas_jobs_limit5.json"


def by_title(parsed, title):
    return next(listing for listing in parsed.listings if listing.title == title)


@pytest.fixture(scope="module")
def parsed():
    return get_source("himalayas").parse(PAYLOAD.read_bytes())


def test_field_mapping_with_epoch_seconds(parsed):
    assert len(parsed.listings) == 4 and parsed.skipped == []
    nvidia = by_title(parsed, "Senior System Software Engineer, NvSci")
    assert nvidia.raw["pubDate"] == 1783731382
    assert nvidia.posted_at == "2026-07-11T00:56:22+00:00"
    assert nvidia.company == "NVIDIA"
    assert nvidia.location == "Remote, Canada, United States"
    assert nvidia.salary == "$184k–$356.5k/year"
    assert nvidia.url == "https://himalayas.app/companies/nvidia/jobs/senior-system-software-engineer-nvsci"
    assert nvidia.source_id == "https://himalayas.app/companies/nvidia/jobs/senior-system-software-engineer-nvsci"


def test_time_zone_restrictions_become_tags(parsed):
    nvidia = by_title(parsed, "Senior System Software Engineer, NvSci")
    assert nvidia.raw["timezoneRestrictions"] == [-10, -9, -8, -7, -6, -5, -4, -3.5, 14]
    assert [t for t in nvidia.tags if t.startswith("UTC")] == [
        "UTC-10", "UTC-9", "UTC-8", "UTC-7", "UTC-6", "UTC-5", "UTC-4", "UTC-3:30", "UTC+14",
    ]
    binance = by_title(parsed, "Product Manager - Web3/ DeFi")
    assert [t for t in binance.tags if t.startswith("UTC")] == ["UTC+8"]
    assert binance.location == "Remote, Hong Kong, Singapore, Taiwan"
    assert binance.salary == ""


def test_hourly_salary_and_entities(parsed):
    mindrift = by_title(parsed, "Portfolio Manager - Freelance AI Trainer")
    assert mindrift.salary == "$50/hour"
    assert by_title(parsed, "Content & Marcom Specialist").company == "Ceragon Networks"


def test_no_restrictions_means_remote_anywhere():
    data = json.loads(PAYLOAD.read_bytes())
    data["jobs"][0]["locationRestrictions"] = []
    data["jobs"][1]["locationRestrictions"] = None
    assert [l.location for l in get_source("himalayas").parse(data).listings[:2]] == ["Remote", "Remote"]


@pytest.mark.parametrize(("offset", "label"), [(1, "UTC+1"), (-5, "UTC-5"), (0, "UTC+0"), (5.5, "UTC+5:30"), (99, ""), ("x", ""), (None, "")])
def test_utc_label(offset, label):
    assert utc_label(offset) == label


def test_attribution():
    assert (SOURCES["himalayas"].attribution, SOURCES["himalayas"].attribution_url) == ("Himalayas", "https://himalayas.app")


def test_fetch_pages_by_offset_of_twenty():
    requests = []

    def handler(request):
        requests.append(request)
        if request.url.params["offset"] == "40":
            return httpx.Response(200, json={"jobs": [], "offset": 40, "limit": 20, "totalCount": 100371})
        return httpx.Response(200, content=PAYLOAD.read_bytes())

    with stamina.set_testing(True, attempts=3, cap=True):
        result = get_source("himalayas").fetch(make_client(transport=httpx.MockTransport(handler)))
    assert [str(r.url) for r in requests] == [
        "https://himalayas.app/jobs/api?limit=20&offset=0",
        "https://himalayas.app/jobs/api?limit=20&offset=20",
        "https://himalayas.app/jobs/api?limit=20&offset=40",
    ]
    # The same recorded page served twice: duplicates collapse to one copy.
    assert len(result.result.listings) == 4
