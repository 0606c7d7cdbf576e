"""Greenhouse job boards: one instance per company board token."""

from __future__ import annotations

from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import fetch_one
from scraper.normalize import (
    as_list,
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
    tag_list,
)

API_URL = "https://boards-api.greenhouse.io/v1/boards/{board}/jobs"


class Greenhouse(Source):
    """A Greenhouse board (option `board`, the token in boards.greenhouse.io/<token>; optional `company`)."""

    name = "greenhouse"
    label = "Greenhouse"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.board = board_token(options, self.name)
        self.company = clean_text(options.get("company"))

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a board's jobs response: {"jobs": [...]}, a bare list, or a {company, jobs} wrapper."""
        data = load_json(payload, self.name)
        wrapper_company = clean_text(data.get("company")) if isinstance(data, dict) else ""
        fallback = self.company or wrapper_company

        def build(item: dict) -> Listing:
            return self._listing(item, fallback)

        return parse_items(self.name, item_list(data, self.name), build)

    def _listing(self, item: dict, fallback_company: str) -> Listing:
        location = item.get("location")
        departments = [d.get("name") for d in as_list(item.get("departments")) if isinstance(d, dict)]
        return Listing(
            source=self.name,
            source_id=require_id(item, "id"),
            title=require_text(item, "title"),
            company=self.company or clean_text(item.get("company_name")) or fallback_company or prettify_board(self.board),
            location=clean_text(location.get("name")) if isinstance(location, dict) else clean_text(location),
            url=clean_text(item.get("absolute_url")),
            # `content` is entity-escaped HTML (only with ?content=true).
            description_html=description_html(item.get("content")),
            posted_at=iso_utc(item.get("first_published")) or iso_utc(item.get("updated_at")),
            salary="",
            tags=tag_list(departments),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the board's jobs with their descriptions."""
        url = API_URL.format(board=need_board(self.board, self.name)) + "?content=true"
        return fetch_one(self, client, url, validators)
