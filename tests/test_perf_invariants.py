"""What the fast paths must keep: same text, same search index, same list, and facets in step with every write."""

from __future__ import annotations

import html
import json
import random
import re
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import config as config_mod
import db as storage
import ingest
import search
from conftest import FIXTURES
from scraper import get_source
from scraper import normalize

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
NOW_SEEN = ["2026-11-01T00:00:00+00:00", "2026-11-10T00:00:00+00:00", "2026-11-20T00:00:00+00:00"]


def parsed(source: str, path: str, **options):
    result = get_source(source, **options).parse((FIXTURES / path).read_bytes())
    assert result.listings, path
    return result.listings


def every_payload_text() -> list[str]:
    return [path.read_text(encoding="utf-8-sig", errors="replace") for path in sorted(FIXTURES.rglob("*.json"))]


def all_descriptions() -> list[str]:
    """Descriptions of every recorded board, as the parsers store them."""
    listings = (
        parsed("remoteok", "remoteok/remoteok_api_2025-08-28.json")
        + parsed("remotive", "remotive/remotive_all_2026-07.json")
        + parsed("himalayas", "himalayas/himalayas_jobs_limit5.json")
        + parsed("greenhouse", "greenhouse/greenhouse_gitlab_content_trimmed3.json", board="gitlab")
        + parsed("greenhouse", "greenhouse/greenhouse_helsing_trimmed.json", board="helsing")
        + parsed("hn", "hn/hn_algolia_hits_trimmed_2026-07.json")
        + parsed("lever", "lever/lever_palantir_2postings.json")
        + parsed("ashby", "ashby/ashby_notion_trimmed3.json")
        + parsed("arbeitnow", "arbeitnow/arbeitnow_job-board-api_trimmed3.json")
    )
    return [item.description_html for item in listings]


# --- text: the fast functions equal the plain ones they replace ---------------------------------

# The functions as they were before their fast versions: the reference the fast ones must equal.
_OLD_TAG_RE = re.compile(r"<[^>]+>")
_OLD_WS_RE = re.compile(r"\s+")


def old_html_to_text(value: str | None) -> str:
    if not value:
        return ""
    return _OLD_WS_RE.sub(" ", html.unescape(_OLD_TAG_RE.sub(" ", value))).strip()


def old_escaped_wins(text: str) -> bool:
    escaped = len(normalize._ESCAPED_TAG_RE.findall(text))
    return bool(escaped and escaped > len(normalize._REAL_TAG_RE.findall(text)))


def old_fix_mojibake(text):
    cont = normalize._char_class(0x80, 0xBF)
    pattern = re.compile(
        f"{normalize._char_class(0xC2, 0xDF)}{cont}"
        f"|{normalize._char_class(0xE0, 0xEF)}{cont}{{2}}"
        f"|{normalize._char_class(0xF0, 0xF4)}{cont}{{3}}"
    )

    def undo(match):
        try:
            return bytes(normalize._BYTE_OF[ch] for ch in match.group(0)).decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)

    for _ in range(3):
        fixed = pattern.sub(undo, text)
        if fixed == text:
            break
        text = fixed
    return text


ENTITY_PIECES = ["&", "amp;", "lt;", "gt", ";", "#39;", "#x27;", "#x2F;", "#x2f;", "nbsp;", "quot;", "a", " ",
                 "&amp;", "&lt;", "&gt;", "#", "x", "2", "F", "&#", "<", "&amp;lt;", "&#x26;", "&copy", "é"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(ENTITY_PIECES), max_size=120))
def test_unescape_html_equals_html_unescape(pieces):
    text = "".join(pieces)
    assert normalize.unescape_html(text) == html.unescape(text)


def test_unescape_html_on_every_recorded_payload():
    for text in every_payload_text():
        assert normalize.unescape_html(text) == html.unescape(text)


def test_html_to_text_unchanged_on_every_description():
    descriptions = all_descriptions()
    assert any("&" in d for d in descriptions) and any("<" in d for d in descriptions)
    for description in descriptions:
        assert storage.html_to_text(description) == old_html_to_text(description)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("<>/ab \t\n\xa0\u2003\x1f&;#ltgmpx2F") + ["&amp;", "&lt;", "&nbsp;", "<p>"]),
                max_size=200))
def test_html_to_text_equals_the_plain_version(pieces):
    text = "".join(pieces)
    assert storage.html_to_text(text) == old_html_to_text(text)


def test_escaped_markup_decision_unchanged():
    texts = every_payload_text() + all_descriptions() + [
        "&lt;p&gt;x", "<p>one</p> quoting &lt;div&gt;", "&lt;p&gt;&lt;b&gt;a&lt;/b&gt;&lt;/p&gt;<br>", "", "&lt;",
    ]
    decided = {normalize._escaped_markup_wins(text) for text in texts}
    assert decided == {True, False}
    for text in texts:
        assert normalize._escaped_markup_wins(text) == old_escaped_wins(text)


def test_fix_mojibake_unchanged_on_remote_ok_and_random_text():
    items = json.loads((FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes())
    texts = [item.get(key) for item in items for key in ("description", "position", "company") if item.get(key)]
    assert sum(normalize.fix_mojibake(t) != t for t in texts) > 10  # the payload really is mojibake
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(0x80, 0x100)]
    alphabet += list("€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ ab")
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    texts += ["’ café".encode().decode("latin-1"), "’".encode().decode("latin-1").encode().decode("latin-1")]
    for text in texts:
        assert normalize.fix_mojibake(text) == old_fix_mojibake(text)


def test_search_index_words_unchanged_by_skipping_space_collapse():
    # The index reads search_text (no whitespace collapsing); every term at every
    # position must be what indexing html_to_text gives, so no search can differ.
    conn = sqlite3.connect(":memory:")
    for name in ("plain", "fast"):
        conn.execute(f"CREATE VIRTUAL TABLE {name} USING fts5(description,"
                     " tokenize='porter unicode61 remove_diacritics 2')")
        conn.execute(f"CREATE VIRTUAL TABLE {name}_terms USING fts5vocab({name}, instance)")
    for i, description in enumerate(all_descriptions(), 1):
        conn.execute("INSERT INTO plain (rowid, description) VALUES (?, ?)", (i, storage.html_to_text(description)))
        conn.execute("INSERT INTO fast (rowid, description) VALUES (?, ?)", (i, storage.search_text(description)))
    plain = conn.execute("SELECT term, doc, col, offset FROM plain_terms ORDER BY 1, 2, 3, 4").fetchall()
    fast = conn.execute("SELECT term, doc, col, offset FROM fast_terms ORDER BY 1, 2, 3, 4").fetchall()
    assert len(plain) > 10_000
    assert fast == plain


# --- upsert: batched writes keep the one-by-one results -----------------------------------------


def test_upsert_batch_with_repeats_matches_one_by_one(tmp_path):
    # More than one lookup chunk, with a listing repeated (unchanged and changed) on both sides of a boundary.
    remoteok = parsed("remoteok", "remoteok/remoteok_api_2025-08-28.json")
    listings = [replace(item, source_id=f"{item.source_id}-{k}") for k in range(5) for item in remoteok]
    changed = replace(listings[3], description_html=listings[3].description_html + "<p>Now in Berlin</p>")
    batch = listings[:398] + [listings[3], changed, listings[5]] + listings[398:]
    together = storage.connect(tmp_path / "together.db")
    apart = storage.connect(tmp_path / "apart.db")
    result = storage.upsert_listings(together, batch, seen_at=NOW_SEEN[0])
    expected = {"new": [], "updated": [], "unchanged": 0}
    for item in batch:
        one = storage.upsert_listings(apart, [item], seen_at=NOW_SEEN[0])
        for key in ("new", "updated"):
            expected[key] += one[key]
        expected["unchanged"] += one["unchanged"]
    assert result == expected and result["updated"] and result["unchanged"] == 2
    sql = ("SELECT id, source, source_id, title, description_html, raw, content_hash, last_seen"
           " FROM listings ORDER BY id")
    assert together.conn.execute(sql).fetchall() == apart.conn.execute(sql).fetchall()
    fts = "SELECT rowid, title, company FROM listings_fts ORDER BY rowid"
    assert together.conn.execute(fts).fetchall() == apart.conn.execute(fts).fetchall()
    assert facets_mismatches(together) == [] and facets_mismatches(apart) == []


def test_a_failing_batch_stores_nothing_and_keeps_the_triggers(db):
    listings = parsed("remotive", "remotive/remotive_all_2026-07.json")
    triggers = trigger_names(db)
    db.conn.execute(f"CREATE TRIGGER boom BEFORE INSERT ON listings WHEN NEW.source_id = '{listings[20].source_id}'"
                    " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        ingest.ingest(db, listings, config_mod.Config())
    assert db.conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 0
    assert trigger_names(db) == triggers | {"boom"}


def test_a_failure_kept_by_an_outer_transaction_still_restores_the_triggers(db):
    listings = parsed("himalayas", "himalayas/himalayas_jobs_limit5.json")
    triggers = trigger_names(db)
    with storage.write(db):
        with pytest.raises(RuntimeError):
            with storage.facets_batch(db):
                storage.upsert_listings(db, listings)
                raise RuntimeError("the caller changes its mind")
    assert trigger_names(db) == triggers
    assert facets_mismatches(db) == []
    search.set_flag_override(db, first_id(db), "location", "loc:home")
    assert facets_mismatches(db) == []


def trigger_names(db) -> set[str]:
    return {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}


def first_id(db) -> int:
    return db.conn.execute("SELECT min(id) FROM listings").fetchone()[0]


# --- facets: in step with every writer ------------------------------------------------------------


def reference_facets(conn) -> dict[int, tuple]:
    """Each listing's facets computed in Python from the tables they derive from."""
    listings = conn.execute("SELECT id, source, posted_at, first_seen, last_seen FROM listings").fetchall()
    keys = dict(conn.execute("SELECT listing_id, group_key FROM listing_groups"))
    flags = {(lid, kind): label for lid, kind, label in conn.execute("SELECT listing_id, kind, label FROM flags")}
    overrides = {(lid, kind): label for lid, kind, label in
                 conn.execute("SELECT listing_id, kind, label FROM flag_overrides")}
    scores = dict(conn.execute("SELECT listing_id, score FROM current_scores"))
    verdicts = conn.execute("SELECT listing_id, status, override_score, updated_at FROM verdicts").fetchall()
    members: dict[str, list] = {}
    for lid, *_ in listings:
        members.setdefault(keys.get(lid, f"#{lid}"), []).append(lid)
    group_verdict = {}
    for key, ids in members.items():
        found = [v for v in verdicts if v[0] in ids]
        # Latest updated first, ties to the larger listing id; a missing time sorts last.
        found.sort(key=lambda v: (v[3] is not None, v[3] or "", v[0]), reverse=True)
        group_verdict[key] = found[0] if found else None
    seen = {lid: (last_seen, lid) for lid, _s, _p, _f, last_seen in listings}
    out = {}
    for lid, source, posted_at, first_seen, last_seen in listings:
        key = keys.get(lid, f"#{lid}")
        verdict = group_verdict[key]
        override_score = verdict[2] if verdict else None
        score = override_score if override_score is not None else scores.get(lid)
        copies = len(members[key]) > 1
        lead = max(members[key], key=lambda m: (seen[m][0] is not None, seen[m][0] or "", m)) == lid
        out[lid] = (
            key, int(copies), int(lead or not copies), source, posted_at or first_seen, last_seen,
            overrides.get((lid, "location")) or flags.get((lid, "location")) or "loc:unknown",
            overrides.get((lid, "focus")) or flags.get((lid, "focus")),
            (verdict[1] or "new") if verdict else "new", score,
        )
    return out


def stored_facets(conn) -> dict[int, tuple]:
    rows = conn.execute(
        "SELECT f.listing_id, COALESCE(g.group_key, '#' || f.listing_id), f.copies, f.lead, f.source, f.posted,"
        " f.last_seen, f.loc, f.focus, f.status, f.score FROM listing_facets f LEFT JOIN job_groups g ON g.id = f.gid"
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def group_values_mismatches(conn) -> list:
    bad = []
    rows = conn.execute("SELECT id, group_key, members, sources, locs, focuses FROM job_groups").fetchall()
    for gid, key, members, sources, locs, focuses in rows:
        found = conn.execute(
            "SELECT source, loc, COALESCE(focus, '') FROM listing_facets WHERE gid = ?", [gid]
        ).fetchall()
        if members != len(found) or members == 0:
            bad.append((key, "members", members, len(found)))
        elif members > 1:
            for column, values in ((0, sources), (1, locs), (2, focuses)):
                if json.loads(values) != sorted({row[column] for row in found}):
                    bad.append((key, column, values))
    keys = {r[0] for r in conn.execute("SELECT DISTINCT group_key FROM listing_groups")}
    if keys != {row[1] for row in rows}:
        bad.append(("group keys", sorted(keys ^ {row[1] for row in rows})[:5]))
    return bad


def facets_mismatches(db) -> list:
    """Differences between the stored facets and the reference: [] when in step."""
    conn = db.conn
    expected, stored = reference_facets(conn), stored_facets(conn)
    bad = [(lid, expected.get(lid), stored.get(lid)) for lid in expected.keys() | stored.keys()
           if expected.get(lid) != stored.get(lid)]
    return sorted(bad, key=str)[:5] + group_values_mismatches(conn)


def flag(db, lid: int, loc: str | None, focus: str | None, version: str = "t") -> None:
    flags = []
    if loc:
        flags.append(SimpleNamespace(kind="location", label=loc, evidence="e"))
    if focus:
        flags.append(SimpleNamespace(kind="focus", label=focus, evidence="e"))
    storage.save_flags(db, lid, flags, version)


def ids(db) -> dict[str, int]:
    return {sid: lid for lid, sid in db.conn.execute("SELECT id, source || ':' || source_id FROM listings")}


def test_facets_follow_every_writer(db, jobsift_config):
    remotive = parsed("remotive", "remotive/remotive_all_2026-07.json")
    himalayas = parsed("himalayas", "himalayas/himalayas_jobs_limit5.json")
    result = ingest.ingest(db, remotive + himalayas, jobsift_config, seen_at=NOW_SEEN[0])
    assert len(result["new"]) == len(remotive) + len(himalayas) and facets_mismatches(db) == []

    # Copies of a job on another board, seen later: one group, the newest copy leads.
    copies = [replace(item, source="himalayas", source_id=f"copy-{item.source_id}") for item in remotive[:6]]
    storage.upsert_listings(db, copies, seen_at=NOW_SEEN[1])
    assert facets_mismatches(db) == []
    known = ids(db)
    original, copy = known["remotive:" + remotive[0].source_id], known["himalayas:copy-" + remotive[0].source_id]
    assert db.conn.execute("SELECT copies, lead FROM listing_facets WHERE listing_id = ?", [copy]).fetchone() == (1, 1)

    flag(db, original, "loc:overseas-onsite", "focus:tech")
    assert facets_mismatches(db) == []
    search.set_group_verdict(db, copy, status="starred", override_score=91, override_reason="r")
    assert facets_mismatches(db) == []
    assert db.conn.execute("SELECT status, score FROM listing_facets WHERE listing_id = ?", [original]).fetchone() \
        == ("starred", 91)
    storage.save_score(db, original, score=40, strategy="rules")
    storage.save_score(db, copy, score=55, strategy="rules")
    assert facets_mismatches(db) == []
    search.set_flag_override(db, original, "location", "loc:home", "office in Berlin")
    search.set_flag_override(db, copy, "focus", "focus:priority")
    assert facets_mismatches(db) == []
    search.clear_flag_override(db, original, "location")
    storage.set_verdict(db, original, override_score=None)  # now the latest verdict of the group
    assert facets_mismatches(db) == []
    assert storage.mark_stale(db, NOW_SEEN[1]) > 0
    assert facets_mismatches(db) == []

    # The original is seen again, later: it leads its group again.
    storage.upsert_listings(db, [remotive[0]], seen_at=NOW_SEEN[2])
    assert db.conn.execute("SELECT lead FROM listing_facets WHERE listing_id = ?", [original]).fetchone() == (1,)
    # A changed title moves a listing to another group, taking its verdict along.
    storage.upsert_listings(db, [replace(remotive[0], title="Entirely Different Role")], seen_at=NOW_SEEN[2])
    assert facets_mismatches(db) == []

    # Settings changed: flags recomputed in one batch.
    other = replace(jobsift_config, person=replace(jobsift_config.person, home_city="Vancouver", home_country="CA"))
    assert ingest.recompute_flags(db, other) == len(remotive) + len(himalayas) + len(copies)
    assert facets_mismatches(db) == []

    # Direct SQL, as another tool might write: the triggers keep up.
    db.conn.execute("DELETE FROM flag_overrides")
    db.conn.execute("DELETE FROM verdicts WHERE listing_id = ?", [copy])
    db.conn.execute("UPDATE listing_groups SET group_key = 'moved|by hand' WHERE listing_id = ?", [copy])
    db.conn.execute("DELETE FROM current_scores WHERE listing_id = ?", [original])
    db.conn.commit()
    assert facets_mismatches(db) == []
    db.conn.execute("DELETE FROM listing_groups WHERE listing_id = ?", [copy])
    db.conn.execute("DELETE FROM flags WHERE listing_id = ?", [copy])
    db.conn.execute("DELETE FROM current_scores WHERE listing_id = ?", [copy])
    db.conn.execute("DELETE FROM scores WHERE listing_id = ?", [copy])
    db.conn.execute("DELETE FROM verdicts WHERE listing_id = ?", [copy])
    db.conn.execute("DELETE FROM listings_fts WHERE rowid = ?", [copy])
    db.conn.execute("DELETE FROM listings WHERE id = ?", [copy])
    db.conn.commit()
    assert facets_mismatches(db) == []


def test_refresh_rebuilds_what_the_triggers_keep(db, jobsift_config):
    fill_board(db, jobsift_config)
    before = stored_facets(db.conn)
    storage.refresh_facets(db)
    assert stored_facets(db.conn) == before
    assert facets_mismatches(db) == []


# --- migration: an existing database gets its facets -----------------------------------------------


def test_migration_backfills_a_database_built_by_the_earlier_migrations(tmp_path):
    path = tmp_path / "old.db"
    old = storage.connect(path, migrate_now=False)
    storage.migrations.apply(old, stop_before="m008_listing_facets")
    assert "listing_facets" not in old.table_names()
    conn = old.conn
    listings = parsed("remotive", "remotive/remotive_all_2026-07.json")[:30]
    rng = random.Random(3)
    for i, item in enumerate(listings + [replace(listings[0], source="himalayas", source_id="dup")], 1):
        conn.execute(
            "INSERT INTO listings (id, source, source_id, title, company, location, description_html, posted_at,"
            " first_seen, last_seen, stale) VALUES (?,?,?,?,?,?,?,?,?,?,0)",
            (i, item.source, item.source_id, item.title, item.company, item.location, item.description_html,
             item.posted_at, NOW_SEEN[0], NOW_SEEN[i % 3]),
        )
        conn.execute("INSERT INTO listing_groups (listing_id, group_key) VALUES (?, ?)",
                     (i, storage.group_key(item.company, item.title)))
        conn.execute("INSERT INTO flags (listing_id, kind, label) VALUES (?, 'location', ?)",
                     (i, rng.choice(search.LOCATION_LABELS)))
        if i % 4:
            conn.execute("INSERT INTO flags (listing_id, kind, label) VALUES (?, 'focus', ?)",
                         (i, rng.choice(search.FOCUS_LABELS)))
    conn.execute("INSERT INTO verdicts (listing_id, status, override_score, updated_at) VALUES (1, 'starred', 88, ?)",
                 [NOW_SEEN[1]])
    conn.execute("INSERT INTO flag_overrides (listing_id, kind, label) VALUES (2, 'location', 'loc:home')")
    conn.execute("INSERT INTO scores (id, listing_id, score, strategy) VALUES (1, 3, 64, 'rules')")
    conn.execute("INSERT INTO current_scores (listing_id, score_id, score, strategy) VALUES (3, 1, 64, 'rules')")
    conn.commit()
    conn.close()

    migrated = storage.connect(path)
    assert migrated.conn.execute("SELECT count(*) FROM listing_facets").fetchone()[0] == 31
    assert facets_mismatches(migrated) == []
    # The copy on another board shares its job's verdict.
    assert migrated.conn.execute("SELECT status, score FROM listing_facets WHERE listing_id = 31").fetchone() \
        == ("starred", 88)
    page = search.search(migrated, search.Filters(status="all"))
    jobs = migrated.conn.execute("SELECT count(DISTINCT group_key) FROM listing_groups").fetchone()[0]
    assert page.total == jobs < 31 and page.counts["status"]["starred"] == 1


def test_the_shipped_example_database_opens_with_facets_in_step(tmp_path):
    example = Path(__file__).resolve().parent.parent / "jobs.db.example"
    copy = tmp_path / "jobs.db"
    copy.write_bytes(example.read_bytes())
    db = storage.connect(copy)
    assert db.conn.execute("SELECT count(*) FROM listing_facets").fetchone()[0] == \
        db.conn.execute("SELECT count(*) FROM listings").fetchone()[0] > 0
    assert facets_mismatches(db) == []


# --- the list: same rows, totals and counts as a plain computation ------------------------------------


def fill_board(db, config) -> dict[str, int]:
    """Three real payloads, copies across boards, scores, verdicts and overrides, seen at three times."""
    remotive = parsed("remotive", "remotive/remotive_all_2026-07.json")
    remoteok = parsed("remoteok", "remoteok/remoteok_api_2025-08-28.json")
    himalayas = parsed("himalayas", "himalayas/himalayas_jobs_limit5.json")
    ingest.ingest(db, remotive + himalayas, config, seen_at=NOW_SEEN[0])
    ingest.ingest(db, remoteok, config, seen_at=NOW_SEEN[1])
    copies = [replace(item, source=rng_source, source_id=f"{rng_source}-{item.source_id}")
              for item, rng_source in zip(remotive[::7], ["himalayas", "remoteok", "hn"] * 30)]
    ingest.ingest(db, copies, config, seen_at=NOW_SEEN[2])
    rng = random.Random(11)
    known = ids(db)
    for lid in sorted(known.values()):
        roll = rng.random()
        if roll < 0.6:
            storage.save_score(db, lid, score=rng.randint(0, 100), strategy="rules")
        if roll < 0.08:
            search.set_group_verdict(db, lid, status=rng.choice(["starred", "hidden", "applied"]))
        elif roll < 0.12:
            search.set_group_verdict(db, lid, override_score=rng.randint(0, 100), override_reason="r")
        elif roll < 0.16:
            search.set_flag_override(db, lid, "location", rng.choice(search.LOCATION_LABELS))
        elif roll < 0.19:
            search.set_flag_override(db, lid, "focus", rng.choice(search.FOCUS_LABELS))
    return known


def reference_search(db, filters: search.Filters, now) -> tuple[list[int], int, dict]:
    """The list computed in Python from the reference facets: page ids, total and counts."""
    facets = reference_facets(db.conn)
    scope = set(facets)
    if filters.q:
        scope &= {r[0] for r in db.conn.execute("SELECT rowid FROM listings_fts WHERE listings_fts MATCH ?",
                                                [search.keyword_match(filters.q)])}
    if filters.days:
        since = (now - timedelta(days=filters.days)).replace(microsecond=0)
        since = since.isoformat().replace("+00:00", "")
        scope = {lid for lid in scope if facets[lid][4] is not None and facets[lid][4] >= since}
    if filters.min_score is not None:
        scope = {lid for lid in scope if facets[lid][9] is not None and facets[lid][9] >= filters.min_score}
    tests = search._facet_tests(filters)

    def values(lid):
        key, _c, _l, source, _p, _s, loc, focus, status, _score = facets[lid]
        return (source, status, loc, focus or "")

    def passes(lid, skip=None):
        return all(test(values(lid)) for name, test in tests.items() if name != skip)

    counts = {"source": {}, "status": {}, "loc": {}, "focus": {}, "eligible": {}}
    seen: dict = {}
    for lid in scope:
        key = facets[lid][0]
        source, status, loc, focus = values(lid)
        options = []
        if passes(lid, "source"):
            options.append(("source", source))
        if passes(lid, "status"):
            options += [("status", status), ("status", "all")] + ([("status", "active")] if status != "hidden" else [])
        if passes(lid, "loc"):
            options.append(("loc", loc))
            if loc not in search.INELIGIBLE_LOCATIONS:
                options.append(("eligible", "1"))
        if passes(lid, "focus"):
            options.append(("focus", focus))
        for facet, value in options:
            seen.setdefault((facet, value), set()).add(key)
    for (facet, value), keys in seen.items():
        counts[facet][value] = len(keys)
    counts["status"].setdefault("active", 0)
    counts["status"].setdefault("all", 0)
    counts["eligible"].setdefault("1", 0)
    shown: dict[str, int] = {}
    for lid in scope:
        if passes(lid):
            key = facets[lid][0]
            best = shown.get(key)
            if best is None or (facets[lid][5] or "", lid) > (facets[best][5] or "", best):
                shown[key] = lid
    rows = sorted(shown.values(), reverse=True)  # id DESC breaks the remaining ties
    rows.sort(key=lambda lid: (facets[lid][4] is not None, facets[lid][4] or ""), reverse=True)
    if filters.sort == "score":
        rows.sort(key=lambda lid: (facets[lid][9] is not None, facets[lid][9] or 0), reverse=True)
    rows.sort(key=lambda lid: facets[lid][7] == "focus:priority", reverse=True)
    total = len(rows)
    page = min(filters.page, max(1, -(-total // search.PAGE_SIZE)))
    return rows[(page - 1) * search.PAGE_SIZE:page * search.PAGE_SIZE], total, counts


FILTER_CASES = [
    {},
    {"status": "all"},
    {"status": "hidden"},
    {"status": "starred", "sort": "date"},
    {"sort": "date", "page": 2},
    {"page": 4},
    {"eligible": True},
    {"eligible": True, "focus": "focus:tech"},
    {"loc": "loc:remote", "source": "remotive"},
    {"source": "himalayas", "status": "all"},
    {"focus": "focus:priority", "sort": "date"},
    {"min_score": 50},
    {"days": 90, "eligible": True},
    {"q": "engineer"},
    {"q": "engineer", "eligible": True, "focus": "focus:tech"},
    {"q": "python", "status": "all", "sort": "date"},
    {"q": "senior engineer", "loc": "loc:remote", "min_score": 20},
    {"q": "data", "source": "remoteok", "focus": "focus:non-tech", "status": "all"},
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_list_equals_a_plain_computation(db, jobsift_config, case):
    fill_board(db, jobsift_config)
    filters = search.Filters(**case)
    page = search.search(db, filters, now=NOW)
    expected_ids, expected_total, expected_counts = reference_search(db, filters, NOW)
    assert page.total == expected_total
    assert [row["id"] for row in page.rows] == expected_ids
    assert page.counts == expected_counts
    if case in ({}, {"status": "all"}):
        assert expected_total > search.PAGE_SIZE and any(k for k in expected_counts["source"])


def test_default_page_reads_indexes_only(db, jobsift_config):
    # The page everyone opens: counts from group rows and a combinations index, the page
    # from the order index; no pass over every listing with copies.
    fill_board(db, jobsift_config)
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        search.search(db, search.Filters())
    finally:
        db.conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().startswith("SELECT") and "listing_facets" in s]
    plans = [" | ".join(r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + s)) for s in selects]
    assert plans and all("USING" in plan and "INDEX" in plan for plan in plans), plans
    assert not any("copies = 1" in s for s in selects)


def test_a_search_index_failure_in_the_background_stops_the_batch(db):
    import threading

    listings = parsed("remotive", "remotive/remotive_all_2026-07.json")
    threads = threading.active_count()
    db.conn.execute("DROP TABLE listings_fts")  # every index write now fails, in the worker thread
    with pytest.raises(sqlite3.OperationalError, match="listings_fts"):
        storage.upsert_listings(db, listings)
    assert db.conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 0
    assert threading.active_count() == threads


def test_upsert_works_on_a_connection_kept_to_its_own_thread(tmp_path):
    # A connection that refuses other threads still indexes, just without the worker.
    storage.connect(tmp_path / "jobs.db").conn.close()
    own = sqlite3.connect(tmp_path / "jobs.db")  # check_same_thread defaults to True
    db = storage.Database(own)
    listings = parsed("remotive", "remotive/remotive_all_2026-07.json")
    result = storage.upsert_listings(db, listings)
    assert len(result["new"]) == len(listings)
    assert own.execute("SELECT count(*) FROM listings_fts WHERE listings_fts MATCH 'engineer'").fetchone()[0] > 0
    assert facets_mismatches(db) == []
