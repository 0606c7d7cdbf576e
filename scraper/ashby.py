"""Ashby job boards: one instance per organization."""

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
    tag_list,
    with_work_mode,
)

API_URL = "https://api.ashbyhq.com/posting-api/job-board/{board}?includeCompensation=true"
_MODES = {"remote": "Remote", "hybrid": "Hybrid"}


def _work_mode(item: dict) -> str:
    # workplaceType is the precise field; isRemote is older and may be null or
    # true for hybrid jobs, so it only speaks when workplaceType is absent.
    workplace = clean_text(item.get("workplaceType")).lower()
    if workplace:
        return _MODES.get(workplace, "")
    return "Remote" if item.get("isRemote") is True else ""


def _salary(item: dict) -> str:
    compensation = item.get("compensation")
    if not isinstance(compensation, dict):
        return ""
    return clean_text(compensation.get("scrapeableCompensationSalarySummary")) or clean_text(
        compensation.get("compensationTierSummary")
    )


class Ashby(Source):
    """An Ashby board (option `board`, the org in jobs.ashbyhq.com/<org>; optional `company`)."""

    name = "ashby"
    label = "Ashby"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.board = board_token(options, self.name)
        self.company = clean_text(options.get("company"))

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a job-board response ({"jobs": [...]} or a bare list); unlisted jobs are left out."""
        return parse_items(self.name, item_list(load_json(payload, self.name), self.name), self._listing)

    def _listing(self, item: dict) -> Listing | None:
        if item.get("isListed") is False:
            return None
        secondary = [s.get("location") for s in as_list(item.get("secondaryLocations")) if isinstance(s, dict)]
        places = tag_list([item.get("location")], secondary)
        url = clean_text(item.get("jobUrl")) or clean_text(item.get("applyUrl"))
        company = self.company or prettify_board(self.board or board_from_url(url, "jobs.ashbyhq.com"))
        return Listing(
            source=self.name,
            source_id=require_id(item, "id"),
            title=require_text(item, "title"),
            company=company,
            location=with_work_mode("; ".join(places), _work_mode(item)),
            url=url,
            description_html=description_html(item.get("descriptionHtml")),
            posted_at=iso_utc(item.get("publishedAt")),
            salary=_salary(item),
            tags=tag_list([item.get("department"), item.get("team"), item.get("employmentType")]),
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the organization's published jobs with compensation."""
        return fetch_one(self, client, API_URL.format(board=need_board(self.board, self.name)), validators)
