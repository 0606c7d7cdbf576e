"""Remote OK: one JSON array, element 0 a legal notice, text often mojibake."""

from __future__ import annotations

from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import fetch_one
from scraper.normalize import (
    clean_text,
    description_html,
    fix_literal_escapes,
    fix_mojibake,
    iso_utc,
    item_list,
    load_json,
    parse_items,
    require_id,
    require_text,
    salary_range,
    tag_list,
)

API_URL = "https://remoteok.com/api"


def _repair(value: Any) -> Any:
    """Undo Remote OK's double-encoding: escaped escapes first, then UTF-8 read as Latin-1."""
    return fix_mojibake(fix_literal_escapes(value))


class RemoteOK(Source):
    """remoteok.com's public API (credit and a followed link back are required)."""

    name = "remoteok"
    label = "Remote OK"
    attribution = "Remote OK"
    attribution_url = "https://remoteok.com"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a Remote OK API response; the legal notice element is not a job."""
        items = item_list(load_json(payload, self.name), self.name)
        start = 1 if items and isinstance(items[0], dict) and "legal" in items[0] else 0
        return parse_items(self.name, items[start:], self._listing, start=start)

    def _listing(self, item: dict) -> Listing:
        raw_tags = item.get("tags")
        return Listing(
            source=self.name,
            source_id=require_id(item, "id", "slug"),
            title=require_text(item, "position", fix=_repair),
            company=clean_text(_repair(item.get("company"))),
            location=clean_text(_repair(item.get("location"))),
            url=clean_text(item.get("url")) or clean_text(item.get("apply_url")),
            description_html=description_html(_repair(item.get("description"))),
            posted_at=iso_utc(item.get("epoch")) or iso_utc(item.get("date")),
            salary=salary_range(item.get("salary_min"), item.get("salary_max"), "USD"),
            tags=tag_list([_repair(t) for t in raw_tags] if isinstance(raw_tags, list) else raw_tags),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the current Remote OK feed."""
        return fetch_one(self, client, API_URL, validators)
