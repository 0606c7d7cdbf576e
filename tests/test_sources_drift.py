"""Schema drift on real payloads: unknown fields ignored, incomplete items skipped with a reason,
unreadable payloads rejected with PayloadError, odd field types never crash a parse."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from scraper import SOURCES, Listing, PayloadError, get_source

FIXTURES = Path(__file__).parent / "fixtures"

# source -> (payload file, where the items live, the id field, the title field, index of a normal item)
JSON_SOURCES = {
    "remoteok": ("remoteok/remoteok_api_2025-08-28.json", None, "id", "position", 1),
    "remotive": ("remotive/remotive_all_2026-07.json", "jobs", "id", "title", 0),
    "hn": ("hn/hn_algolia_hits_trimmed_2026-07.json", "hits", "objectID", "comment_text", 0),
    "greenhouse": ("greenhouse/greenhouse_gitlab_content_trimmed3.json", "jobs", "id", "title", 0),
    "lever": ("lever/lever_hinge_trimmed.json", None, "id", "text", 0),
    "ashby": ("ashby/ashby_notion_trimmed3.json", "jobs", "id", "title", 0),
    "arbeitnow": ("arbeitnow/arbeitnow_job-board-api_trimmed3.json", "data", "slug", "title", 0),
    "himalayas": ("himalayas/himalayas_jobs_limit5.json", "jobs", "guid", "title", 0),
    "jobicy": ("jobicy/jobicy_v2_remote-jobs.json", "jobs", "id", "jobTitle", 0),
    "workingnomads": ("workingnomads/workingnomads_exposed_jobs.json", None, "url", "title", 0),
}

GARBAGE = [None, "", [], {}, 0, -1, 12.5, True, "x", [None, {"a": []}], {"name": None, "location": [1]}, "&lt;b&gt;"]


def load(source):
    path, key, *_ = JSON_SOURCES[source]
    data = json.loads((FIXTURES / path).read_bytes())
    items = data[key] if key else data
    return data, items


def test_every_registered_source_is_covered():
    assert set(SOURCES) == set(JSON_SOURCES) | {"wwr"}
    for name, cls in SOURCES.items():
        assert cls.name == name and cls.label and cls.__doc__


@pytest.mark.parametrize("source", sorted(JSON_SOURCES))
def test_unknown_field_ignored_and_missing_title_skipped(source):
    _, _, id_field, title_field, first = JSON_SOURCES[source]
    baseline = get_source(source).parse(load(source)[0])
    data, items = load(source)
    items[first]["brandNewField"] = {"nested": ["surprise", None]}
    # HN's required text is the comment; a comment without it is a deleted one, so drop its id instead.
    dropped = id_field if source == "hn" else title_field
    del items[first + 1][dropped]
    parsed = get_source(source).parse(data)

    assert len(parsed.listings) == len(baseline.listings) - 1
    assert parsed.skipped == sorted(baseline.skipped + [f"{source} item {first + 1}: missing {dropped}"], key=_index)
    same = next(listing for listing in parsed.listings if listing.raw is items[first])
    before = baseline.listings[0]
    assert (same.title, same.company, same.location, same.posted_at) == (before.title, before.company, before.location, before.posted_at)
    assert same.raw["brandNewField"] == {"nested": ["surprise", None]}


def _index(reason: str) -> int:
    return int(reason.split(" item ")[1].split(":")[0])


@pytest.mark.parametrize("source", sorted(JSON_SOURCES))
@pytest.mark.parametrize("payload", [b"<!DOCTYPE html><title>Just a moment...</title>", b"", b"\xff\xfe\x00garbage", b'{"jobs": [1, 2'])
def test_non_json_payload_is_a_payload_error(source, payload):
    with pytest.raises(PayloadError, match=rf"^{source}: "):
        get_source(source).parse(payload)


@pytest.mark.parametrize("source", sorted(JSON_SOURCES))
@pytest.mark.parametrize("shape", ['"jobs"', "42", "null", '{"error": "rate limited"}'])
def test_unexpected_top_level_shape_is_a_payload_error(source, shape):
    with pytest.raises(PayloadError, match=rf"^{source}: expected"):
        get_source(source).parse(shape)


@pytest.mark.parametrize("source", sorted(JSON_SOURCES))
@pytest.mark.parametrize("junk", GARBAGE, ids=repr)
def test_odd_field_values_never_crash(source, junk):
    _, _, id_field, title_field, first = JSON_SOURCES[source]
    data, items = load(source)
    template = copy.deepcopy(items[first])
    odd = {k: (v if k in (id_field, title_field, "parent_id", "story_id") else copy.deepcopy(junk)) for k, v in template.items()}
    all_odd = {k: copy.deepcopy(junk) for k in template}
    items[first] = odd
    items[first + 1] = all_odd
    items.append(junk)
    parsed = get_source(source).parse(data)

    kept = next(listing for listing in parsed.listings if listing.raw is odd)
    for text in (kept.source_id, kept.title, kept.company, kept.location, kept.url, kept.description_html, kept.salary):
        assert isinstance(text, str)
    assert kept.posted_at is None or kept.posted_at.endswith("+00:00")
    assert all(isinstance(tag, str) and tag for tag in kept.tags)
    assert all(isinstance(listing, Listing) for listing in parsed.listings)
    json.dumps([listing.raw for listing in parsed.listings])
    # Odd values are handled field by field, not by the per-item safety net.
    assert not [reason for reason in parsed.skipped if "unreadable" in reason]
    # An item whose id and title are junk too is skipped (or, for junk that happens to be
    # a usable id and title, kept); never an exception. On HN a junk parent_id simply
    # means "not a top-level post", which is left out without a reason.
    if source != "hn":
        assert any(listing.raw is all_odd for listing in parsed.listings) or any(f"item {first + 1}:" in s for s in parsed.skipped)


@pytest.mark.parametrize("source", sorted(JSON_SOURCES))
def test_item_with_only_id_and_title(source):
    _, _, id_field, title_field, first = JSON_SOURCES[source]
    data, items = load(source)
    minimal = {id_field: items[first][id_field], title_field: items[first][title_field]}
    if source == "hn":
        minimal.update(parent_id=items[first]["parent_id"], story_id=items[first]["story_id"])
    items[:] = [minimal]
    if source == "remoteok":
        items.insert(0, {"legal": "API terms"})
    parsed = get_source(source).parse(data)
    assert parsed.skipped == []
    [listing] = parsed.listings
    assert listing.title
    assert listing.posted_at is None and listing.salary == ""
    assert isinstance(listing.tags, list)


def test_wwr_unknown_elements_and_missing_title():
    xml = (FIXTURES / "wwr" / "wwr_remote-jobs_2026-07.rss.xml").read_bytes()
    xml = xml.replace(b"<region>", b"<brand_new>surprise</brand_new><region>", 1)
    xml = xml.replace(b"<title>Qase: Developer Advocate</title>", b"", 1)
    parsed = get_source("wwr").parse(xml)
    assert [listing.company for listing in parsed.listings] == ["Mathmo", "APEX TRADE", "Qase"]
    assert parsed.listings[0].raw["brand_new"] == "surprise"
    assert parsed.skipped == ["wwr item 1: missing title"]


@pytest.mark.parametrize("payload", [b"<!DOCTYPE html><html><body>Blocked</body></html>", b"", b'{"jobs": []}', 42, None])
def test_wwr_unreadable_payload_is_a_payload_error(payload):
    with pytest.raises(PayloadError, match="^wwr: "):
        get_source("wwr").parse(payload)


def test_unknown_source_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown source 'indeed'; known: arbeitnow, ashby, greenhouse"):
        get_source("indeed")
