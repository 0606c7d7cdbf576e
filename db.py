"""Storage: the SQLite schema as named migrations, connections, and the small writes.

What a source published lives in `listings` (plus its raw JSON, untouched). Everything
inferred (flags, scores, LLM calls) lives in its own tables and can be recomputed.
The person's verdicts live in `verdicts`, which no fetch or model ever writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from scraper.normalize import unescape_html

migrations = Migrations("jobsift")

# Deferred transactions that later upgrade to a write lock can fail with
# 'database is locked' without waiting on busy_timeout; every write in this
# process goes through one lock and BEGIN IMMEDIATE instead.
_WRITE_LOCK = threading.RLock()

STATUSES = ("new", "starred", "hidden", "applied")


def now_iso() -> str:
    """Current UTC time as an ISO 8601 string with seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@migrations()
def m001_listings(db: Database) -> None:
    db["listings"].create(
        {
            "id": int,
            "source": str,
            "source_id": str,
            "url": str,
            "title": str,
            "company": str,
            "location": str,
            "description_html": str,
            "posted_at": str,
            "salary": str,
            "tags": str,  # JSON list
            "raw": str,  # the item exactly as the source published it (JSON)
            "content_hash": str,
            "fetched_at": str,
            "first_seen": str,
            "last_seen": str,
            "stale": int,
        },
        pk="id",
        not_null={"source", "source_id"},
        defaults={"stale": 0, "title": "", "company": "", "location": "", "description_html": "", "salary": "", "tags": "[]"},
    )
    db["listings"].create_index(["source", "source_id"], unique=True)
    db["listings"].create_index(["posted_at"])
    db["listings"].create_index(["last_seen"])
    # Plain-text search index maintained by upsert_listings (HTML stripped so tag
    # names and attributes never match a keyword).
    db.execute(
        "CREATE VIRTUAL TABLE listings_fts USING fts5("
        "title, company, description, tokenize='porter unicode61 remove_diacritics 2')"
    )


@migrations()
def m002_flags_verdicts(db: Database) -> None:
    db["flags"].create(
        {"listing_id": int, "kind": str, "label": str, "evidence": str, "version": str, "computed_at": str},
        pk=("listing_id", "kind"),
        foreign_keys=[("listing_id", "listings", "id")],
    )
    db["flags"].create_index(["kind", "label"])
    db["flag_overrides"].create(
        {"listing_id": int, "kind": str, "label": str, "reason": str, "created_at": str},
        pk=("listing_id", "kind"),
        foreign_keys=[("listing_id", "listings", "id")],
    )
    db["verdicts"].create(
        {
            "listing_id": int,
            "status": str,
            "override_score": int,
            "override_reason": str,
            "note": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="listing_id",
        foreign_keys=[("listing_id", "listings", "id")],
        defaults={"status": "new"},
    )
    db["verdicts"].create_index(["status"])


@migrations()
def m003_scores_runs_calls(db: Database) -> None:
    db["scores"].create(
        {
            "id": int,
            "listing_id": int,
            "strategy": str,  # rules | fewshot | facts | claude | human
            "provider": str,  # rules | llamacpp | openai | anthropic
            "model": str,
            "profile_version": str,
            "weights_version": str,
            "score": int,
            "reasoning": str,
            "evidence": str,  # JSON list of quotes
            "grounded": int,
            "latency_ms": int,
            "prompt_tokens": int,
            "completion_tokens": int,
            "detail": str,  # JSON: facts, strengths, gaps... whatever the strategy returns
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("listing_id", "listings", "id")],
    )
    db["scores"].create_index(["listing_id", "id"])
    # The score the dashboard shows per listing, kept beside `scores` so filters
    # and sorts are one indexed join instead of a per-request max() over history.
    db["current_scores"].create(
        {"listing_id": int, "score_id": int, "score": int, "strategy": str},
        pk="listing_id",
        foreign_keys=[("listing_id", "listings", "id"), ("score_id", "scores", "id")],
    )
    db["current_scores"].create_index(["score"])
    db["fetch_runs"].create(
        {
            "id": int,
            "source": str,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | ok | error | skipped | not-modified
            "error": str,
            "n_fetched": int,
            "n_new": int,
            "n_updated": int,
            "n_skipped": int,
        },
        pk="id",
    )
    db["fetch_runs"].create_index(["source", "id"])
    db["source_state"].create(
        {"source": str, "etag": str, "last_modified": str, "last_attempt_at": str, "last_success_at": str},
        pk="source",
    )
    db["llm_calls"].create(
        {
            "id": int,
            "provider": str,
            "model": str,
            "purpose": str,
            "listing_id": int,
            "status": str,
            "error": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "cache_read_tokens": int,
            "cache_write_tokens": int,
            "cost_usd": float,
            "latency_ms": int,
            "created_at": str,
        },
        pk="id",
    )
    db["llm_calls"].create_index(["created_at"])


@migrations()
def m004_listing_groups(db: Database) -> None:
    # Same job on two boards (or once per city): listings sharing a group_key are
    # shown as one row with 'also on: ...'. Derived, so it lives beside listings.
    db["listing_groups"].create(
        {"listing_id": int, "group_key": str},
        pk="listing_id",
        foreign_keys=[("listing_id", "listings", "id")],
    )
    db["listing_groups"].create_index(["group_key"])


@migrations()
def m005_strategy_evals(db: Database) -> None:
    # How well each strategy agreed with labels, so `auto` can pick the best one
    # without re-running a slow model on every start.
    db["strategy_evals"].create(
        {
            "id": int,
            "strategy": str,
            "model": str,
            "profile_version": str,
            "label_set": str,  # "dev" (shipped development set) | "person" (calibration + overrides)
            "n": int,
            "spearman": float,
            "mae": float,
            "top10": int,
            "band_agreement": float,
            "valid_rate": float,
            "grounded_rate": float,
            "median_s": float,
            "created_at": str,
        },
        pk="id",
    )
    db["strategy_evals"].create_index(["label_set", "strategy", "id"])


@migrations()
def m006_escalations(db: Database) -> None:
    # Listings the local model was unsure about, waiting for (or done by) Claude.
    db["escalations"].create(
        {
            "id": int,
            "listing_id": int,
            "reasons": str,  # JSON list: band | ungrounded | disagreement | spread | manual
            "local_score_id": int,
            "status": str,  # queued | running | done | failed | paused
            "attempts": int,
            "error": str,
            "claude_score_id": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        foreign_keys=[("listing_id", "listings", "id")],
        defaults={"status": "queued", "attempts": 0},
    )
    db["escalations"].create_index(["status", "id"])
    db["escalations"].create_index(["listing_id"])


@migrations()
def m007_model_benchmarks(db: Database) -> None:
    # Local model x strategy measured on the person's labels: quality and speed,
    # so `local_model = "auto"` can use the best one.
    db["model_benchmarks"].create(
        {
            "id": int,
            "run_id": str,
            "provider": str,
            "model": str,  # model name as shown
            "model_ref": str,  # GGUF path or server URL + model id: what make_engine needs
            "strategy": str,
            "label_source": str,  # claude | human | dev
            "n": int,
            "mae": float,
            "spearman": float,
            "band_agreement": float,
            "valid_rate": float,
            "grounded_rate": float,
            "median_s": float,
            "prompt_tps": float,
            "gen_tps": float,
            "rank_score": float,
            "created_at": str,
        },
        pk="id",
    )
    db["model_benchmarks"].create_index(["run_id"])


@migrations()
def m008_listing_facets(db: Database) -> None:
    # What the dashboard filters, counts and sorts on, one row per listing, kept in
    # step with listings, groups, flags, overrides, verdicts and scores by triggers
    # (see FACETS_SCHEMA), so a request reads one narrow indexed table.
    for statement in FACETS_SCHEMA:
        db.execute(statement)
    ensure_facet_triggers(db)
    refresh_facets(db)
    # Merge index segments in eights rather than fours while a fetch writes: about a
    # fifth less work per stored listing, and keyword queries stay well under a millisecond.
    db.execute("INSERT INTO listings_fts (listings_fts, rank) VALUES ('automerge', 8)")


_COMPANY_SUFFIX_RE = re.compile(r"\b(inc|llc|ltd|limited|gmbh|ag|bv|b\.v|sa|sas|plc|corp|corporation|co)\b\.?", re.I)
_PAREN_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NON_WORD_RE = re.compile(r"[^\w]+")


def group_key(company: str | None, title: str | None) -> str:
    """Normalized company + title, so one job on several boards or cities groups together."""
    c = _COMPANY_SUFFIX_RE.sub(" ", unescape_html(company or "").lower())
    t = _PAREN_RE.sub(" ", unescape_html(title or "").lower())
    c = _NON_WORD_RE.sub(" ", c).strip()
    t = _NON_WORD_RE.sub(" ", t).strip()
    return f"{c}|{t}"


def connect(path: str | Path, migrate_now: bool = True) -> Database:
    """Open the database with WAL, busy_timeout and foreign keys, applying migrations."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.row_factory = None
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Sorts, temporary tables and staged rows stay in memory rather than in temp files.
    conn.execute("PRAGMA temp_store = MEMORY")
    db = Database(conn)
    if str(path) != ":memory:" and db.journal_mode != "wal":
        db.enable_wal()
    if migrate_now:
        with _WRITE_LOCK:
            migrations.apply(db)
            _restore_facet_triggers(db)
    return db


@contextlib.contextmanager
def write(db: Database) -> Iterator[Database]:
    """One short write transaction, serialized across this process's threads."""
    with _WRITE_LOCK:
        if db.conn.in_transaction:
            # Nested use joins the outer transaction.
            yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")


_TAG_RE = re.compile(r"<[^>]+>")


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment, for search and prompts (never for display)."""
    if not html:
        return ""
    # str.split() and the regex \s agree on what whitespace is, so this equals
    # collapsing whitespace runs with a regex and stripping, at a fraction of the cost.
    return " ".join(unescape_html(_TAG_RE.sub(" ", html)).split())


def search_text(html: str | None) -> str:
    """The words of an HTML fragment as the search index reads them: html_to_text without collapsing spaces.

    The tokenizer splits on any run of whitespace, so collapsing it (the costliest
    step of html_to_text on long descriptions) changes no search result.
    """
    if not html:
        return ""
    return unescape_html(_TAG_RE.sub(" ", html))


_JSON = json.JSONEncoder(ensure_ascii=False).encode
_RAW_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def content_hash(listing) -> str:
    """Hash of the fields a person reads, so a re-fetch can tell a real change."""
    blob = _JSON(
        [listing.title, listing.company, listing.location, listing.description_html, listing.salary, list(listing.tags), listing.url],
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Listings looked up per query, and written per round of statements.
_BATCH_ROWS = 400
_INSERT_LISTING = (
    "INSERT INTO listings (id, url, title, company, location, description_html, posted_at, salary, tags, raw,"
    " content_hash, source, source_id, fetched_at, first_seen, last_seen, stale)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)"
)
_UPSERT_GROUP = (
    "INSERT INTO listing_groups (listing_id, group_key) VALUES (?, ?)"
    " ON CONFLICT(listing_id) DO UPDATE SET group_key = excluded.group_key"
)
_UPDATE_LISTING = (
    "UPDATE listings SET url=?, title=?, company=?, location=?, description_html=?, posted_at=?,"
    " salary=?, tags=?, raw=?, content_hash=?, fetched_at=?, last_seen=?, stale=0 WHERE id=?"
)


def upsert_listings(db: Database, listings: Iterable, seen_at: str | None = None) -> dict:
    """Insert new listings and refresh changed ones by (source, source_id); verdicts are never touched.

    Must run inside `write(db)` by the caller when it is part of a larger batch;
    returns {"new": [...ids], "updated": [...ids], "unchanged": n}.
    """
    seen_at = seen_at or now_iso()
    result = {"new": [], "updated": [], "unchanged": 0}
    items = list(listings)
    conn = db.conn
    with facets_batch(db):
        # The write lock is held, so the ids SQLite would pick (max + 1) can be given
        # up front, and the rows of a batch inserted with one executemany.
        next_id = conn.execute("SELECT COALESCE(max(id), 0) + 1 FROM listings").fetchone()[0]
        keys = [(item.source, str(item.source_id)) for item in items]
        stored: dict[tuple[str, str], list] = {}
        for start in range(0, len(keys), _BATCH_ROWS):
            _find_stored(conn, keys[start:start + _BATCH_ROWS], stored)
        pending = _PendingWrites(db)
        try:
            for n, (item, key) in enumerate(zip(items, keys), 1):
                if key in pending.keys:
                    # The same listing twice in one batch: write the first before comparing.
                    pending.flush()
                h = content_hash(item)
                row = stored.get(key)
                if row is not None and row[1] == h:
                    pending.seen.append((seen_at, row[0]))
                    result["unchanged"] += 1
                else:
                    raw = _RAW_JSON(item.raw) if item.raw is not None else None
                    fields = (
                        item.url or "", item.title or "", item.company or "", item.location or "",
                        item.description_html or "", item.posted_at, item.salary or "",
                        _JSON(list(item.tags or [])), raw, h,
                    )
                    if row is None:
                        lid, next_id = next_id, next_id + 1
                        stored[key] = [lid, h]
                        pending.inserts.append((lid,) + fields + (key[0], key[1], seen_at, seen_at, seen_at))
                        result["new"].append(lid)
                    else:
                        lid = row[0]
                        row[1] = h
                        pending.updates.append(fields + (seen_at, seen_at, lid))
                        result["updated"].append(lid)
                    pending.keys.add(key)
                    pending.groups.append((lid, group_key(item.company, item.title)))
                    pending.texts.append(
                        (lid, item.title or "", item.company or "", search_text(item.description_html)))
                if n % _BATCH_ROWS == 0:
                    pending.flush()
            pending.flush()
            pending.indexing.wait()
        finally:
            pending.indexing.stop()
    return result


class _PendingWrites:
    """Rows of an upsert batch waiting to be written, in a safe order."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.indexing = _BackgroundIndexing(db.conn)
        self._reset()

    def _reset(self) -> None:
        self.keys: set = set()
        self.inserts: list = []
        self.updates: list = []
        self.seen: list = []
        self.groups: list = []
        self.texts: list = []

    def flush(self) -> None:
        """Write the pending rows (their search text in the background) and start over."""
        conn = self.db.conn
        self.indexing.wait()
        conn.executemany(_INSERT_LISTING, self.inserts)
        conn.executemany(_UPDATE_LISTING, self.updates)
        conn.executemany("UPDATE listings SET last_seen=?, stale=0 WHERE id=?", self.seen)
        conn.executemany("DELETE FROM listings_fts WHERE rowid = ?", [(u[-1],) for u in self.updates])
        conn.executemany(_UPSERT_GROUP, self.groups)
        written = [row[0] for row in self.inserts] + [u[-1] for u in self.updates] + [s[1] for s in self.seen]
        touch_facets(self.db, written)
        self.indexing.start(self.texts)
        self._reset()


class _BackgroundIndexing:
    """Adds rows to the search index in a worker thread while the next rows are prepared.

    Tokenizing is most of a fetch's database time and runs inside SQLite without
    Python's lock, so it overlaps the hashing and encoding of the next rows. The
    connection is never used by two threads at once: every other statement waits for
    the worker's to finish (wait), and the rows reach the worker through a temporary
    table, so it runs a single statement. (Writing the listings there too measured
    slower: staging their long rows costs the main thread about what it saves.)
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.threaded = _usable_from_other_threads(conn)
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS search_rows (rowid INTEGER PRIMARY KEY, title, company, description)"
        )

    def start(self, rows: list) -> None:
        """Index these (rowid, title, company, text) rows in the background."""
        self.wait()
        if not rows:
            return
        self.conn.executemany(
            "INSERT INTO temp.search_rows (rowid, title, company, description) VALUES (?,?,?,?)", rows
        )
        if not self.threaded:
            self._run()
            self.wait()
            return
        self.thread = threading.Thread(target=self._run, name="search-indexing", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            # Search text with HTML stripped, so tag names and attributes never match a keyword.
            self.conn.execute(
                "INSERT INTO listings_fts (rowid, title, company, description)"
                " SELECT rowid, title, company, description FROM temp.search_rows"
            )
            self.conn.execute("DELETE FROM temp.search_rows")
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread by wait()
            self.error = exc

    def wait(self) -> None:
        """Block until the background statement is done; raise what it raised."""
        self.stop()
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def stop(self) -> None:
        """Block until the background statement is done, without raising."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None


def _usable_from_other_threads(conn: sqlite3.Connection) -> bool:
    """False for a connection opened with check_same_thread (connect() never does that)."""
    usable: list[bool] = []

    def probe() -> None:
        try:
            conn.execute("SELECT 1")
            usable.append(True)
        except sqlite3.ProgrammingError:
            usable.append(False)

    thread = threading.Thread(target=probe, name="thread-check")
    thread.start()
    thread.join()
    return usable == [True]


def _find_stored(conn: sqlite3.Connection, keys: list[tuple[str, str]], found: dict) -> None:
    """Add {(source, source_id): [id, content_hash]} of the stored listings among `keys` to `found`."""
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(source_id)
    for source, source_ids in by_source.items():
        for lid, source_id, h in conn.execute(
            "SELECT id, source_id, content_hash FROM listings"
            f" WHERE source = ? AND source_id IN ({_marks(source_ids)})",
            [source, *source_ids],
        ):
            found[(source, source_id)] = [lid, h]


def _marks(values) -> str:
    return ",".join("?" * len(values))


def mark_stale(db: Database, before_iso: str, source: str | None = None) -> int:
    """Mark listings not seen since `before_iso` as stale (kept, never deleted)."""
    # Candidates come from the narrow covering index: checking last_seen and stale in
    # the rows themselves means reading past each long description.
    candidates = f"SELECT id FROM listings INDEXED BY {LISTINGS_TRIAGE_INDEX} WHERE last_seen < ?"
    args: list = [before_iso]
    if source:
        candidates += " AND source = ?"
        args.append(source)
    with write(db):
        return db.conn.execute(f"UPDATE listings SET stale = 1 WHERE stale = 0 AND id IN ({candidates})", args).rowcount


_UPSERT_FLAG = (
    "INSERT INTO flags (listing_id, kind, label, evidence, version, computed_at) VALUES (?,?,?,?,?,?)"
    " ON CONFLICT(listing_id, kind) DO UPDATE SET label=excluded.label, evidence=excluded.evidence,"
    " version=excluded.version, computed_at=excluded.computed_at"
)


def save_flags(db: Database, listing_id: int, flags: Iterable, version: str) -> None:
    """Replace the computed flags of one listing (overrides live elsewhere and stay)."""
    save_flags_many(db, [(listing_id, flags)], version)


def save_flags_many(db: Database, flags_by_listing: Iterable[tuple[int, Iterable]], version: str) -> None:
    """Replace the computed flags of several listings at once: (listing_id, flags) pairs."""
    at = now_iso()
    rows = [(lid, f.kind, f.label, f.evidence, version, at) for lid, flags in flags_by_listing for f in flags]
    with write(db):
        db.conn.executemany(_UPSERT_FLAG, rows)
        touch_facets(db, {row[0] for row in rows})


def set_verdict(db: Database, listing_id: int, **changes) -> dict:
    """Create or update the person's verdict on a listing; returns the stored row."""
    allowed = {"status", "override_score", "override_reason", "note"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown verdict fields: {sorted(unknown)}")
    if "status" in changes and changes["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    at = now_iso()
    with write(db):
        db.conn.execute(
            "INSERT INTO verdicts (listing_id, status, created_at, updated_at) VALUES (?, 'new', ?, ?)"
            " ON CONFLICT(listing_id) DO NOTHING",
            (listing_id, at, at),
        )
        if changes:
            cols = ", ".join(f"{k} = ?" for k in changes)
            db.conn.execute(
                f"UPDATE verdicts SET {cols}, updated_at = ? WHERE listing_id = ?",
                list(changes.values()) + [at, listing_id],
            )
        touch_facets(db, [listing_id])
    return get_verdict(db, listing_id)


def get_verdict(db: Database, listing_id: int) -> dict:
    """The person's verdict on a listing, or the default 'new' one."""
    rows = list(db.query("SELECT * FROM verdicts WHERE listing_id = ?", [listing_id]))
    if rows:
        return rows[0]
    return {"listing_id": listing_id, "status": "new", "override_score": None, "override_reason": None, "note": None}


def save_score(db: Database, listing_id: int, **score) -> int:
    """Record a score with its provenance and make it the listing's current score."""
    score.setdefault("created_at", now_iso())
    for key in ("evidence", "detail"):
        if key in score and not isinstance(score[key], str):
            score[key] = json.dumps(score[key], ensure_ascii=False)
    score["score"] = max(0, min(100, int(score["score"])))
    with write(db):
        cols = ["listing_id"] + list(score)
        cur = db.conn.execute(
            f"INSERT INTO scores ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [listing_id] + list(score.values()),
        )
        sid = cur.lastrowid
        db.conn.execute(
            "INSERT INTO current_scores (listing_id, score_id, score, strategy) VALUES (?,?,?,?)"
            " ON CONFLICT(listing_id) DO UPDATE SET score_id=excluded.score_id, score=excluded.score,"
            " strategy=excluded.strategy",
            (listing_id, sid, score["score"], score.get("strategy")),
        )
        touch_facets(db, [listing_id])
    return sid


# ---------------------------------------------------------------------------
# Dashboard facets: what the list filters, counts and sorts on, one row per listing.
#
# A listing's facets are its source, dates, group, effective location and focus (the
# person's override, else the computed flag), its group's verdict (status and override
# score) and its own current score. Triggers keep them in step with every write to the
# tables they come from, whoever writes; bulk writers (a fetch, re-flagging) set the
# triggers aside inside their own transaction and refresh the rows they touched with a
# few set-based statements at the end (see facets_batch).

FACETS_TABLE = """CREATE TABLE IF NOT EXISTS listing_facets (
    listing_id INTEGER PRIMARY KEY,
    gid INTEGER,
    copies INTEGER NOT NULL DEFAULT 0,
    lead INTEGER NOT NULL DEFAULT 1,
    source TEXT NOT NULL DEFAULT '',
    posted TEXT,
    last_seen TEXT,
    loc TEXT NOT NULL DEFAULT 'loc:unknown',
    focus TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    override_score INTEGER,
    own_score INTEGER,
    score INTEGER,
    unscored INTEGER NOT NULL DEFAULT 1,
    priority INTEGER NOT NULL DEFAULT 0
)"""
# gid: the job_groups row of the listing's group_key (NULL when it has no group row);
# copies: 1 when that group has other members; lead: 1 for the group's most recently
# seen member; posted: posted_at, else first_seen; status and override_score: the
# group's verdict; own_score: current_scores.score; score: the override, else own_score;
# unscored: score is NULL; priority: focus is 'focus:priority'. The last three are plain
# columns rather than generated ones so that indexes holding them can cover a query.

# Covering the few small listing columns the fill reads (they sit after the long
# description in each row) and the flag label, so neither lookup visits a table row.
LISTINGS_TRIAGE_INDEX = "idx_listings_triage"
FLAGS_LABEL_INDEX = "idx_flags_listing_kind_label"

FACETS_SCHEMA = (
    FACETS_TABLE,
    # One row per group_key: its size, its verdict, and (for jobs with copies) the
    # distinct sources, locations and focuses of its members as sorted JSON arrays.
    "CREATE TABLE IF NOT EXISTS job_groups (id INTEGER PRIMARY KEY, group_key TEXT NOT NULL UNIQUE,"
    " members INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'new', override_score INTEGER,"
    " sources TEXT, locs TEXT, focuses TEXT)",
    f"CREATE INDEX IF NOT EXISTS {LISTINGS_TRIAGE_INDEX} ON listings(id, source, posted_at, first_seen, last_seen)",
    f"CREATE INDEX IF NOT EXISTS {FLAGS_LABEL_INDEX} ON flags(listing_id, kind, label)",
    # Counting listings without copies: one ordered pass over facet combinations.
    "CREATE INDEX IF NOT EXISTS idx_facets_combo ON listing_facets(copies, source, status, loc, focus)",
    # Each group's members, newest first, with what its status count and a page need:
    # the copy a filtered page shows is the first member of its group that passes.
    "CREATE INDEX IF NOT EXISTS idx_facets_group ON listing_facets(copies, gid, last_seen DESC, listing_id DESC,"
    " status, source, loc, focus, priority, unscored, score, posted)",
    # Counting jobs with copies once per option: one ordered pass over (value, group) per facet.
    "CREATE INDEX IF NOT EXISTS idx_facets_source ON listing_facets(copies, source, gid, status, loc, focus)",
    "CREATE INDEX IF NOT EXISTS idx_facets_loc ON listing_facets(copies, loc, gid, status, source, focus)",
    "CREATE INDEX IF NOT EXISTS idx_facets_focus ON listing_facets(copies, focus, gid, status, source, loc)",
    # Counting jobs with copies when only their status is filtered (the default page).
    "CREATE INDEX IF NOT EXISTS idx_groups_sources ON job_groups(status, sources) WHERE members > 1",
    "CREATE INDEX IF NOT EXISTS idx_groups_locs ON job_groups(status, locs) WHERE members > 1",
    "CREATE INDEX IF NOT EXISTS idx_groups_focuses ON job_groups(status, focuses) WHERE members > 1",
    # The page in either order, read from the top.
    "CREATE INDEX IF NOT EXISTS idx_facets_by_score ON listing_facets"
    "(lead, priority DESC, unscored, score DESC, posted DESC, listing_id DESC, status, copies, source, loc, focus)",
    "CREATE INDEX IF NOT EXISTS idx_facets_by_date ON listing_facets"
    "(lead, priority DESC, posted DESC, listing_id DESC, status, copies, source, loc, focus)",
)

_OVERRIDE = "CASE WHEN jg.id IS NULL THEN v.override_score ELSE jg.override_score END"
# One listing's facets from the tables they come from; {source} names `listings l`
# (with an index hint for large refreshes) and {where} picks the listings.
FACETS_FILL = f"""INSERT INTO listing_facets (listing_id, gid, copies, source, posted, last_seen, loc, focus, status,
                            override_score, own_score, score, unscored, priority)
SELECT l.id, jg.id, COALESCE(jg.members > 1, 0), l.source, COALESCE(l.posted_at, l.first_seen), l.last_seen,
       COALESCE(lo.label, lf.label, 'loc:unknown'), COALESCE(fo.label, ff.label),
       CASE WHEN jg.id IS NULL THEN COALESCE(v.status, 'new') ELSE jg.status END,
       {_OVERRIDE}, cs.score, COALESCE({_OVERRIDE}, cs.score), COALESCE({_OVERRIDE}, cs.score) IS NULL,
       COALESCE(fo.label, ff.label) IS 'focus:priority'
FROM {{source}}
LEFT JOIN listing_groups g ON g.listing_id = l.id
LEFT JOIN job_groups jg ON jg.group_key = g.group_key
LEFT JOIN flags lf INDEXED BY {FLAGS_LABEL_INDEX} ON lf.listing_id = l.id AND lf.kind = 'location'
LEFT JOIN flags ff INDEXED BY {FLAGS_LABEL_INDEX} ON ff.listing_id = l.id AND ff.kind = 'focus'
LEFT JOIN flag_overrides lo ON lo.listing_id = l.id AND lo.kind = 'location'
LEFT JOIN flag_overrides fo ON fo.listing_id = l.id AND fo.kind = 'focus'
LEFT JOIN verdicts v ON jg.id IS NULL AND v.listing_id = l.id
LEFT JOIN current_scores cs ON cs.listing_id = l.id
WHERE {{where}}
ON CONFLICT (listing_id) DO UPDATE SET
    gid = excluded.gid, copies = excluded.copies, lead = CASE WHEN excluded.gid IS NULL THEN 1 ELSE lead END,
    source = excluded.source, posted = excluded.posted, last_seen = excluded.last_seen, loc = excluded.loc,
    focus = excluded.focus, status = excluded.status, override_score = excluded.override_score,
    own_score = excluded.own_score, score = excluded.score, unscored = excluded.unscored,
    priority = excluded.priority
WHERE gid IS NOT excluded.gid OR copies IS NOT excluded.copies OR source IS NOT excluded.source
    OR posted IS NOT excluded.posted OR last_seen IS NOT excluded.last_seen OR loc IS NOT excluded.loc
    OR focus IS NOT excluded.focus OR status IS NOT excluded.status
    OR override_score IS NOT excluded.override_score OR own_score IS NOT excluded.own_score"""
FACETS_LISTINGS = f"listings l INDEXED BY {LISTINGS_TRIAGE_INDEX}"

_LATEST_VERDICT = (
    "SELECT {column} FROM listing_groups m JOIN verdicts v ON v.listing_id = m.listing_id"
    " WHERE m.group_key = job_groups.group_key ORDER BY v.updated_at DESC, v.listing_id DESC LIMIT 1"
)


def _group_refresh(gids: str) -> list[str]:
    """Statements that bring the groups selected by `gids` (an SQL list or subquery) up to date.

    A group's verdict is its most recently updated member verdict; every member gets
    it, whether it has copies, and whether it is the most recently seen member.
    """
    return [
        "UPDATE job_groups SET"
        " members = (SELECT count(*) FROM listing_groups m WHERE m.group_key = job_groups.group_key),"
        f" status = COALESCE(({_LATEST_VERDICT.format(column='v.status')}), 'new'),"
        f" override_score = ({_LATEST_VERDICT.format(column='v.override_score')})"
        f" WHERE id IN {gids}",
        "UPDATE listing_facets SET copies = jg.members > 1, status = jg.status, override_score = jg.override_score,"
        " score = COALESCE(jg.override_score, own_score), unscored = COALESCE(jg.override_score, own_score) IS NULL"
        " FROM job_groups jg WHERE jg.id = listing_facets.gid"
        f" AND listing_facets.copies IN (0, 1) AND listing_facets.gid IN {gids}"
        " AND (listing_facets.copies IS NOT (jg.members > 1) OR listing_facets.status IS NOT jg.status"
        " OR listing_facets.override_score IS NOT jg.override_score)",
        # One window pass: a correlated 'latest member' lookup per member is quadratic
        # in the group's size, and a job posted once per city has hundreds of copies.
        "UPDATE listing_facets SET lead = ranked.first FROM (SELECT listing_id AS id,"
        " row_number() OVER (PARTITION BY gid ORDER BY last_seen DESC, listing_id DESC) = 1 AS first"
        f" FROM listing_facets WHERE copies IN (0, 1) AND gid IN {gids}) AS ranked"
        " WHERE listing_facets.listing_id = ranked.id AND listing_facets.lead IS NOT ranked.first",
        _group_values(gids),
        f"DELETE FROM job_groups WHERE members = 0 AND id IN {gids}",
    ]


def _group_values(gids: str) -> str:
    """The statement refreshing the member values (sources, locs, focuses) of the groups `gids` selects."""

    def distinct(column: str) -> str:
        return (
            f"(SELECT json_group_array(value) FROM (SELECT DISTINCT {column} AS value FROM listing_facets m"
            " WHERE m.copies IN (0, 1) AND m.gid = job_groups.id ORDER BY 1))"
        )

    sources, locs, focuses = distinct("source"), distinct("loc"), distinct("COALESCE(focus, '')")
    return (
        f"UPDATE job_groups SET sources = {sources}, locs = {locs}, focuses = {focuses}"
        f" WHERE members > 1 AND id IN {gids}"
    )


FACETS_TRIGGER_PREFIX = "facets_"


def _facet_triggers() -> list[str]:
    """The triggers that keep listing_facets in step with the tables it is derived from."""

    def fill(listing_id: str) -> str:
        # No index hints in triggers: a missing index must not stop every write.
        unhinted = FACETS_FILL.replace(f" INDEXED BY {FLAGS_LABEL_INDEX}", "")
        return unhinted.format(source="listings l", where=f"l.id = {listing_id}")

    def group_of(listing_id: str) -> str:
        return f"(SELECT gid FROM listing_facets WHERE listing_id = {listing_id})"

    def keyed(*keys: str) -> str:
        return f"(SELECT id FROM job_groups WHERE group_key IN ({', '.join(keys)}))"

    new_group = "INSERT OR IGNORE INTO job_groups (group_key) VALUES (NEW.group_key)"
    triggers: dict[tuple[str, str], list[str]] = {
        ("listings", "INSERT"): [fill("NEW.id")],
        ("listings", "UPDATE OF source, posted_at, first_seen, last_seen"): [
            fill("NEW.id"), *_group_refresh(group_of("NEW.id"))],
        ("listing_groups", "INSERT"): [new_group, fill("NEW.listing_id"), *_group_refresh(keyed("NEW.group_key"))],
        ("listing_groups", "UPDATE"): [
            new_group, fill("OLD.listing_id"), fill("NEW.listing_id"),
            *_group_refresh(keyed("OLD.group_key", "NEW.group_key"))],
        ("listing_groups", "DELETE"): [fill("OLD.listing_id"), *_group_refresh(keyed("OLD.group_key"))],
    }
    for table in ("flags", "flag_overrides", "current_scores"):
        # A flag is one of the member values its group lists; a score is not.
        values = [_group_values(group_of("OLD.listing_id")), _group_values(group_of("NEW.listing_id"))]
        if table == "current_scores":
            values = []
        triggers[(table, "INSERT")] = [fill("NEW.listing_id"), *values[1:]]
        triggers[(table, "UPDATE")] = [fill("OLD.listing_id"), fill("NEW.listing_id"), *values]
        triggers[(table, "DELETE")] = [fill("OLD.listing_id"), *values[:1]]
    triggers[("verdicts", "INSERT")] = [*_group_refresh(group_of("NEW.listing_id")), fill("NEW.listing_id")]
    triggers[("verdicts", "UPDATE")] = [
        *_group_refresh(f"(SELECT gid FROM listing_facets WHERE listing_id IN (OLD.listing_id, NEW.listing_id))"),
        fill("OLD.listing_id"), fill("NEW.listing_id")]
    triggers[("verdicts", "DELETE")] = [*_group_refresh(group_of("OLD.listing_id")), fill("OLD.listing_id")]
    triggers[("listings", "DELETE")] = ["DELETE FROM listing_facets WHERE listing_id = OLD.id"]
    return [
        f"CREATE TRIGGER IF NOT EXISTS {FACETS_TRIGGER_PREFIX}{table}_{event.split()[0].lower()}"
        f" AFTER {event} ON {table} BEGIN {'; '.join(body)}; END"
        for (table, event), body in triggers.items()
    ]



def refresh_facets(db: Database, listing_ids: Iterable[int] | None = None) -> None:
    """Recompute the facets of these listings (all when None) and of the groups they were or are in."""
    conn = db.conn
    with write(db):
        if listing_ids is None:
            conn.execute("DELETE FROM listing_facets")
            conn.execute("DELETE FROM job_groups")
            conn.execute("INSERT INTO job_groups (group_key) SELECT DISTINCT group_key FROM listing_groups")
            every_group = "(SELECT id FROM job_groups)"
            aggregates, *members = _group_refresh(every_group)
            conn.execute(aggregates)
            conn.execute(FACETS_FILL.format(source=FACETS_LISTINGS, where="1"))
            for statement in members:
                conn.execute(statement)
            return
        ids = json.dumps(sorted(set(listing_ids)))
        if ids == "[]":
            return
        listed = "(SELECT value FROM json_each(?))"
        groups_sql = f"SELECT DISTINCT gid FROM listing_facets WHERE listing_id IN {listed} AND gid IS NOT NULL"
        before = {gid for (gid,) in conn.execute(groups_sql, [ids])}
        conn.execute(
            "INSERT OR IGNORE INTO job_groups (group_key)"
            f" SELECT DISTINCT group_key FROM listing_groups WHERE listing_id IN {listed}", [ids])
        conn.execute(
            f"DELETE FROM listing_facets WHERE listing_id IN {listed} AND listing_id NOT IN (SELECT id FROM listings)",
            [ids])
        conn.execute(FACETS_FILL.format(source=FACETS_LISTINGS, where=f"l.id IN {listed}"), [ids])
        gids = json.dumps(sorted(before | {gid for (gid,) in conn.execute(groups_sql, [ids])}))
        for statement in _group_refresh(listed):
            conn.execute(statement, [gids])


@contextlib.contextmanager
def facets_batch(db: Database) -> Iterator[set]:
    """A write transaction whose facet upkeep waits for one set-based refresh at its end.

    Yields the set of listing ids to refresh; the writers in this module add to it
    (see touch_facets). Nested batches join the outer one. The triggers are dropped
    for the batch and created again before it ends, inside the same transaction, so
    no other connection ever sees them missing: a statement on a table with writing
    triggers keeps a statement journal, which makes every row of a bulk insert cost
    several times more even when the triggers would do nothing.
    """
    with write(db):
        outer = getattr(db, "_facets_batch", None)
        if outer is not None:
            yield outer
            return
        touched: set[int] = set()
        db._facets_batch = touched
        for (name,) in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name GLOB ?", [FACETS_TRIGGER_PREFIX + "*"]
        ).fetchall():
            db.conn.execute(f"DROP TRIGGER {name}")
        try:
            yield touched
        except BaseException:
            # The failure normally rolls the transaction back; should a caller keep it,
            # neither the triggers nor the touched rows may stay behind.
            if db.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    _end_batch(db, touched)
            raise
        else:
            _end_batch(db, touched)
        finally:
            db._facets_batch = None


def _end_batch(db: Database, touched: set) -> None:
    refresh_facets(db, touched)
    ensure_facet_triggers(db)


def _restore_facet_triggers(db: Database) -> None:
    # A crash cannot leave the triggers missing (their drop and re-create share one
    # transaction), but a caller that swallowed a batch's failure and committed could.
    present = db.conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name GLOB ?", [FACETS_TRIGGER_PREFIX + "*"]
    ).fetchone()[0]
    if "listing_facets" in db.table_names() and present < len(_facet_triggers()):
        with write(db):
            ensure_facet_triggers(db)
            refresh_facets(db)


def ensure_facet_triggers(db: Database) -> None:
    """Create any missing facet trigger (a no-op, and no schema change, when all exist)."""
    for statement in _facet_triggers():
        db.conn.execute(statement)


def touch_facets(db: Database, listing_ids: Iterable[int]) -> None:
    """Note listings whose facets a running facets_batch must refresh (outside one, triggers do it)."""
    batch = getattr(db, "_facets_batch", None)
    if batch is not None:
        batch.update(listing_ids)
