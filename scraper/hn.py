"""Hacker News 'Ask HN: Who is hiring?': top-level comments of the monthly thread, via Algolia."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from scraper.base import FetchResult, Listing, ParseResult, PayloadError, Source
from scraper.http import get, parse_page, validators_for
from scraper.normalize import as_id, as_list, clean_text, iso_utc, load_json, parse_items, require_id

ALGOLIA = "https://hn.algolia.com/api/v1/"
ITEM_URL = "https://news.ycombinator.com/item?id={}"
# Algolia caps one query at 1,000 hits; a month's thread has fewer top-level posts.
HITS_PER_PAGE = 1000

# ---------------------------------------------------------------- first-line heuristics

_ROLE_RE = re.compile(
    r"\b(engineer|engineering|developer|dev|programmer|architect|scientist|researcher|designer|manager|"
    r"director|head of|lead|leads|vp|cto|cfo|coo|sre|devops|mlops|analyst|advocate|specialist|consultant|"
    r"intern|internship|administrator|admin|writer|editor|recruiter|operator|technician|marketer|"
    r"accountant|counsel|attorney|representative|executive|associate|coordinator|strategist|owner|"
    r"founding|staff|principal|full[- ]?stack|front[- ]?end|back[- ]?end|roles?|positions?)s?\b",
    re.I,
)
_SALARY_RE = re.compile(
    r"[$€£]|\b\d+(?:[.,]\d+)?\s*[kK]\b|\b\d{2,3}[kK]\+|\b(salary|equity|compensation|usd|eur|gbp|ote)\b", re.I
)
_TYPE_RE = re.compile(
    r"\b(full[- ]?time|part[- ]?time|contract(or)?|permanent|freelance|temporary|fte|internship|"
    r"contract[- ]to[- ]hire|seasonal)\b",
    re.I,
)
_PLACES = (
    "remote|onsite|on-site|on site|hybrid|in-office|in office|office|relocation|anywhere|worldwide|global|"
    "us|usa|u\\.s\\.|united states|uk|u\\.k\\.|united kingdom|eu|europe|emea|apac|latam|americas|"
    "north america|south america|asia|africa|canada|mexico|brazil|germany|france|spain|portugal|italy|"
    "netherlands|switzerland|austria|ireland|poland|sweden|norway|denmark|finland|israel|india|japan|"
    "singapore|australia|new zealand|nz|dach|cet|cest|utc|gmt|est|pst|et|pt|timezone|time zone|"
    "sf|sfo|nyc|la|bay area|new york|san francisco|los angeles|seattle|boston|austin|chicago|denver|"
    "atlanta|miami|toronto|vancouver|montreal|london|berlin|munich|hamburg|paris|amsterdam|dublin|zurich|"
    "stockholm|copenhagen|lisbon|madrid|barcelona|warsaw|prague|vienna|tel aviv|bangalore|bengaluru|"
    "tokyo|sydney|melbourne|auckland|wellington|palo alto|mountain view|menlo park|san jose|oakland|"
    "brooklyn|washington|dc|philadelphia|pittsburgh|portland|salt lake|raleigh|dallas|houston|san diego"
)
_PLACE_RE = re.compile(rf"(?<![\w-])({_PLACES})(?![\w-])", re.I)
# 'Austin, TX' style city + US state or country code.
_CITY_CODE_RE = re.compile(r"\b[A-Z][a-zA-Z .'-]+,\s*[A-Z]{2}\b")
_URL_RE = re.compile(r"https?://|www\.|\b[\w-]+\.(com|io|ai|co|dev|org|net)(/|\b)", re.I)
_VISA_RE = re.compile(r"\bvisa\b", re.I)
_HIRING_RE = re.compile(r"^(.{2,60}?)\s+(?:is|are)\s+(?:hiring|looking|seeking|searching|recruiting)\b", re.I)
_LIST_PREFIX_RE = re.compile(r"^(open roles|open positions|roles|positions|hiring|we're hiring|we are hiring)\s*:\s*", re.I)
_TAG_RE = re.compile(r"<[^>]+>")
_BREAK_RE = re.compile(r"<p\b[^>]*>|<br\s*/?>|\n", re.I)
_PAREN_RE = re.compile(r"\s*\(([^)]*)\)\s*$")


@dataclass
class FirstLine:
    """What the loose 'Company | Role | Location | Type | Salary' line of a post says."""

    company: str = ""
    title: str = ""
    location: str = ""
    salary: str = ""
    tags: list[str] = field(default_factory=list)


def _plain_lines(comment_html: str) -> list[str]:
    lines = []
    for chunk in _BREAK_RE.split(comment_html):
        text = re.sub(r"\s+", " ", html.unescape(_TAG_RE.sub("", chunk))).strip()
        if text:
            lines.append(text)
    return lines


def _split_parts(line: str) -> list[str]:
    for separator in (r"\|", r"\s+[—–]\s+", r"\s+-\s+"):
        parts = [p.strip() for p in re.split(separator, line) if p.strip()]
        if len(parts) > 1:
            return parts
    return [line]


def _is_location(part: str) -> bool:
    return bool(_PLACE_RE.search(part) or _CITY_CODE_RE.search(part))


def _first_sentence(text: str, limit: int = 100) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit].rsplit(" ", 1)[0] + "…"


def parse_first_line(comment_html: str) -> FirstLine:
    """Company, role, location, salary and job types from the first line of a hiring post."""
    lines = _plain_lines(comment_html)
    if not lines:
        return FirstLine()
    parts = _split_parts(lines[0])
    found = FirstLine()
    if len(parts) == 1:
        line = parts[0]
        hiring = _HIRING_RE.match(line)
        if hiring:
            found.company = hiring.group(1)
            found.title = _first_sentence(line)
        elif len(line) <= 60:
            found.company = line
            if len(lines) > 1 and len(lines[1]) <= 120:
                found.title = _LIST_PREFIX_RE.sub("", lines[1]).lstrip("•-* ").strip()
        else:
            found.title = _first_sentence(line)
        return found

    company = parts[0]
    locations: list[str] = []
    # 'PrairieLearn (Remote US)': a place in the company's parentheses is the location.
    paren = _PAREN_RE.search(company)
    if paren and _is_location(paren.group(1)):
        locations.append(paren.group(1).strip())
        company = company[: paren.start()].strip()
    found.company = company

    roles: list[str] = []
    others: list[str] = []
    salaries: list[str] = []
    for part in parts[1:]:
        if _URL_RE.search(part):
            continue
        is_role = bool(_ROLE_RE.search(part)) and not _TYPE_RE.fullmatch(part)
        if _SALARY_RE.search(part) and not is_role:
            salaries.append(part)
        elif is_role:
            roles.append(part)
        elif _TYPE_RE.search(part):
            found.tags.append(part)
        elif _is_location(part):
            locations.append(part)
        elif _VISA_RE.search(part):
            found.tags.append(part)
        else:
            others.append(part)
    found.title = " / ".join(roles) if roles else (others[0] if others else "")
    found.location = "; ".join(locations)
    found.salary = "; ".join(salaries)
    return found


# ---------------------------------------------------------------- source


def _comments(data: Any, source: str) -> tuple[str | None, list, bool]:
    """(story id, comment items, whether every item is already top-level) for any accepted shape."""
    if isinstance(data, list):
        return None, data, False
    if not isinstance(data, dict):
        raise PayloadError(f"{source}: expected an Algolia search response or item tree; got {type(data).__name__}")
    if isinstance(data.get("hits"), list):
        return as_id(data.get("story_id")), data["hits"], False
    if isinstance(data.get("children"), list):
        # items/<id>: the story's direct children are exactly its top-level comments.
        return as_id(data.get("id")), data["children"], True
    found = ", ".join(repr(k) for k in list(data)[:8]) or "no keys"
    raise PayloadError(f"{source}: expected an object with 'hits' or 'children'; got an object with {found}")


class HackerNews(Source):
    """The monthly 'Who is hiring?' thread; each top-level comment is one post."""

    name = "hn"
    label = "Hacker News: Who is hiring?"

    def parse(self, payload: Any) -> ParseResult:
        """Listings from Algolia comment hits, the {story_id, hits} reshaping, or an items/<id> tree."""
        story_id, items, all_top_level = _comments(load_json(payload, self.name), self.name)
        story_id = as_id(self.options.get("story_id")) or story_id

        def build(item: dict) -> Listing | None:
            return self._listing(item, story_id, all_top_level)

        return parse_items(self.name, items, build)

    def _listing(self, item: dict, story_id: str | None, all_top_level: bool) -> Listing | None:
        if not all_top_level:
            parent = as_id(item.get("parent_id"))
            thread = story_id or as_id(item.get("story_id"))
            # Replies and story hits are not job posts.
            if parent is None or parent != thread:
                return None
        if item.get("type") not in (None, "comment"):
            return None
        text = item.get("comment_text") if "comment_text" in item else item.get("text")
        if not isinstance(text, str) or not text.strip() or item.get("deleted") or item.get("dead"):
            return None
        object_id = require_id(item, "objectID", "id")
        first = parse_first_line(text)
        return Listing(
            source=self.name,
            source_id=object_id,
            title=first.title or first.company or _first_sentence(clean_text(_TAG_RE.sub(" ", text))),
            company=first.company,
            location=first.location,
            url=ITEM_URL.format(object_id),
            description_html=text.strip(),
            posted_at=iso_utc(item.get("created_at_i")) or iso_utc(item.get("created_at")),
            salary=first.salary,
            tags=first.tags,
            raw=item,
        )

    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Find the newest 'Who is hiring?' story by whoishiring, then read its comments."""
        story_id = as_id(self.options.get("story_id")) or self._latest_story(client)
        url = str(httpx.URL(ALGOLIA + "search", params={"tags": f"comment,story_{story_id}", "hitsPerPage": HITS_PER_PAGE}))
        page = get(client, url, source=self.name, validators=validators_for(validators, url), timeout=self.timeout_s)
        kept = {url: page.validators} if page.validators else {}
        if page.not_modified:
            return FetchResult(ParseResult(), not_modified=True, validators=kept)
        # Every hit of this search carries the story's id, so the parse needs no hint.
        return FetchResult(parse_page(self, page), validators=kept)

    def _latest_story(self, client: httpx.Client) -> str:
        url = str(httpx.URL(ALGOLIA + "search_by_date", params={"tags": "story,author_whoishiring", "hitsPerPage": 20}))
        data = get(client, url, source=self.name, timeout=self.timeout_s).json()
        hits = data.get("hits") if isinstance(data, dict) else None
        stories = [
            h for h in as_list(hits)
            if isinstance(h, dict) and "who is hiring" in clean_text(h.get("title")).lower() and as_id(h.get("objectID"))
        ]
        if not stories:
            raise PayloadError(f"{self.name}: no 'Who is hiring?' story by whoishiring in {url}")
        newest = max(stories, key=lambda h: h.get("created_at_i") if isinstance(h.get("created_at_i"), int) else 0)
        return as_id(newest["objectID"])
