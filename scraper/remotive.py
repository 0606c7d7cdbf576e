"""Remotive: remote jobs, delayed a day, at most a few calls a day."""

from __future__ import annotations

from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import fetch_one
from scraper.normalize import (
    remote_board_location,
    clean_text,
    description_html,
    iso_utc,
    item_list,
    load_json,
    parse_items,
    require_id,
    require_text,
    tag_list,
)

API_URL = "https://remotive.com/api/remote-jobs"


class Remotive(Source):
    """remotive.com's public API (credit and a link back are required)."""

    name = "remotive"
    label = "Remotive"
    attribution = "Remotive"
    attribution_url = "https://remotive.com"
    # The terms advise about four requests a day; the data changes no faster.
    min_interval_s = 6 * 3600

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a Remotive response; notice keys ('00-warning', 'job-count') are ignored."""
        return parse_items(self.name, item_list(load_json(payload, self.name), self.name), self._listing)

    def _listing(self, item: dict) -> Listing:
        return Listing(
            source=self.name,
            source_id=require_id(item, "id"),
            title=require_text(item, "title"),
            company=clean_text(item.get("company_name")),
            location=remote_board_location(clean_text(item.get("candidate_required_location"))),
            url=clean_text(item.get("url")),
            # The trailing tracking <img> stays: the dashboard's sanitizer drops images.
            description_html=description_html(item.get("description")),
            posted_at=iso_utc(item.get("publication_date")),
            salary=clean_text(item.get("salary")),
            tags=tag_list(item.get("tags")),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download Remotive's current jobs, narrowed by the `category`, `search` and `limit` options."""
        params = {k: str(self.options[k]) for k in ("category", "search", "limit") if self.options.get(k)}
        url = str(httpx.URL(API_URL, params=params)) if params else API_URL
        return fetch_one(self, client, url, validators)
