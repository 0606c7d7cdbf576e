"""Jobicy: remote jobs with a geography and an industry."""

from __future__ import annotations

from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import fetch_one
from scraper.normalize import (
    clean_text,
    description_html,
    iso_utc,
    item_list,
    load_json,
    parse_items,
    positive_int,
    require_id,
    require_text,
    salary_range,
    tag_list,
)

API_URL = "https://jobicy.com/api/v2/remote-jobs"


class Jobicy(Source):
    """jobicy.com's public API (credit with a direct link is asked for)."""

    name = "jobicy"
    label = "Jobicy"
    attribution = "Jobicy"
    attribution_url = "https://jobicy.com"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a v2 remote-jobs response ({"jobs": [...], "jobCount", ...})."""
        return parse_items(self.name, item_list(load_json(payload, self.name), self.name), self._listing)

    def _listing(self, item: dict) -> Listing:
        geo = clean_text(item.get("jobGeo"))
        return Listing(
            source=self.name,
            source_id=require_id(item, "id", "jobSlug"),
            title=require_text(item, "jobTitle"),
            company=clean_text(item.get("companyName")),
            # Every Jobicy job is remote; jobGeo is where from ("Anywhere" when open).
            location=f"Remote, {geo}" if geo else "Remote",
            url=clean_text(item.get("url")),
            description_html=description_html(item.get("jobDescription")),
            posted_at=iso_utc(item.get("pubDate")),
            salary=salary_range(item.get("salaryMin"), item.get("salaryMax"), item.get("salaryCurrency"), item.get("salaryPeriod")),
            # jobLevel "Any" says nothing.
            tags=[t for t in tag_list(item.get("jobIndustry"), item.get("jobType"), [item.get("jobLevel")]) if t != "Any"],
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the newest jobs (option `count`, default 50)."""
        count = positive_int(self.options.get("count"), 50)
        return fetch_one(self, client, str(httpx.URL(API_URL, params={"count": count})), validators)
