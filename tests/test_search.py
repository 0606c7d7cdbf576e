"""The dashboard's query layer on real board payloads: filters, counts, collapse, sort, pages."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

import db as storage
import search
from conftest import FIXTURES
from scraper import get_source

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def parsed(source: str, path: str):
    """Listings of a recorded payload, read by the project's own parser for that board."""
    result = get_source(source).parse((FIXTURES / path).read_bytes())
    assert result.listings, f"{path} gave no listings"
    return result.listings


def remotive():
    return parsed("remotive", "remotive/remotive_all_2026-07.json")


def himalayas():
    return parsed("himalayas", "himalayas/himalayas_jobs_limit5.json")


def remoteok():
    return parsed("remoteok", "remoteok/remoteok_api_2025-08-28.json")


def flag(db, listing_id: int, loc: str | None = None, focus: str | None = None) -> None:
    flags = []
    if loc:
        flags.append(SimpleNamespace(kind="location", label=loc, evidence=f"evidence for {loc}"))
    if focus:
        flags.append(SimpleNamespace(kind="focus", label=focus, evidence=f"evidence for {focus}"))
    storage.save_flags(db, listing_id, flags, "test")


def ids_by_source_id(db) -> dict[str, int]:
    return {sid: lid for lid, sid in db.conn.execute("SELECT id, source || ':' || source_id FROM listings")}


def run(db, **filters) -> search.ResultPage:
    return search.search(db, search.Filters(**filters), now=NOW)


def shown_ids(page: search.ResultPage) -> list[int]:
    return [row["id"] for row in page.rows]


def args(**values) -> dict:
    return {key: str(value) for key, value in values.items()}


# --- query string parsing ---------------------------------------------------------


def test_garbage_query_string_gives_defaults_and_notices():
    filters, notices = search.parse_filters(
        args(days="abc", min_score="-5", page="0", sort="evil", q='"(', status="nope", loc="mars",
             focus="x" * 500, eligible="maybe", source="nowhere"),
        is_known_source=lambda name: False,
    )
    assert filters == search.Filters()
    joined = " ".join(notices)
    for name in ("days", "min_score", "page", "sort", "keyword", "status", "location", "focus", "eligible", "source"):
        assert name in joined
    # Echoed values are cut short: a huge parameter never floods the page.
    assert all(len(notice) < 200 for notice in notices)


def test_valid_query_string_is_read_and_round_trips():
    raw = args(q="python backend", source="remotive", status="starred", eligible="1", loc="remote",
               focus="focus:tech", days=30, min_score=60, sort="date", page=2)
    filters, notices = search.parse_filters(raw, is_known_source=lambda name: name == "remotive")
    assert notices == []
    assert filters == search.Filters(q="python backend", source="remotive", status="starred", eligible=True,
                                     loc="loc:remote", focus="focus:tech", days=30, min_score=60, sort="date", page=2)
    again, _ = search.parse_filters({k: str(v) for k, v in filters.args().items()}, lambda name: True)
    assert again == filters
    assert search.Filters().args() == {}
    assert filters.args(page=1)["source"] == "remotive" and "page" not in filters.args(page=1)


def test_overlong_keyword_is_cut_with_a_notice():
    filters, notices = search.parse_filters({"q": "python " * 100}, lambda name: True)
    assert len(filters.q) == search.MAX_KEYWORD_CHARS
    assert any("cut" in notice for notice in notices)
    assert len(search.keyword_match(filters.q).split()) == search.MAX_KEYWORD_TERMS


@pytest.mark.parametrize("q", ['"(', "AND", "NEAR(a b", "*", "a OR", "title:x", "^go", "c++ c#", "'; DROP TABLE x",
                               '"unclosed phrase', "rust -go", "\x00\x01", "ümlaut café", "🙂"])
def test_keyword_syntax_never_reaches_fts_unquoted(db, q):
    storage.upsert_listings(db, remotive()[:5])
    match = search.keyword_match(q)
    if match is not None:
        assert re.fullmatch(r'("[\w ]+" ?)+', match), match
    run(db, q=q, status="all")  # must not raise


# --- keyword ----------------------------------------------------------------------


def _whole_word_ids(db, word: str) -> set[int]:
    rows = db.conn.execute("SELECT id, title, company, description_html FROM listings").fetchall()
    pattern = re.compile(rf"\b{word}\b", re.I)
    return {lid for lid, title, company, html in rows
            if pattern.search(" ".join([title, company, storage.html_to_text(html)]))}


def test_keyword_matches_whole_words_only(db):
    storage.upsert_listings(db, remotive())
    whole = _whole_word_ids(db, "rust")
    substring = {lid for (lid,) in db.conn.execute(
        "SELECT id FROM listings WHERE lower(title || company || description_html) LIKE '%rust%'")}
    # The payload has listings saying 'trust' (and the like) but not 'rust'.
    assert whole and len(substring) > len(whole)
    page = run(db, q="rust", status="all")
    assert set(shown_ids(page)) == whole
    assert page.total == len(whole)


def test_quoted_words_search_as_a_phrase(db):
    storage.upsert_listings(db, remotive())
    loose = run(db, q="product engineer", status="all").total
    phrase = run(db, q='"staff product engineer"', status="all")
    assert 0 < phrase.total < loose
    assert all("staff product engineer" in row["title"].lower() for row in phrase.rows)


# --- facets and counts ------------------------------------------------------------


@pytest.fixture
def board(db):
    """Remotive and Himalayas payloads stored, with known flags on every listing."""
    storage.upsert_listings(db, remotive() + himalayas())
    labels = ["loc:home", "loc:remote", "loc:remote-restricted", "loc:country-other", "loc:overseas-onsite",
              "loc:unknown"]
    focuses = ["focus:priority", "focus:tech", "focus:non-tech"]
    for lid in [row[0] for row in db.conn.execute("SELECT id FROM listings ORDER BY id")]:
        flag(db, lid, labels[lid % len(labels)], focuses[lid % len(focuses)])
    return db


def _groups(db, where: str = "1", params=()) -> int:
    """Independent count of collapsed rows: distinct group keys of listings matching `where`."""
    return db.conn.execute(
        "SELECT count(DISTINCT g.group_key) FROM listings l JOIN listing_groups g ON g.listing_id = l.id"
        " LEFT JOIN flags lf ON lf.listing_id = l.id AND lf.kind = 'location'"
        " LEFT JOIN flags ff ON ff.listing_id = l.id AND ff.kind = 'focus'"
        f" WHERE {where}", params).fetchone()[0]


def test_each_facet_filter_and_its_counts(board):
    db = board
    everything = run(db, status="all")
    assert everything.total == _groups(db)
    for source in ("remotive", "himalayas"):
        expected = _groups(db, "l.source = ?", [source])
        assert everything.counts["source"][source] == expected
        assert run(db, status="all", source=source).total == expected
    for label in search.LOCATION_LABELS:
        expected = _groups(db, "lf.label = ?", [label])
        assert everything.counts["loc"].get(label, 0) == expected
        assert run(db, status="all", loc=label).total == expected
    for label in search.FOCUS_LABELS:
        expected = _groups(db, "ff.label = ?", [label])
        assert everything.counts["focus"].get(label, 0) == expected
        assert run(db, status="all", focus=label).total == expected


def test_counts_of_one_facet_apply_the_other_facets(board):
    db = board
    page = run(db, status="all", source="himalayas", focus="focus:tech")
    # Location options count himalayas tech listings; source options ignore the source choice.
    for label in search.LOCATION_LABELS:
        assert page.counts["loc"].get(label, 0) == _groups(
            db, "l.source = 'himalayas' AND ff.label = 'focus:tech' AND lf.label = ?", [label])
    assert page.counts["source"]["remotive"] == _groups(db, "l.source = 'remotive' AND ff.label = 'focus:tech'")
    assert page.total == _groups(db, "l.source = 'himalayas' AND ff.label = 'focus:tech'")


def test_eligible_drops_places_the_person_cannot_work_but_keeps_unknown(board):
    db = board
    page = run(db, status="all", eligible=True)
    labels = {row["loc"] for row in page.rows}
    assert labels <= {"loc:home", "loc:remote", "loc:unknown"}
    assert "loc:unknown" in labels
    assert page.total == _groups(db, "lf.label IN ('loc:home', 'loc:remote', 'loc:unknown')")
    assert page.counts["eligible"]["1"] == page.total
    # Asking for one location explicitly wins over 'eligible'.
    overseas = run(db, status="all", eligible=True, loc="loc:overseas-onsite")
    assert overseas.total == _groups(db, "lf.label = 'loc:overseas-onsite'") > 0


def test_listing_without_flags_counts_as_unknown_location(db):
    storage.upsert_listings(db, himalayas())
    page = run(db, status="all", eligible=True)
    assert page.total == len(himalayas())
    assert page.counts["loc"] == {"loc:unknown": len(himalayas())}


def test_status_filter_and_counts(board):
    db = board
    ids = [row[0] for row in db.conn.execute("SELECT l.id FROM listings l WHERE l.source = 'himalayas' ORDER BY id")]
    search.set_group_verdict(db, ids[0], status="starred")
    search.set_group_verdict(db, ids[1], status="hidden")
    search.set_group_verdict(db, ids[2], status="applied")
    total = _groups(db)
    default = run(db)
    assert default.filters.status == "active"
    assert ids[1] not in shown_ids(default) and ids[0] in shown_ids(default)
    assert default.total == total - 1
    assert default.counts["status"]["all"] == total
    assert default.counts["status"]["active"] == total - 1
    for status, lid in (("starred", ids[0]), ("hidden", ids[1]), ("applied", ids[2])):
        page = run(db, status=status)
        assert shown_ids(page) == [lid]
        assert default.counts["status"][status] == 1


def test_days_filter_uses_posting_date(db):
    listings = himalayas()
    recent = replace(listings[0], posted_at=(NOW - timedelta(days=3)).isoformat())
    month = replace(listings[1], posted_at=(NOW - timedelta(days=20)).isoformat())
    old = replace(listings[2], posted_at=(NOW - timedelta(days=200)).isoformat())
    storage.upsert_listings(db, [recent, month, old])
    assert run(db, status="all", days=7).total == 1
    assert run(db, status="all", days=30).total == 2
    assert run(db, status="all", days=90).total == 2
    assert run(db, status="all").total == 3


def test_min_score_and_sort_use_the_effective_score(board):
    db = board
    ids = ids_by_source_id(db)
    a, b, c = ids["remotive:2090903"], ids["remotive:2091035"], ids["remotive:2091075"]
    for lid in (a, b, c):
        flag(db, lid, "loc:remote", "focus:tech")
    storage.save_score(db, a, score=90, strategy="rules")
    storage.save_score(db, b, score=40, strategy="rules")
    storage.save_score(db, c, score=70, strategy="rules")
    search.set_group_verdict(db, b, override_score=95, override_reason="exactly my stack")
    page = run(db, status="all", min_score=60, focus="focus:tech")
    assert shown_ids(page) == [b, a, c]
    assert [row["score"] for row in page.rows] == [95, 90, 70]
    assert page.rows[0]["computed_score"] == 40
    assert run(db, status="all", min_score=91).total == 1


def test_priority_listings_come_first_within_each_sort(board):
    db = board
    ids = ids_by_source_id(db)
    priority, tech = ids["remotive:1919265"], ids["remotive:1919266"]
    flag(db, priority, "loc:remote", "focus:priority")
    flag(db, tech, "loc:remote", "focus:tech")
    storage.save_score(db, priority, score=10, strategy="rules")
    storage.save_score(db, tech, score=99, strategy="rules")
    by_score = run(db, status="all", sort="score")
    focuses = [row["focus"] for row in by_score.rows]
    first_other = next(i for i, f in enumerate(focuses) if f != "focus:priority")
    assert "focus:priority" not in focuses[first_other:]
    assert shown_ids(by_score).index(priority) < shown_ids(by_score).index(tech)
    by_date = run(db, status="all", sort="date")
    dated = [row for row in by_date.rows if row["focus"] != "focus:priority"]
    assert [row["posted_at"] for row in dated] == sorted((row["posted_at"] for row in dated), reverse=True)


def test_flag_override_wins_in_filters_and_counts(board):
    db = board
    lid = ids_by_source_id(db)["himalayas:" + himalayas()[0].source_id]
    before = run(db, status="all", loc="loc:home").total
    search.set_flag_override(db, lid, "location", "loc:home", "I asked: they hire in Berlin")
    page = run(db, status="all", loc="loc:home")
    assert lid in shown_ids(page) and page.total == before + (0 if lid % 6 == 0 else 1)
    row = next(r for r in page.rows if r["id"] == lid)
    assert row["loc"] == "loc:home" and row["loc_overridden"]
    # Recomputed flags never beat the person's override.
    flag(db, lid, "loc:overseas-onsite", "focus:tech")
    assert lid in shown_ids(run(db, status="all", loc="loc:home"))
    search.clear_flag_override(db, lid, "location")
    assert lid not in shown_ids(run(db, status="all", loc="loc:home"))
    with pytest.raises(ValueError):
        search.set_flag_override(db, lid, "location", "focus:tech")


# --- duplicates -------------------------------------------------------------------


def test_city_variants_of_one_job_collapse_to_the_most_recently_seen(db):
    listings = [item for item in remotive() if item.company == "LawnStarter"]
    assert len(listings) == 11  # 6 'Staff Software Engineer, Product (...)' + 5 'Staff Product Engineer (...)'
    storage.upsert_listings(db, listings, seen_at="2026-11-01T00:00:00+00:00")
    newest = next(item for item in listings if "(Montevideo)" in item.title and "Software" in item.title)
    storage.upsert_listings(db, [newest], seen_at="2026-11-20T00:00:00+00:00")
    page = run(db, status="all")
    assert page.total == 2
    shown = {row["title"] for row in page.rows}
    assert newest.title in shown
    software = next(row for row in page.rows if row["title"] == newest.title)
    assert software["more_here"] == 5 and software["also_on"] == []


def test_same_job_on_two_boards_shows_once_with_also_on(db):
    original = remotive()[0]
    copy = replace(original, source="himalayas", source_id="copy-of-" + original.source_id,
                   company=original.company + " Inc.")
    storage.upsert_listings(db, [original], seen_at="2026-11-01T00:00:00+00:00")
    storage.upsert_listings(db, [copy], seen_at="2026-11-02T00:00:00+00:00")
    page = run(db, status="all")
    assert page.total == 1 and len(page.rows) == 1
    row = page.rows[0]
    assert row["source"] == "himalayas" and row["also_on"] == ["remotive"]
    assert page.counts["source"] == {"himalayas": 1, "remotive": 1}
    # Filtering on the older board shows its copy, still with 'also on'.
    only_remotive = run(db, status="all", source="remotive")
    assert only_remotive.rows[0]["source"] == "remotive" and only_remotive.rows[0]["also_on"] == ["himalayas"]


def test_a_verdict_covers_every_copy_of_the_job_even_later_ones(db):
    original = remotive()[0]
    storage.upsert_listings(db, [original], seen_at="2026-11-01T00:00:00+00:00")
    lid = ids_by_source_id(db)["remotive:" + original.source_id]
    search.set_group_verdict(db, lid, status="hidden", note="not for me")
    copy = replace(original, source="himalayas", source_id="later-copy")
    storage.upsert_listings(db, [copy], seen_at="2026-11-05T00:00:00+00:00")
    assert run(db).total == 0
    hidden = run(db, status="hidden")
    assert hidden.rows[0]["source"] == "himalayas" and hidden.rows[0]["note"] == "not for me"
    # The copy's own change goes to the same verdict row: one verdict per job.
    copy_id = ids_by_source_id(db)["himalayas:later-copy"]
    search.set_group_verdict(db, copy_id, status="starred")
    assert db.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 1
    assert storage.get_verdict(db, lid)["status"] == "starred"


# --- pages ------------------------------------------------------------------------


def test_pagination_fifty_per_page_and_clamped(db):
    storage.upsert_listings(db, remoteok() + remotive() + himalayas())
    first = run(db, status="all")
    assert first.total > search.PAGE_SIZE
    assert len(first.rows) == search.PAGE_SIZE
    assert first.pages == -(-first.total // search.PAGE_SIZE)
    seen = []
    for number in range(1, first.pages + 1):
        seen += shown_ids(run(db, status="all", page=number))
    assert len(seen) == len(set(seen)) == first.total
    beyond = run(db, status="all", page=first.pages + 7)
    assert beyond.filters.page == first.pages and beyond.rows
    assert any("no page" in notice for notice in beyond.notices)


def test_stale_listings_are_marked(db):
    storage.upsert_listings(db, himalayas(), seen_at="2026-01-01T00:00:00+00:00")
    assert storage.mark_stale(db, "2026-06-01T00:00:00+00:00") == len(himalayas())
    rows = run(db, status="all").rows
    assert rows and all(row["stale"] for row in rows)


def test_no_listings_at_all(db):
    page = run(db)
    assert page.total == 0 and page.rows == [] and page.pages == 1
    assert page.counts["status"]["all"] == 0


def test_list_query_reads_listings_and_flags_through_covering_indexes(db):
    # Listing rows carry the long description before the dates the list needs;
    # reading those through an index keeps a 50,000-listing search fast.
    storage.upsert_listings(db, remotive())
    db.conn.execute("DROP TABLE IF EXISTS temp.triage")
    db.conn.execute(search._TRIAGE_TABLE)
    sql = search._TRIAGE_FILL.format(source=f"listings_fts f JOIN {search._LISTINGS} ON l.id = f.rowid",
                                     where="listings_fts MATCH ?")
    plan = [row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql, ['"engineer"'])]
    assert any(step.startswith("SEARCH l USING COVERING INDEX") for step in plan), plan
    assert any(step.startswith("SEARCH lf USING COVERING INDEX") for step in plan), plan
