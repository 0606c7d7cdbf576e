"""Arbeitnow: jobs in Germany and remote, paginated through links.next."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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
    tag_list,
    with_work_mode,
)

API_URL = "https://www.arbeitnow.com/api/job-board-api"
# A page holds a few hundred jobs; the newest pages are what changes hourly.
DEFAULT_MAX_PAGES = 3


class Arbeitnow(Source):
    """arbeitnow.com's free job-board API (a link back is asked for)."""

    name = "arbeitnow"
    label = "Arbeitnow"
    attribution = "Arbeitnow"
    attribution_url = "https://www.arbeitnow.com"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from one page of the job-board API ({"data": [...], "links", "meta"})."""
        return parse_items(self.name, item_list(load_json(payload, self.name), self.name, keys=("data",)), self._listing)

    def _listing(self, item: dict) -> Listing:
        location = clean_text(item.get("location"))
        # The location flag reads text; a remote job whose location is only a city
        # would look on-site without the board's `remote` flag spelled out.
        if item.get("remote") is True:
            location = with_work_mode(location, "Remote")
        return Listing(
            source=self.name,
            source_id=require_id(item, "slug"),
            title=require_text(item, "title"),
            company=clean_text(item.get("company_name")),
            location=location,
            url=clean_text(item.get("url")),
            description_html=description_html(item.get("description")),
            posted_at=iso_utc(item.get("created_at")),
            salary="",
            tags=tag_list(item.get("tags"), item.get("job_types")),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the newest pages (option `max_pages`, default 3), following links.next on the same host."""
        max_pages = positive_int(self.options.get("max_pages"), DEFAULT_MAX_PAGES)
        url: str | None = API_URL
        pages, kept, changed = [], {}, False
        for _ in range(max_pages):
            page = get(client, url, source=self.name, validators=validators_for(validators, url), timeout=self.timeout_s)
            if page.validators:
                kept[url] = page.validators
            if page.not_modified:
                # The first page is newest-first: unchanged means nothing new behind it either.
                break
            changed = True
            data = page.json()
            pages.append(self.parse(data))
            url = _next_link(data)
            if not url:
                break
        return FetchResult(merge(pages), not_modified=not changed, validators=kept)


def _next_link(data: Any) -> str | None:
    links = data.get("links") if isinstance(data, dict) else None
    following = links.get("next") if isinstance(links, dict) else None
    if not isinstance(following, str):
        return None
    # Never let a payload send us to another host.
    return following if urlsplit(following).netloc == urlsplit(API_URL).netloc else None

