"""Himalayas: remote-only jobs, 20 per page by offset."""

from __future__ import annotations

import math
from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import get, validators_for
from scraper.normalize import (
    clean_text,
    description_html,
    iso_utc,
    item_list,
    load_json,
    merge,
    parse_items,
    positive_int,
    require_id,
    require_text,
    salary_range,
    tag_list,
)

API_URL = "https://himalayas.app/jobs/api"
PAGE_SIZE = 20  # the API's maximum
DEFAULT_MAX_PAGES = 5


def utc_label(offset: Any) -> str:
    """'UTC+1', 'UTC-5', 'UTC+5:30' from an hour offset; '' for anything that is not one."""
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not math.isfinite(offset):
        return ""
    if not -14 <= offset <= 14:
        return ""
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(round(abs(offset) * 60), 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def _location(item: dict) -> str:
    # Every Himalayas job is remote; restrictions say where from.
    places = tag_list(item.get("locationRestrictions"))
    return "Remote, " + ", ".join(places) if places else "Remote"


class Himalayas(Source):
    """himalayas.app's public jobs API (credit and a link back are asked for)."""

    name = "himalayas"
    label = "Himalayas"
    attribution = "Himalayas"
    attribution_url = "https://himalayas.app"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from one page of the jobs API ({"jobs": [...], "offset", "limit", "totalCount"})."""
        return parse_items(self.name, item_list(load_json(payload, self.name), self.name), self._listing)

    def _listing(self, item: dict) -> Listing:
        zones = item.get("timezoneRestrictions")
        zone_tags = [utc_label(z) for z in zones] if isinstance(zones, list) else []
        return Listing(
            source=self.name,
            source_id=require_id(item, "guid", "applicationLink"),
            title=require_text(item, "title"),
            company=clean_text(item.get("companyName")),
            location=_location(item),
            url=clean_text(item.get("applicationLink")) or clean_text(item.get("guid")),
            description_html=description_html(item.get("description")),
            posted_at=iso_utc(item.get("pubDate")),
            salary=salary_range(item.get("minSalary"), item.get("maxSalary"), item.get("currency"), item.get("salaryPeriod")),
            tags=tag_list(item.get("categories"), item.get("employmentType"), zone_tags),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the newest pages (option `max_pages`, default 5) of 20 jobs each."""
        max_pages = positive_int(self.options.get("max_pages"), DEFAULT_MAX_PAGES)
        pages, kept, changed = [], {}, False
        for number in range(max_pages):
            url = str(httpx.URL(API_URL, params={"limit": PAGE_SIZE, "offset": number * PAGE_SIZE}))
            page = get(client, url, source=self.name, validators=validators_for(validators, url), timeout=self.timeout_s)
            if page.validators:
                kept[url] = page.validators
            if page.not_modified:
                break
            changed = True
            data = page.json()
            result = self.parse(data)
            pages.append(result)
            total = data.get("totalCount") if isinstance(data, dict) else None
            if not result.listings and not result.skipped:
                break
            if isinstance(total, int) and (number + 1) * PAGE_SIZE >= total:
                break
        return FetchResult(merge(pages), not_modified=not changed, validators=kept)

