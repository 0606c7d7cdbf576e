"""What every source shares: the Listing record and the Source interface."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx


class PayloadError(ValueError):
    """A payload that cannot be read at all (not JSON, wrong top-level shape)."""


@dataclass
class Listing:
    """One job as a source published it, with fields normalized for display and search."""

    source: str
    source_id: str
    title: str
    company: str = ""
    location: str = ""
    url: str = ""
    description_html: str = ""
    posted_at: str | None = None  # ISO 8601, UTC, seconds precision
    salary: str = ""
    tags: list[str] = field(default_factory=list)
    raw: Any = None  # the item exactly as published, stored untouched


@dataclass
class ParseResult:
    """Listings read from a payload, and why any items were skipped."""

    listings: list[Listing] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class FetchResult:
    """What one fetch brought back: the parsed listings, or word that nothing changed."""

    result: ParseResult = field(default_factory=ParseResult)
    # True when every request answered 304 Not Modified: nothing to upsert.
    not_modified: bool = False
    # Conditional-request validators to send next time, per URL:
    # {url: {"etag": ..., "last_modified": ...}}.
    validators: dict = field(default_factory=dict)


class Source(abc.ABC):
    """A job board: a pure parser plus a fetch through an injected httpx client."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    # Shown beside listings where the board's terms ask for credit and a link back.
    attribution: ClassVar[str | None] = None
    attribution_url: ClassVar[str | None] = None
    # The fewest seconds between two fetches (some boards ask for a few calls a day).
    min_interval_s: ClassVar[int] = 3600
    timeout_s: ClassVar[float] = 30.0

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def parse(self, payload: Any) -> ParseResult:
        """Read listings from a payload (bytes, str or decoded JSON); never touches the network."""

    @abc.abstractmethod
    def fetch(self, client: httpx.Client, validators: dict | None = None) -> FetchResult:
        """Download the board's current listings with `client` and parse them.

        `validators` are the ETag/Last-Modified values returned by the previous fetch.
        """
