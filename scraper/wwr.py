"""We Work Remotely: RSS feeds whose item titles read 'Company: Role'."""

from __future__ import annotations

import io
import time
from typing import Any

import feedparser
import httpx

from scraper.base import FetchResult, Listing, ParseResult, PayloadError, Source
from scraper.http import get, parse_page, validators_for
from scraper.normalize import (
    remote_board_location,
    as_list,
    clean_text,
    description_html,
    iso_utc,
    merge,
    parse_items,
    require_id,
    require_text,
    tag_list,
)

BASE_URL = "https://weworkremotely.com"
DEFAULT_FEEDS = ("/remote-jobs.rss",)


def _json_safe(value: Any) -> Any:
    """An entry's fields as plain JSON values (feedparser adds struct_time dates we do not keep)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, (list, tuple)) and not isinstance(value, time.struct_time):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _entries(payload: Any, source: str) -> list:
    if isinstance(payload, dict) and isinstance(payload.get("entries"), list):
        return payload["entries"]
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise PayloadError(f"{source}: expected RSS as bytes or text; got {type(payload).__name__}")
    # A file object, so feedparser never reads the payload as a URL or a file name;
    # sanitizing is the dashboard's job at render time.
    try:
        feed = feedparser.parse(io.BytesIO(bytes(payload)), sanitize_html=False, resolve_relative_uris=False)
    except (ValueError, LookupError) as exc:
        # feedparser trusts the encoding an XML declaration names; a bogus one makes it raise.
        raise PayloadError(f"{source}: payload is not a readable RSS feed ({type(exc).__name__}: {exc})") from exc
    if not feed.get("version") and not feed.entries:
        reason = feed.get("bozo_exception") or "no RSS or Atom element"
        raise PayloadError(f"{source}: payload is not an RSS feed ({reason})")
    return list(feed.entries)


class WeWorkRemotely(Source):
    """weworkremotely.com RSS, the whole board or the category feeds in option `feeds`."""

    name = "wwr"
    label = "We Work Remotely"
    attribution = "We Work Remotely"
    attribution_url = "https://weworkremotely.com"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from a WWR RSS document (bytes or text) or an already parsed feed."""
        return parse_items(self.name, _entries(payload, self.name), self._listing)

    def _listing(self, entry: dict) -> Listing:
        heading = require_text(entry, "title")
        company, _, role = heading.partition(": ")
        if not role:
            company, role = "", heading
        # `region` is the hiring restriction on this remote-only board; the newer
        # `state`/`country` hold the company's headquarters, not a job location.
        location = remote_board_location(clean_text(entry.get("region")))
        categories = [t.get("term") for t in as_list(entry.get("tags")) if isinstance(t, dict)]
        return Listing(
            source=self.name,
            source_id=require_id(entry, "id", "link"),
            title=role.strip(),
            company=company.strip(),
            location=location,
            url=clean_text(entry.get("link")) or clean_text(entry.get("id")),
            description_html=description_html(entry.get("summary") or entry.get("description")),
            posted_at=iso_utc(entry.get("published")),
            salary="",
            tags=tag_list(categories, entry.get("type"), entry.get("skills")),
            raw=_json_safe(entry),
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download each configured feed; unchanged (304) feeds are skipped."""
        feeds = self.options.get("feeds") or DEFAULT_FEEDS
        if isinstance(feeds, str):
            feeds = [feeds]
        pages, kept, changed = [], {}, False
        for feed in feeds:
            url = feed if str(feed).startswith("https://") else BASE_URL + "/" + str(feed).lstrip("/")
            page = get(client, url, source=self.name, validators=validators_for(validators, url), timeout=self.timeout_s)
            if page.validators:
                kept[url] = page.validators
            if not page.not_modified:
                changed = True
                pages.append(parse_page(self, page))
        return FetchResult(merge(pages), not_modified=not changed, validators=kept)
