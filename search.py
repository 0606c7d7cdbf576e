"""The dashboard's query layer: filters from a query string, facet counts, duplicate collapse, pages.

A listing's effective flag is the person's flag override when there is one, else the
computed flag. Verdicts belong to the job, not to one board's copy of it: the verdict
of a group (listings sharing a group_key) is its most recently updated one, so a copy
that appears on another board later is already starred or hidden.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping

import db as storage

PAGE_SIZE = 50
LOCATION_LABELS = (
    "loc:home", "loc:remote", "loc:remote-restricted", "loc:country-other", "loc:overseas-onsite", "loc:unknown",
)
# What `eligible` hides. loc:unknown stays: never hide what we are unsure of.
INELIGIBLE_LOCATIONS = ("loc:overseas-onsite", "loc:remote-restricted", "loc:country-other")
FOCUS_LABELS = ("focus:priority", "focus:tech", "focus:non-tech")
FLAG_LABELS = {"location": LOCATION_LABELS, "focus": FOCUS_LABELS}
STATUS_FILTERS = ("active", "starred", "hidden", "applied", "all")
DAY_CHOICES = (7, 30, 90)
SORTS = ("score", "date")
MAX_KEYWORD_CHARS = 200
MAX_KEYWORD_TERMS = 12
MAX_NOTE_CHARS = 2000
MAX_REASON_CHARS = 200

_TERM_RE = re.compile(r'"([^"]*)"|(\S+)')
_WORD_RE = re.compile(r"\w+")
_INT_RE = re.compile(r"[+-]?\d{1,9}")
_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no", ""}


@dataclass(frozen=True)
class Filters:
    """What the person asked the list to show; every field has a safe default."""

    q: str = ""
    source: str | None = None
    status: str = "active"
    eligible: bool = False
    loc: str | None = None
    focus: str | None = None
    days: int | None = None
    min_score: int | None = None
    sort: str = "score"
    page: int = 1

    def args(self, **changes) -> dict:
        """Query-string arguments for these filters (defaults left out), with `changes` applied."""
        out = {}
        for spec in fields(self):
            value = changes.get(spec.name, getattr(self, spec.name))
            if value is None or value == spec.default:
                continue
            out[spec.name] = "1" if value is True else value
        return out


@dataclass
class ResultPage:
    """One page of collapsed rows, the total, and per-option counts for the filter panel."""

    filters: Filters
    rows: list[dict]
    total: int
    pages: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Query string -> Filters


def parse_filters(args: Mapping[str, str], is_known_source: Callable[[str], bool]) -> tuple[Filters, list[str]]:
    """Read filters from request arguments; anything unusable becomes its default plus a notice."""
    notices: list[str] = []

    q = (args.get("q") or "").strip()
    if len(q) > MAX_KEYWORD_CHARS:
        q = q[:MAX_KEYWORD_CHARS]
        notices.append(f"The keyword was cut to its first {MAX_KEYWORD_CHARS} characters.")
    if q and keyword_match(q) is None:
        notices.append(f"Ignored keyword {_shown(q)}: it has no letters or digits to search for.")
        q = ""
    elif len(_terms(q)) > MAX_KEYWORD_TERMS:
        notices.append(f"Only the first {MAX_KEYWORD_TERMS} keyword terms are searched.")

    source = _text(args, "source")
    if source is not None and not is_known_source(source):
        notices.append(f"Unknown source {_shown(source)}: showing every source.")
        source = None

    status = _text(args, "status") or "active"
    if status not in STATUS_FILTERS:
        notices.append(f"Unknown status {_shown(status)}: showing active listings.")
        status = "active"

    eligible = False
    raw_eligible = args.get("eligible")
    if raw_eligible is not None:
        flag = raw_eligible.strip().lower()
        if flag in _TRUE:
            eligible = True
        elif flag not in _FALSE:
            notices.append(f"Ignored eligible={_shown(raw_eligible)}: use eligible=1.")

    loc = _label(args, "loc", "loc:", LOCATION_LABELS, "location", notices)
    focus = _label(args, "focus", "focus:", FOCUS_LABELS, "focus", notices)

    days = _number(args, "days", notices)
    if days is not None and days not in DAY_CHOICES:
        notices.append(f"Ignored days={days}: choose 7, 30 or 90.")
        days = None

    min_score = _number(args, "min_score", notices)
    if min_score is not None and not 0 <= min_score <= 100:
        notices.append(f"Ignored min_score={min_score}: a score is between 0 and 100.")
        min_score = None

    sort = _text(args, "sort") or "score"
    if sort not in SORTS:
        notices.append(f"Unknown sort {_shown(sort)}: sorted by score.")
        sort = "score"

    page = _number(args, "page", notices)
    if page is not None and page < 1:
        notices.append(f"Ignored page={page}: pages start at 1.")
        page = None

    filters = Filters(
        q=q, source=source, status=status, eligible=eligible, loc=loc, focus=focus,
        days=days, min_score=min_score, sort=sort, page=page or 1,
    )
    return filters, notices


def keyword_match(q: str) -> str | None:
    """An FTS5 MATCH expression for the person's words (each quoted, so no FTS syntax), or None."""
    terms = _terms(q)[:MAX_KEYWORD_TERMS]
    return " ".join(terms) if terms else None


def _terms(q: str) -> list[str]:
    # Every term becomes a quoted FTS5 string of plain word characters: whole-word
    # matching through the tokenizer ('rust' never matches 'trust') and no syntax
    # the person could break. "Quoted words" stay together as a phrase.
    terms = []
    for phrase, bare in _TERM_RE.findall(q):
        if phrase:
            words = _WORD_RE.findall(phrase)
            if words:
                terms.append('"' + " ".join(words) + '"')
        else:
            terms.extend(f'"{word}"' for word in _WORD_RE.findall(bare))
    return terms


def _text(args: Mapping[str, str], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _number(args: Mapping[str, str], name: str, notices: list[str]) -> int | None:
    raw = _text(args, name)
    if raw is None:
        return None
    if not _INT_RE.fullmatch(raw):
        notices.append(f"Ignored {name}={_shown(raw)}: not a whole number.")
        return None
    return int(raw)


def _label(args, name: str, prefix: str, labels: tuple[str, ...], what: str, notices: list[str]) -> str | None:
    raw = _text(args, name)
    if raw is None:
        return None
    value = raw.lower()
    if not value.startswith(prefix):
        value = prefix + value
    if value in labels:
        return value
    notices.append(f"Unknown {what} {_shown(raw)}: showing every {what}.")
    return None


def _shown(value: str) -> str:
    value = str(value)
    return repr(value if len(value) <= 40 else value[:40] + "…")


# ---------------------------------------------------------------------------
# Filters -> SQL
#
# Everything a filter, a count or the sort needs is one narrow row per listing in
# listing_facets, which storage keeps in step with every write (see db.py): the
# source, dates, group, effective location and focus, the group's verdict and the
# effective score. A request reads it through indexes instead of joining listings,
# groups, flags, overrides, verdicts and scores for every listing it considers.

# Indexes the facets are filled through (see db.FACETS_SCHEMA): the few small listing
# columns the fill reads (they sit after the long description in each row) and the
# flag label, so neither lookup visits a table row.
LISTINGS_INDEX = storage.LISTINGS_TRIAGE_INDEX
FLAGS_INDEX = storage.FLAGS_LABEL_INDEX
DASHBOARD_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS {LISTINGS_INDEX} ON listings(id, source, posted_at, first_seen, last_seen)",
    f"CREATE INDEX IF NOT EXISTS {FLAGS_INDEX} ON flags(listing_id, kind, label)",
)
# The per-listing snapshot the list reads: its table, how rows are filled from the
# tables they derive from ({source} names `listings l`, {where} picks listings), and
# the index-hinted listings a large fill reads.
_TRIAGE_TABLE = storage.FACETS_TABLE
_TRIAGE_FILL = storage.FACETS_FILL
_LISTINGS = storage.FACETS_LISTINGS

# Listings matching the keyword, with the facet columns the queries read, so the
# counts and the page scan those few rows instead of probing the keyword per row.
_MATCHES = (
    "CREATE TEMP TABLE keyword_matches AS SELECT f.listing_id, f.gid, f.copies, f.lead, f.source, f.posted,"
    " f.last_seen, f.loc, f.focus, f.status, f.score, f.unscored, f.priority FROM listing_facets f"
    " WHERE f.listing_id IN (SELECT rowid FROM listings_fts WHERE listings_fts MATCH ?) AND {where}"
)

_FACETS = ("source", "status", "loc", "focus")
_ORDER = {
    "score": "priority DESC, unscored, score DESC, posted DESC, listing_id DESC",
    "date": "priority DESC, posted DESC, listing_id DESC",
}


def ensure_indexes(db: storage.Database) -> None:
    """Create the dashboard's covering indexes when they are missing (idempotent)."""
    with storage.write(db):
        for statement in DASHBOARD_INDEXES:
            db.conn.execute(statement)


@dataclass(frozen=True)
class _Scope:
    """Where the listings the filters consider are read from: a table and row conditions on it."""

    table: str
    where: str
    params: tuple

    def sql(self, columns: str, conditions: str, tail: str = "") -> str:
        """A SELECT over this scope with extra conditions (placeholders: scope params first)."""
        return f"SELECT {columns} FROM {self.table} WHERE {self.where} AND {conditions} {tail}"


def _scope(conn, filters: Filters, now: datetime | None) -> _Scope:
    """The scope for these filters; a keyword fills temp.keyword_matches first."""
    where, params = ["1"], []
    if filters.days:
        since = (now or datetime.now(timezone.utc)) - timedelta(days=filters.days)
        where.append("posted >= ?")
        params.append(since.replace(microsecond=0).isoformat().replace("+00:00", ""))
    if filters.min_score is not None:
        # The effective score: the person's override when the job has one.
        where.append("score >= ?")
        params.append(filters.min_score)
    match = keyword_match(filters.q) if filters.q else None
    if match is None:
        return _Scope("listing_facets", " AND ".join(where), tuple(params))
    # A listing failing two facet conditions shows in no count and on no page.
    failures, failure_params = [], []
    for sql, args in _facet_conditions(filters).values():
        failures.append(f"(CASE WHEN {sql} THEN 0 ELSE 1 END)")
        failure_params.extend(args)
    if len(failures) > 1:
        where.append(f"{' + '.join(failures)} <= 1")
        params.extend(failure_params)
    conn.execute("DROP TABLE IF EXISTS temp.keyword_matches")
    conn.execute(_MATCHES.format(where=" AND ".join(where)), [match, *params])
    return _Scope("temp.keyword_matches", "1", ())


def _facet_conditions(filters: Filters) -> dict[str, tuple[str, list]]:
    """The conditions that have a facet (an option list with counts), as SQL on listing_facets."""
    conds: dict[str, tuple[str, list]] = {}
    if filters.source:
        conds["source"] = ("source = ?", [filters.source])
    if filters.status == "active":
        conds["status"] = ("status != 'hidden'", [])
    elif filters.status != "all":
        conds["status"] = ("status = ?", [filters.status])
    if filters.loc:
        # An explicit location wins over `eligible`: the person asked for exactly it.
        conds["loc"] = ("loc = ?", [filters.loc])
    elif filters.eligible:
        conds["loc"] = (f"loc NOT IN ({_marks(INELIGIBLE_LOCATIONS)})", list(INELIGIBLE_LOCATIONS))
    if filters.focus:
        conds["focus"] = ("focus = ?", [filters.focus])
    return conds


def _where(conds: dict[str, tuple[str, list]], skip: str | None = None) -> tuple[str, list]:
    parts, params = ["1"], []
    for name, (sql, args) in conds.items():
        if name != skip:
            parts.append(sql)
            params.extend(args)
    return " AND ".join(parts), params


def _marks(values) -> str:
    return ",".join("?" * len(values))


def search(db: storage.Database, filters: Filters, now: datetime | None = None) -> ResultPage:
    """Run the filters: one page of collapsed rows, the total, and every facet's counts."""
    conn = db.conn
    conn.execute("PRAGMA temp_store = MEMORY")
    # The counts and the page read one consistent state while a fetch commits.
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")
    try:
        scope = _scope(conn, filters, now)
        counts, total = _counts(conn, filters, scope)
        notices: list[str] = []
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if filters.page > pages:
            notices.append(f"There is no page {filters.page}; showing page {pages}, the last.")
            filters = replace(filters, page=pages)
        ids = _page_ids(conn, filters, scope)
        rows = load_rows(db, ids)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.keyword_matches")
        if own_transaction:
            conn.execute("COMMIT")
    return ResultPage(filters=filters, rows=rows, total=total, pages=pages, counts=counts, notices=notices)


def _facet_tests(filters: Filters) -> dict[str, Callable[[tuple], bool]]:
    """The rules of _facet_conditions as Python tests on (source, status, loc, focus) rows."""
    tests: dict[str, Callable[[tuple], bool]] = {}
    if filters.source:
        tests["source"] = lambda row: row[0] == filters.source
    if filters.status == "active":
        tests["status"] = lambda row: row[1] != "hidden"
    elif filters.status != "all":
        tests["status"] = lambda row: row[1] == filters.status
    if filters.loc:
        tests["loc"] = lambda row: row[2] == filters.loc
    elif filters.eligible:
        tests["loc"] = lambda row: row[2] not in INELIGIBLE_LOCATIONS
    if filters.focus:
        tests["focus"] = lambda row: row[3] == filters.focus
    return tests


def _counts(conn, filters: Filters, scope: _Scope) -> tuple[dict[str, dict[str, int]], int]:
    """Rows each facet option would show (the other facets applied), and the total.

    A job with copies is one row, so it counts once per option however many of its
    copies have that option. Listings without copies arrive as counted combinations
    of facet values, tested here; jobs with copies are counted in SQL, one grouped
    query per facet over (value, group) pairs, each read in index order.
    """
    counts: dict[str, dict[str, int]] = {"source": {}, "status": {}, "loc": {}, "focus": {}, "eligible": {}}

    def add(facet: str, value: str, n: int) -> None:
        counts[facet][value] = counts[facet].get(value, 0) + n

    total = 0
    tests = _facet_tests(filters)
    # Grouped by the bare columns, in the order of an index, so no sorting is needed.
    for source, status, loc, focus, n in conn.execute(
        scope.sql("source, status, loc, focus, count(*)", "copies = 0", "GROUP BY source, status, loc, focus"),
        scope.params,
    ):
        row = (source, status, loc, focus or "")
        failed = [name for name, test in tests.items() if not test(row)]
        if not failed:
            total += n
        if len(failed) > 1:
            continue  # no facet's options count it: for each, another facet rules it out
        # A facet's options count the rows every other facet lets through.
        counted = set(_FACETS) if not failed else set(failed)
        if "source" in counted:
            add("source", source, n)
        if "status" in counted:
            add("status", status, n)
            add("status", "all", n)
            if status != "hidden":
                add("status", "active", n)
        if "loc" in counted:
            add("loc", loc, n)
            if loc not in INELIGIBLE_LOCATIONS:
                add("eligible", "1", n)
        if "focus" in counted:
            add("focus", row[3], n)

    conds = _facet_conditions(filters)
    if _whole_jobs_only(scope, conds):
        total += _job_counts(conn, tests.get("status"), add)
        return _finish_counts(counts), total
    for facet, column in (("source", "source"), ("loc", "loc"), ("focus", "focus")):
        where, params = _where(conds, skip=facet)
        for value, n in conn.execute(
            f"SELECT value, count(*) FROM ({scope.sql(f'{column} AS value, gid', f'copies = 1 AND {where}')}"
            " GROUP BY 1, 2) GROUP BY value",
            [*scope.params, *params],
        ):
            add(facet, "" if value is None else value, n)
    where, params = _where(conds, skip="status")
    status_test = tests.get("status")
    for status, n in conn.execute(
        f"SELECT status, count(*) FROM ({scope.sql('status, gid', f'copies = 1 AND {where}')} GROUP BY gid)"
        " GROUP BY status",
        [*scope.params, *params],
    ):
        add("status", status, n)
        add("status", "all", n)
        if status != "hidden":
            add("status", "active", n)
        if status_test is None or status_test((None, status, None, None)):
            total += n
    where, params = _where(conds, skip="loc")
    eligible = f"copies = 1 AND {where} AND loc NOT IN ({_marks(INELIGIBLE_LOCATIONS)})"
    add("eligible", "1", conn.execute(
        f"SELECT count(*) FROM ({scope.sql('gid', eligible, 'GROUP BY gid')})",
        [*scope.params, *params, *INELIGIBLE_LOCATIONS],
    ).fetchone()[0])
    return _finish_counts(counts), total


def _finish_counts(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    counts["status"].setdefault("active", 0)
    counts["status"].setdefault("all", 0)
    counts["eligible"].setdefault("1", 0)
    for facet in ("source", "loc", "focus"):
        counts[facet] = {value: n for value, n in counts[facet].items() if n}
    return counts


def _whole_jobs_only(scope: _Scope, conds: dict) -> bool:
    """True when nothing but the job's status is filtered: every copy of a job passes or none does."""
    return scope.table == "listing_facets" and scope.where == "1" and set(conds) <= {"status"}


def _job_counts(conn, status_test: Callable[[tuple], bool] | None, add: Callable[[str, str, int], None]) -> int:
    """Counts of the jobs with copies from their group rows, when only their status is filtered; returns their total.

    Each group lists its members' distinct sources, locations and focuses, so a
    job counts once for each value any of its copies has.
    """
    total = 0
    for status, n in conn.execute("SELECT status, count(*) FROM job_groups WHERE members > 1 GROUP BY status"):
        add("status", status, n)
        add("status", "all", n)
        if status != "hidden":
            add("status", "active", n)
        if status_test is None or status_test((None, status, None, None)):
            total += n
    for facet, column in (("source", "sources"), ("loc", "locs"), ("focus", "focuses")):
        for status, values, n in conn.execute(
            f"SELECT status, {column}, count(*) FROM job_groups WHERE members > 1 GROUP BY status, {column}"
        ):
            if values is None or (status_test is not None and not status_test((None, status, None, None))):
                continue
            values = json.loads(values)
            for value in values:
                add(facet, value, n)
            if facet == "loc" and any(value not in INELIGIBLE_LOCATIONS for value in values):
                add("eligible", "1", n)
    return total


def _page_ids(conn, filters: Filters, scope: _Scope) -> list[int]:
    """Listing ids of the requested page: one per group, the most recently seen matching member."""
    conds = _facet_conditions(filters)
    where, params = _where(conds)
    order = _ORDER[filters.sort]
    offset = (filters.page - 1) * PAGE_SIZE
    if _whole_jobs_only(scope, conds):
        # Only the job's status filters (the same for every copy): each group shows
        # its most recently seen member, kept as `lead`, and an index holds the order.
        sql = f"SELECT listing_id FROM listing_facets WHERE lead = 1 AND {where} ORDER BY {order} LIMIT ? OFFSET ?"
        return [row[0] for row in conn.execute(sql, [*params, PAGE_SIZE, offset])]
    columns = "listing_id, priority, unscored, score, posted"
    # Every listing without copies leads its own group; saying so lets the order index serve.
    first = scope.sql(columns, f"copies = 0 AND lead = 1 AND {where}", f"ORDER BY {order} LIMIT ?")
    ranked = scope.sql(
        f"{columns}, row_number() OVER (PARTITION BY gid ORDER BY last_seen DESC, listing_id DESC) AS rank",
        f"copies = 1 AND {where}",
    )
    sql = (
        f"SELECT listing_id FROM (SELECT * FROM ({first}) UNION ALL SELECT * FROM ("
        f"SELECT {columns} FROM ({ranked}) WHERE rank = 1 ORDER BY {order} LIMIT ?))"
        f" ORDER BY {order} LIMIT ? OFFSET ?"
    )
    args = [*scope.params, *params, offset + PAGE_SIZE, *scope.params, *params, offset + PAGE_SIZE, PAGE_SIZE, offset]
    return [row[0] for row in conn.execute(sql, args)]


# ---------------------------------------------------------------------------
# Rows and details

_ROW_SQL = """
SELECT l.id, l.source, l.source_id, l.url, l.title, l.company, l.location, l.posted_at, l.salary, l.tags,
       l.stale, l.first_seen, l.last_seen,
       COALESCE(g.group_key, '#' || l.id) AS group_key,
       lf.label AS loc_computed, lf.evidence AS loc_evidence, lo.label AS loc_override, lo.reason AS loc_reason,
       ff.label AS focus_computed, ff.evidence AS focus_evidence, fo.label AS focus_override, fo.reason AS focus_reason,
       cs.score AS computed_score, cs.strategy AS score_strategy
FROM listings l
LEFT JOIN listing_groups g ON g.listing_id = l.id
LEFT JOIN flags lf ON lf.listing_id = l.id AND lf.kind = 'location'
LEFT JOIN flag_overrides lo ON lo.listing_id = l.id AND lo.kind = 'location'
LEFT JOIN flags ff ON ff.listing_id = l.id AND ff.kind = 'focus'
LEFT JOIN flag_overrides fo ON fo.listing_id = l.id AND fo.kind = 'focus'
LEFT JOIN current_scores cs ON cs.listing_id = l.id
WHERE l.id IN ({marks})
"""


_NO_VERDICT = {"status": "new", "override_score": None, "override_reason": None, "note": None}


def load_rows(db: storage.Database, ids: list[int]) -> list[dict]:
    """Display rows for these listing ids, in the given order, with group verdict and 'also on'."""
    if not ids:
        return []
    cur = db.conn.execute(_ROW_SQL.format(marks=_marks(ids)), ids)
    names = [d[0] for d in cur.description]
    by_id = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    keys = sorted({row["group_key"] for row in by_id.values()})
    verdicts = _group_verdicts(db, keys)
    members = _group_members(db, keys)
    rows = []
    for lid in ids:
        row = by_id.get(lid)
        if row is None:
            continue
        verdict = verdicts.get(row["group_key"]) or _NO_VERDICT
        others = [m for m in members.get(row["group_key"], []) if m["id"] != lid]
        row.update(
            tags=_json_list(row["tags"]),
            stale=bool(row["stale"]),
            loc=row["loc_override"] or row["loc_computed"] or "loc:unknown",
            loc_overridden=row["loc_override"] is not None,
            focus=row["focus_override"] or row["focus_computed"],
            focus_overridden=row["focus_override"] is not None,
            status=verdict.get("status") or "new",
            note=verdict.get("note"),
            override_score=verdict.get("override_score"),
            override_reason=verdict.get("override_reason"),
            score=verdict.get("override_score") if verdict.get("override_score") is not None else row["computed_score"],
            also_on=sorted({m["source"] for m in others if m["source"] != row["source"]}),
            more_here=sum(1 for m in others if m["source"] == row["source"]),
            members=others,
        )
        rows.append(row)
    return rows


def load_row(db: storage.Database, listing_id: int) -> dict | None:
    """One display row, or None when the listing does not exist."""
    rows = load_rows(db, [listing_id])
    return rows[0] if rows else None


def listing_detail(db: storage.Database, listing_id: int) -> dict | None:
    """Everything the detail panel shows: the row, description, flags with evidence, scores, verdict."""
    row = load_row(db, listing_id)
    if row is None:
        return None
    detail = dict(row)
    detail["description_html"] = db.conn.execute(
        "SELECT description_html FROM listings WHERE id = ?", [listing_id]
    ).fetchone()[0]
    flags = {}
    for kind in ("location", "focus"):
        computed = _one(db, "SELECT label, evidence, version, computed_at FROM flags WHERE listing_id = ? AND kind = ?",
                        [listing_id, kind])
        override = _one(db, "SELECT label, reason, created_at FROM flag_overrides WHERE listing_id = ? AND kind = ?",
                        [listing_id, kind])
        flags[kind] = {"computed": computed, "override": override, "labels": FLAG_LABELS[kind]}
    detail["flags"] = flags
    cur = db.conn.execute(
        "SELECT id, strategy, provider, model, score, reasoning, evidence, grounded, created_at"
        " FROM scores WHERE listing_id = ? ORDER BY id DESC",
        [listing_id],
    )
    names = [d[0] for d in cur.description]
    scores = []
    for values in cur.fetchall():
        score = dict(zip(names, values))
        score["evidence"] = _json_list(score["evidence"])
        scores.append(score)
    detail["scores"] = scores
    detail["verdict"] = group_verdict(db, listing_id)
    return detail


def _one(db: storage.Database, sql: str, params: list) -> dict | None:
    cur = db.conn.execute(sql, params)
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row)) if row else None


def _json_list(value) -> list:
    """A stored JSON list; anything else (bad JSON, a bare string) becomes a list of strings."""
    if value in (None, ""):
        return []
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    if isinstance(parsed, list):
        return [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in parsed]
    return [str(parsed)]


def _group_verdicts(db: storage.Database, keys: list[str]) -> dict[str, dict]:
    if not keys:
        return {}
    cur = db.conn.execute(
        "SELECT g.group_key, v.* FROM verdicts v JOIN listing_groups g ON g.listing_id = v.listing_id"
        f" WHERE g.group_key IN ({_marks(keys)}) ORDER BY v.updated_at DESC, v.listing_id DESC",
        keys,
    )
    names = [d[0] for d in cur.description]
    out: dict[str, dict] = {}
    for values in cur.fetchall():
        row = dict(zip(names, values))
        out.setdefault(row.pop("group_key"), row)
    return out


def _group_members(db: storage.Database, keys: list[str]) -> dict[str, list[dict]]:
    if not keys:
        return {}
    out: dict[str, list[dict]] = {}
    for key, lid, source, url, location in db.conn.execute(
        "SELECT g.group_key, l.id, l.source, l.url, l.location FROM listing_groups g"
        f" JOIN listings l ON l.id = g.listing_id WHERE g.group_key IN ({_marks(keys)})"
        " ORDER BY l.last_seen DESC, l.id DESC",
        keys,
    ):
        out.setdefault(key, []).append({"id": lid, "source": source, "url": url, "location": location})
    return out


# ---------------------------------------------------------------------------
# The person's writes


def listing_exists(db: storage.Database, listing_id: int) -> bool:
    """True when a listing with this id is stored."""
    return db.conn.execute("SELECT 1 FROM listings WHERE id = ?", [listing_id]).fetchone() is not None


def source_exists(db: storage.Database, source: str) -> bool:
    """True when at least one stored listing came from this source."""
    return db.conn.execute("SELECT 1 FROM listings WHERE source = ? LIMIT 1", [source]).fetchone() is not None


def verdict_holder(db: storage.Database, listing_id: int) -> int:
    """The listing whose verdict row speaks for its whole group (itself when the group has none)."""
    row = db.conn.execute(
        "SELECT v.listing_id FROM verdicts v JOIN listing_groups g ON g.listing_id = v.listing_id"
        " WHERE g.group_key = (SELECT group_key FROM listing_groups WHERE listing_id = ?)"
        " ORDER BY v.updated_at DESC, v.listing_id DESC LIMIT 1",
        [listing_id],
    ).fetchone()
    return row[0] if row else listing_id


def group_verdict(db: storage.Database, listing_id: int) -> dict:
    """The verdict that applies to this listing: its group's most recent one."""
    return storage.get_verdict(db, verdict_holder(db, listing_id))


def set_group_verdict(db: storage.Database, listing_id: int, **changes) -> dict:
    """Change the verdict of the listing's job, written to the one row that speaks for its group."""
    with storage.write(db):
        return storage.set_verdict(db, verdict_holder(db, listing_id), **changes)


def set_flag_override(db: storage.Database, listing_id: int, kind: str, label: str, reason: str = "") -> None:
    """Record the person's own flag for one listing; it wins over the computed flag from now on."""
    if label not in FLAG_LABELS.get(kind, ()):
        raise ValueError(f"{label!r} is not a {kind} label")
    with storage.write(db):
        db.conn.execute(
            "INSERT INTO flag_overrides (listing_id, kind, label, reason, created_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT(listing_id, kind) DO UPDATE SET label = excluded.label, reason = excluded.reason,"
            " created_at = excluded.created_at",
            [listing_id, kind, label, reason, storage.now_iso()],
        )


def clear_flag_override(db: storage.Database, listing_id: int, kind: str) -> None:
    """Drop the person's flag override so the computed flag shows again."""
    with storage.write(db):
        db.conn.execute("DELETE FROM flag_overrides WHERE listing_id = ? AND kind = ?", [listing_id, kind])


def one_line(text: str | None) -> str:
    """Whitespace (newlines included) collapsed to single spaces, for one-line reasons."""
    return " ".join((text or "").split())


def source_options(counts: Mapping[str, int], registered: Iterable[str], selected: str | None) -> list[str]:
    """Source options for the filter panel: those with listings, registered ones, and the selection."""
    names = set(counts) | set(registered)
    if selected:
        names.add(selected)
    return sorted(names)
