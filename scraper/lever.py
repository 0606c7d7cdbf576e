"""Lever job sites: one instance per company site."""

from __future__ import annotations

from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import fetch_one
from scraper.normalize import (
    as_list,
    board_from_url,
    board_token,
    clean_text,
    description_html,
    iso_utc,
    item_list,
    load_json,
    need_board,
    parse_items,
    prettify_board,
    require_id,
    require_text,
    salary_range,
    tag_list,
    with_work_mode,
)

API_URL = "https://api.lever.co/v0/postings/{board}?mode=json"
EU_API_URL = "https://api.eu.lever.co/v0/postings/{board}?mode=json"
_MODES = {"remote": "Remote", "hybrid": "Hybrid"}


def _description(item: dict) -> str:
    """Lever splits a posting into description, titled lists and closing text: one HTML document."""
    parts = [description_html(item.get("description"))]
    for section in as_list(item.get("lists")):
        if not isinstance(section, dict):
            continue
        heading = clean_text(section.get("text"))
        content = description_html(section.get("content"))
        if heading:
            parts.append(f"<h3>{heading}</h3>")
        if content:
            parts.append(f"<ul>{content}</ul>")
    parts.append(description_html(item.get("additional")))
    return "\n".join(p for p in parts if p)


class Lever(Source):
    """A Lever site (option `board`, the name in jobs.lever.co/<site>; `eu=True` for EU-hosted sites)."""

    name = "lever"
    label = "Lever"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.board = board_token(options, self.name)
        self.company = clean_text(options.get("company"))

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a postings response (a bare list, or wrapped under 'postings'/'jobs'/'data')."""
        items = item_list(load_json(payload, self.name), self.name, keys=("postings", "jobs", "data"))
        return parse_items(self.name, items, self._listing)

    def _listing(self, item: dict) -> Listing:
        categories = item.get("categories") if isinstance(item.get("categories"), dict) else {}
        places = tag_list(categories.get("allLocations")) or tag_list([categories.get("location")])
        mode = _MODES.get(clean_text(item.get("workplaceType")).lower(), "")
        salary = item.get("salaryRange") if isinstance(item.get("salaryRange"), dict) else {}
        url = clean_text(item.get("hostedUrl")) or clean_text(item.get("applyUrl"))
        company = self.company or prettify_board(self.board or board_from_url(url, "jobs.lever.co"))
        return Listing(
            source=self.name,
            source_id=require_id(item, "id"),
            title=require_text(item, "text"),
            company=company,
            location=with_work_mode("; ".join(places), mode),
            url=url,
            description_html=_description(item),
            posted_at=iso_utc(item.get("createdAt")),
            salary=salary_range(salary.get("min"), salary.get("max"), salary.get("currency"), salary.get("interval")),
            tags=tag_list([categories.get("commitment"), categories.get("team"), categories.get("department")]),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the site's published postings."""
        template = EU_API_URL if self.options.get("eu") else API_URL
        return fetch_one(self, client, template.format(board=need_board(self.board, self.name)), validators)
