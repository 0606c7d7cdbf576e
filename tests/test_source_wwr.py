"""We Work Remotely: RSS via feedparser, 'Company: Role' titles, region as location."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import httpx
import pytest
import stamina

from scraper import SOURCES, get_source
from scraper.base import PayloadError
from scraper.http import make_client

WWR = Path(__file__).parent / "fixtures" / "wwr"
NEW = WWR / "wwr_remote-jobs_2026-07.rss.xml"
OLD = WWR / "wwr_remote-programming-jobs_2022-11.rss"


def by_id(parsed, source_id):
    return next(listing for listing in parsed.listings if listing.source_id == source_id)


@pytest.fixture(scope="module")
def new_feed():
    return get_source("wwr").parse(NEW.read_bytes())


def test_company_role_split_and_fields(new_feed):
    assert len(new_feed.listings) == 4 and new_feed.skipped == []
    qase = by_id(new_feed, "https://weworkremotely.com/remote-jobs/qase-developer-advocate")
    assert (qase.company, qase.title) == ("Qase", "Developer Advocate")
    assert qase.location == "Anywhere in the World"
    assert qase.url == "https://weworkremotely.com/remote-jobs/qase-developer-advocate"
    assert qase.posted_at == "2026-07-10T19:44:50+00:00"
    assert qase.tags == ["Sales and Marketing", "Full-Time"]


def test_headquarters_state_does_not_override_the_region(new_feed):
    mathmo = by_id(new_feed, "https://weworkremotely.com/remote-jobs/mathmo-maths-coach")
    assert mathmo.raw["state"] == "London"
    assert mathmo.location == "Anywhere in the World"


def test_description_is_unescaped_html(new_feed):
    mathmo = by_id(new_feed, "https://weworkremotely.com/remote-jobs/mathmo-maths-coach")
    assert "<strong>Headquarters:</strong> London" in mathmo.description_html
    assert "&lt;" not in mathmo.description_html
    assert "Pay is £75 per hour" in mathmo.description_html


def test_only_the_first_colon_splits(new_feed):
    old = get_source("wwr").parse(OLD.read_bytes())
    assert len(old.listings) == 25
    proxify = by_id(old, "https://weworkremotely.com/remote-jobs/proxify-ab-senior-front-end-developer-long-term-job-100-remote")
    assert proxify.company == "Proxify AB"
    assert proxify.title == "Senior Front-end Developer: Long-term job - 100% Remote"
    madeo = by_id(old, "https://weworkremotely.com/remote-jobs/madeo-web-developer-drupal-or-wordpress")
    assert (madeo.company, madeo.title, madeo.location) == ("Madeo", "Web Developer (Drupal or Wordpress)", "Remote (USA Only)")
    assert madeo.posted_at == "2022-10-13T18:10:18+00:00"


def test_raw_is_json_ready_and_keeps_published_fields(new_feed):
    qase = by_id(new_feed, "https://weworkremotely.com/remote-jobs/qase-developer-advocate")
    encoded = json.loads(json.dumps(qase.raw))
    assert encoded["region"] == "Anywhere in the World"
    assert encoded["published"] == "Fri, 10 Jul 2026 19:44:50 +0000"
    assert "published_parsed" not in encoded


def test_text_and_parsed_feed_payloads():
    text = NEW.read_text(encoding="utf-8")
    assert len(get_source("wwr").parse(text).listings) == 4
    already = feedparser.parse(NEW.read_bytes())
    assert len(get_source("wwr").parse(already).listings) == 4


def test_a_payload_that_names_a_file_or_url_is_not_opened():
    with pytest.raises(PayloadError, match="wwr: payload is not an RSS feed"):
        get_source("wwr").parse(str(NEW))
    with pytest.raises(PayloadError, match="wwr: payload is not an RSS feed"):
        get_source("wwr").parse(b'{"jobs": []}')


def test_missing_title_is_skipped():
    xml = NEW.read_bytes().replace(b"<title>Qase: Developer Advocate</title>", b"", 1)
    parsed = get_source("wwr").parse(xml)
    assert len(parsed.listings) == 3
    assert parsed.skipped == ["wwr item 1: missing title"]


def test_attribution():
    assert (SOURCES["wwr"].attribution, SOURCES["wwr"].attribution_url) == ("We Work Remotely", "https://weworkremotely.com")


def test_fetch_reads_each_feed_and_honours_304():
    requests = []

    def handler(request):
        requests.append(request)
        if request.headers.get("If-None-Match") == '"old"':
            return httpx.Response(304)
        return httpx.Response(200, content=NEW.read_bytes(), headers={"ETag": '"new"'})

    with stamina.set_testing(True, attempts=3, cap=True):
        client = make_client(transport=httpx.MockTransport(handler))
        result = get_source("wwr").fetch(client)
        again = get_source("wwr").fetch(client, validators={"https://weworkremotely.com/remote-jobs.rss": {"etag": '"old"'}})
    assert [str(r.url) for r in requests] == ["https://weworkremotely.com/remote-jobs.rss"] * 2
    assert len(result.result.listings) == 4
    assert result.validators == {"https://weworkremotely.com/remote-jobs.rss": {"etag": '"new"'}}
    assert again.not_modified is True and again.result.listings == []
