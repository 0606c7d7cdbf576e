"""Job sources: a registry of board parsers, each fetching through an injected httpx client."""

from __future__ import annotations

from typing import Any

from scraper.arbeitnow import Arbeitnow
from scraper.ashby import Ashby
from scraper.base import FetchResult, Listing, ParseResult, PayloadError, Source
from scraper.greenhouse import Greenhouse
from scraper.himalayas import Himalayas
from scraper.hn import HackerNews
from scraper.http import FetchError, make_client
from scraper.jobicy import Jobicy
from scraper.lever import Lever
from scraper.remoteok import RemoteOK
from scraper.remotive import Remotive
from scraper.workingnomads import WorkingNomads
from scraper.wwr import WeWorkRemotely

SOURCES: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (
        RemoteOK,
        Remotive,
        HackerNews,
        WeWorkRemotely,
        Greenhouse,
        Lever,
        Ashby,
        Arbeitnow,
        Himalayas,
        Jobicy,
        WorkingNomads,
    )
}

# Sources that need a `board` option (one instance per company board) to fetch.
BOARD_SOURCES = ("greenhouse", "lever", "ashby")


def get_source(name: str, **options: Any) -> Source:
    """An instance of the source called `name`, configured with `options` (e.g. board='acme')."""
    try:
        cls = SOURCES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    return cls(**options)


__all__ = [
    "BOARD_SOURCES",
    "SOURCES",
    "FetchError",
    "FetchResult",
    "Listing",
    "ParseResult",
    "PayloadError",
    "Source",
    "get_source",
    "make_client",
]
