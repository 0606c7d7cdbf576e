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
from html import unescape
from pathlib import Path
from typing import Iterable, Iterator

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

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


_COMPANY_SUFFIX_RE = re.compile(r"\b(inc|llc|ltd|limited|gmbh|ag|bv|b\.v|sa|sas|plc|corp|corporation|co)\b\.?", re.I)
_PAREN_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NON_WORD_RE = re.compile(r"[^\w]+")


def group_key(company: str | None, title: str | None) -> str:
    """Normalized company + title, so one job on several boards or cities groups together."""
    c = _COMPANY_SUFFIX_RE.sub(" ", unescape(company or "").lower())
    t = _PAREN_RE.sub(" ", unescape(title or "").lower())
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
    db = Database(conn)
    if str(path) != ":memory:" and db.journal_mode != "wal":
        db.enable_wal()
    if migrate_now:
        with _WRITE_LOCK:
            migrations.apply(db)
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
_WS_RE = re.compile(r"\s+")


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment, for search and prompts (never for display)."""
    if not html:
        return ""
    text = _TAG_RE.sub(" ", html)
    return _WS_RE.sub(" ", unescape(text)).strip()


def content_hash(listing) -> str:
    """Hash of the fields a person reads, so a re-fetch can tell a real change."""
    blob = json.dumps(
        [listing.title, listing.company, listing.location, listing.description_html, listing.salary, list(listing.tags), listing.url],
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def upsert_listings(db: Database, listings: Iterable, seen_at: str | None = None) -> dict:
    """Insert new listings and refresh changed ones by (source, source_id); verdicts are never touched.

    Must run inside `write(db)` by the caller when it is part of a larger batch;
    returns {"new": [...ids], "updated": [...ids], "unchanged": n}.
    """
    seen_at = seen_at or now_iso()
    result = {"new": [], "updated": [], "unchanged": 0}
    conn = db.conn
    with write(db):
        for item in listings:
            h = content_hash(item)
            row = conn.execute(
                "SELECT id, content_hash FROM listings WHERE source = ? AND source_id = ?",
                (item.source, str(item.source_id)),
            ).fetchone()
            raw = json.dumps(item.raw, ensure_ascii=False, sort_keys=True) if item.raw is not None else None
            fields = (
                item.url or "", item.title or "", item.company or "", item.location or "",
                item.description_html or "", item.posted_at, item.salary or "",
                json.dumps(list(item.tags or []), ensure_ascii=False), raw, h,
            )
            if row is None:
                cur = conn.execute(
                    "INSERT INTO listings (url, title, company, location, description_html, posted_at, salary,"
                    " tags, raw, content_hash, source, source_id, fetched_at, first_seen, last_seen, stale)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
                    fields + (item.source, str(item.source_id), seen_at, seen_at, seen_at),
                )
                lid = cur.lastrowid
                result["new"].append(lid)
                _index_text(conn, lid, item)
            elif row[1] != h:
                lid = row[0]
                conn.execute(
                    "UPDATE listings SET url=?, title=?, company=?, location=?, description_html=?, posted_at=?,"
                    " salary=?, tags=?, raw=?, content_hash=?, fetched_at=?, last_seen=?, stale=0 WHERE id=?",
                    fields + (seen_at, seen_at, lid),
                )
                conn.execute("DELETE FROM listings_fts WHERE rowid = ?", (lid,))
                _index_text(conn, lid, item)
                result["updated"].append(lid)
            else:
                conn.execute("UPDATE listings SET last_seen=?, stale=0 WHERE id=?", (seen_at, row[0]))
                result["unchanged"] += 1
    return result


def _index_text(conn: sqlite3.Connection, lid: int, item) -> None:
    conn.execute(
        "INSERT INTO listing_groups (listing_id, group_key) VALUES (?, ?)"
        " ON CONFLICT(listing_id) DO UPDATE SET group_key = excluded.group_key",
        (lid, group_key(item.company, item.title)),
    )
    conn.execute(
        "INSERT INTO listings_fts (rowid, title, company, description) VALUES (?,?,?,?)",
        (lid, item.title or "", item.company or "", html_to_text(item.description_html)),
    )


def mark_stale(db: Database, before_iso: str, source: str | None = None) -> int:
    """Mark listings not seen since `before_iso` as stale (kept, never deleted)."""
    sql = "UPDATE listings SET stale = 1 WHERE stale = 0 AND last_seen < ?"
    args: list = [before_iso]
    if source:
        sql += " AND source = ?"
        args.append(source)
    with write(db):
        return db.conn.execute(sql, args).rowcount


def save_flags(db: Database, listing_id: int, flags: Iterable, version: str) -> None:
    """Replace the computed flags of one listing (overrides live elsewhere and stay)."""
    at = now_iso()
    with write(db):
        for f in flags:
            db.conn.execute(
                "INSERT INTO flags (listing_id, kind, label, evidence, version, computed_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(listing_id, kind) DO UPDATE SET label=excluded.label, evidence=excluded.evidence,"
                " version=excluded.version, computed_at=excluded.computed_at",
                (listing_id, f.kind, f.label, f.evidence, version, at),
            )


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
    return sid
