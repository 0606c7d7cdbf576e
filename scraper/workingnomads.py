"""Working Nomads: remote jobs from the exposed-jobs feed."""

from __future__ import annotations

import re
from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import fetch_one
from scraper.normalize import (
    MissingField,
    clean_text,
    description_html,
    iso_utc,
    item_list,
    load_json,
    parse_items,
    require_text,
    tag_list,
)

API_URL = "https://www.workingnomads.com/api/exposed_jobs/"
_JOB_ID_RE = re.compile(r"/job/go/(\d+)")


def _job_id(url: str) -> str:
    # The feed has no id field; its job URLs carry one.
    match = _JOB_ID_RE.search(url)
    if match:
        return match.group(1)
    if url:
        return url
    raise MissingField("url")


class WorkingNomads(Source):
    """workingnomads.com's exposed jobs (credit with a link is asked for)."""

    name = "workingnomads"
    label = "Working Nomads"
    attribution = "Working Nomads"
    attribution_url = "https://www.workingnomads.com"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from the exposed-jobs array."""
        return parse_items(self.name, item_list(load_json(payload, self.name), self.name), self._listing)

    def _listing(self, item: dict) -> Listing:
        url = clean_text(item.get("url"))
        return Listing(
            source=self.name,
            source_id=_job_id(url),
            title=require_text(item, "title"),
            company=clean_text(item.get("company_name")),
            location=clean_text(item.get("location")),
            url=url,
            description_html=description_html(item.get("description")),
            posted_at=iso_utc(item.get("pub_date")),
            salary="",
            tags=tag_list([item.get("category_name")], item.get("tags")),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the current exposed jobs."""
        return fetch_one(self, client, API_URL, validators)
