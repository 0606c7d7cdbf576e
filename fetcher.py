"""Fetch runs: every configured source in turn, each batch committed with its record.

A source is downloaded with no write transaction open; its listings, its finished
fetch_runs row and its source_state (validators, last success) are then stored in
one transaction, so a batch and its record commit together or not at all. A source
that fails is recorded as an error and the others still run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

import db as storage
import ingest as ingest_mod
from scraper.base import Source

log = logging.getLogger(__name__)

# Called once after a run as hook(db, new_and_updated_ids) when anything changed,
# so scoring can queue the listings. A failing hook is logged, never fatal.
AFTER_FETCH_HOOKS: list[Callable[[storage.Database, list[int]], None]] = []

# Company boards: scraper source name -> the config field listing the boards.
BOARD_KINDS = {
    "greenhouse": "greenhouse_boards",
    "lever": "lever_sites",
    "ashby": "ashby_orgs",
}

MESSAGE_MAX_CHARS = 500
# How many parse-skip reasons to write to the log per source; the count is always kept.
SKIPPED_LOG_LIMIT = 20

Progress = Callable[[str, int, int, str], None]


@dataclass
class SourceOutcome:
    """How one source's part of a fetch run ended."""

    name: str
    status: str  # ok | not-modified | skipped | error
    message: str = ""  # why it was skipped or what went wrong
    n_fetched: int = 0
    n_new: int = 0
    n_updated: int = 0
    n_unchanged: int = 0
    n_skipped: int = 0
    n_stale: int = 0
    run_id: int | None = None
    new_ids: list[int] = field(default_factory=list, repr=False)
    updated_ids: list[int] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """One line for a terminal: status, counts and the message when there is one."""
        if self.status == "ok":
            text = (
                f"{self.n_fetched} fetched, {self.n_new} new, {self.n_updated} updated, "
                f"{self.n_unchanged} unchanged, {self.n_skipped} skipped"
            )
            if self.n_stale:
                text += f", {self.n_stale} marked stale"
            return f"{self.name}: ok ({text})"
        if self.message:
            return f"{self.name}: {self.status}: {self.message}"
        return f"{self.name}: {self.status}"


@dataclass
class PlannedSource:
    """A source a run will visit, or why it cannot be set up."""

    name: str  # run name, e.g. "remoteok" or "greenhouse:gitlab"
    source: Source | None
    problem: str = ""  # why the source could not be built


def run_fetch(
    db: storage.Database,
    config,
    client,
    *,
    sources: Iterable[str | Source] | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> list[SourceOutcome]:
    """Fetch the configured sources (or only `sources`: names or Source objects) and store what they publish."""
    planned = plan_sources(config, sources)
    outcomes: list[SourceOutcome] = []
    n = len(planned)
    for i, item in enumerate(planned, 1):
        _report(progress, item.name, i, n, "running")
        outcome = _run_one(db, config, client, item, now=now, force=force)
        outcomes.append(outcome)
        _report(progress, item.name, i, n, outcome.status)
    changed = [lid for o in outcomes for lid in o.new_ids + o.updated_ids]
    if changed:
        _call_hooks(db, changed)
    return outcomes


def plan_sources(config, sources: Iterable[str | Source] | None = None) -> list[PlannedSource]:
    """The sources a run will visit, in order: config.sources, then one per company board."""
    configured = [_build(name) for name in config.sources]
    for kind, attr in BOARD_KINDS.items():
        configured += [_build(f"{kind}:{board}") for board in getattr(config, attr, ()) or ()]
    if sources is None:
        chosen = configured
    else:
        chosen = []
        for wanted in sources:
            if isinstance(wanted, Source):
                chosen.append(PlannedSource(run_name(wanted), wanted))
                continue
            wanted = str(wanted).strip()
            # A bare kind ("greenhouse") selects every configured board of that kind.
            matches = [p for p in configured if p.name == wanted or p.name.split(":", 1)[0] == wanted]
            chosen += matches or [_build(wanted)]
    seen: set[str] = set()
    unique = []
    for item in chosen:
        if item.name not in seen:
            seen.add(item.name)
            unique.append(item)
    return unique


def run_name(source: Source) -> str:
    """The name a source's runs are recorded under: its name, plus the board for company boards."""
    board = source.options.get("board") if source.name in BOARD_KINDS else None
    return f"{source.name}:{board}" if board else source.name


def _build(name: str) -> PlannedSource:
    import scraper

    kind, _, board = name.partition(":")
    if kind not in scraper.SOURCES:
        known = ", ".join(sorted(scraper.SOURCES)) or "none"
        return PlannedSource(name, None, f"unknown source {kind!r} (known: {known})")
    if board and kind not in BOARD_KINDS:
        return PlannedSource(name, None, f"{kind!r} has no boards; use the name {kind!r} alone")
    if kind in BOARD_KINDS and not board:
        return PlannedSource(name, None, f"{kind!r} needs a board: list it in [fetch] {BOARD_KINDS[kind]}")
    try:
        source = scraper.get_source(kind, board=board) if board else scraper.get_source(kind)
    except Exception as exc:  # a bad board token must not stop the other sources
        return PlannedSource(name, None, f"cannot set up {name}: {_describe(exc)}")
    return PlannedSource(name, source)


def _run_one(db, config, client, item: PlannedSource, *, now: datetime | None, force: bool) -> SourceOutcome:
    started = _utc(now)
    at = _iso(started)
    if item.source is None:
        run_id = _record_finished(db, item.name, at, "error", item.problem)
        log.warning("fetch %s: %s", item.name, item.problem)
        return SourceOutcome(item.name, "error", item.problem, run_id=run_id)

    source = item.source
    state = _source_state(db, item.name)
    wait = _wait_left(state.get("last_attempt_at"), source.min_interval_s, started)
    if wait and not force:
        reason = (
            f"last tried {human_span(source.min_interval_s - wait)} ago; this source allows one fetch every "
            f"{human_span(source.min_interval_s)} (next in {human_span(wait)})"
        )
        run_id = _record_finished(db, item.name, at, "skipped", reason)
        return SourceOutcome(item.name, "skipped", reason, run_id=run_id)

    run_id = _record_start(db, item.name, at)
    try:
        # Network I/O with no transaction open: the web app and the scheduler keep writing.
        fetched = source.fetch(client, _decode_validators(state))
        if fetched.not_modified:
            # A 304 need not repeat the validators: keep the stored ones it did not replace.
            validators = {**_decode_validators(state), **(fetched.validators or {})}
            with storage.write(db):
                _finish(db, run_id, "not-modified")
                _save_state(db, item.name, validators, success_at=at)
            return SourceOutcome(item.name, "not-modified", run_id=run_id)

        parsed = fetched.result
        _log_skipped(item.name, parsed.skipped)
        with storage.write(db):
            result = ingest_mod.ingest(db, parsed.listings, config, seen_at=at)
            counts = {
                "n_fetched": len(parsed.listings),
                "n_new": len(result["new"]),
                "n_updated": len(result["updated"]),
                "n_skipped": len(parsed.skipped),
            }
            _finish(db, run_id, "ok", **counts)
            _save_state(db, item.name, fetched.validators, success_at=at)
            n_stale = _mark_stale(db, config, source, parsed.listings, started)
    except Exception as exc:  # one source's failure (network, payload, bug) must not stop the others
        message = _describe(exc)
        if _expected(exc):
            log.warning("fetch %s failed: %s", item.name, message)
        else:
            log.exception("fetch %s failed", item.name)
        try:
            with storage.write(db):
                _finish(db, run_id, "error", error=message)
        except Exception:
            log.exception("fetch %s: could not record the error", item.name)
        return SourceOutcome(item.name, "error", message, run_id=run_id)

    return SourceOutcome(
        item.name,
        "ok",
        run_id=run_id,
        n_unchanged=result["unchanged"],
        n_stale=n_stale,
        new_ids=list(result["new"]),
        updated_ids=list(result["updated"]),
        **counts,
    )


def _mark_stale(db, config, source: Source, listings, now: datetime) -> int:
    # Only after a complete read of the board: a failed fetch says nothing about
    # what was withdrawn, and a 304 leaves last_seen as it was at the last full read.
    before = _iso(now - timedelta(days=config.stale_after_days))
    names = {source.name} | {item.source for item in listings}
    return sum(storage.mark_stale(db, before, source=name) for name in sorted(names))


def _record_start(db, name: str, at: str) -> int:
    with storage.write(db):
        # A 'running' row left behind by a process that died mid-fetch.
        db.conn.execute(
            "UPDATE fetch_runs SET status = 'error', finished_at = ?,"
            " error = 'interrupted: the app stopped before this fetch finished'"
            " WHERE source = ? AND status = 'running'",
            (at, name),
        )
        cur = db.conn.execute(
            "INSERT INTO fetch_runs (source, started_at, status, n_fetched, n_new, n_updated, n_skipped)"
            " VALUES (?, ?, 'running', 0, 0, 0, 0)",
            (name, at),
        )
        db.conn.execute(
            "INSERT INTO source_state (source, last_attempt_at) VALUES (?, ?)"
            " ON CONFLICT(source) DO UPDATE SET last_attempt_at = excluded.last_attempt_at",
            (name, at),
        )
        return cur.lastrowid


def _record_finished(db, name: str, at: str, status: str, message: str) -> int:
    with storage.write(db):
        cur = db.conn.execute(
            "INSERT INTO fetch_runs (source, started_at, finished_at, status, error,"
            " n_fetched, n_new, n_updated, n_skipped) VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0)",
            (name, at, storage.now_iso(), status, message),
        )
        return cur.lastrowid


def _finish(db, run_id: int, status: str, error: str | None = None, **counts) -> None:
    cols = {"status": status, "finished_at": storage.now_iso(), "error": error, **counts}
    assignments = ", ".join(f"{col} = ?" for col in cols)
    db.conn.execute(f"UPDATE fetch_runs SET {assignments} WHERE id = ?", [*cols.values(), run_id])


def _source_state(db, name: str) -> dict:
    row = db.conn.execute(
        "SELECT etag, last_modified, last_attempt_at, last_success_at FROM source_state WHERE source = ?",
        (name,),
    ).fetchone()
    if row is None:
        return {}
    return dict(zip(("etag", "last_modified", "last_attempt_at", "last_success_at"), row))


def _save_state(db, name: str, validators: dict | None, *, success_at: str) -> None:
    # Sources may request several URLs (pages, feeds), so each column holds
    # a JSON object keyed by URL: {"url": "<etag>"} and {"url": "<last-modified>"}.
    etags, modified = {}, {}
    for url, values in (validators or {}).items():
        if not isinstance(values, dict):
            continue
        if values.get("etag"):
            etags[url] = values["etag"]
        if values.get("last_modified"):
            modified[url] = values["last_modified"]
    db.conn.execute(
        "INSERT INTO source_state (source, etag, last_modified, last_success_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(source) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,"
        " last_success_at = excluded.last_success_at",
        (name, json.dumps(etags, sort_keys=True), json.dumps(modified, sort_keys=True), success_at),
    )


def _decode_validators(state: dict) -> dict:
    validators: dict[str, dict] = {}
    for column, key in (("etag", "etag"), ("last_modified", "last_modified")):
        try:
            values = json.loads(state.get(column) or "{}")
        except ValueError:
            values = {}  # not written by this module: fetch unconditionally
        if not isinstance(values, dict):
            continue
        for url, value in values.items():
            if isinstance(value, str) and value:
                validators.setdefault(url, {})[key] = value
    return validators


def _wait_left(last_attempt: str | None, min_interval_s: int, now: datetime) -> int:
    """Seconds until the source may be fetched again (0 when it may be fetched now)."""
    if not last_attempt:
        return 0
    try:
        last = _utc(datetime.fromisoformat(last_attempt))
    except ValueError:
        return 0
    left = min_interval_s - (now - last).total_seconds()
    # A last attempt in the future (clock moved back) must not block fetching forever.
    if left <= 0 or left > min_interval_s:
        return 0
    return int(left + 0.999)


def _log_skipped(name: str, skipped: list[str]) -> None:
    for reason in skipped[:SKIPPED_LOG_LIMIT]:
        log.info("fetch %s: skipped an item: %s", name, reason)
    if len(skipped) > SKIPPED_LOG_LIMIT:
        log.info("fetch %s: %d more items skipped", name, len(skipped) - SKIPPED_LOG_LIMIT)


def _call_hooks(db, listing_ids: list[int]) -> None:
    for hook in list(AFTER_FETCH_HOOKS):
        try:
            hook(db, listing_ids)
        except Exception:
            log.exception("after-fetch hook %r failed", hook)


def _report(progress: Progress | None, name: str, i: int, n: int, status: str) -> None:
    if progress is None:
        return
    try:
        progress(name, i, n, status)
    except Exception:  # a broken progress display must not stop the fetch
        log.exception("fetch progress callback failed")


def _source_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message already names the source, the URL and what went wrong."""
    from scraper.base import PayloadError

    try:
        from scraper.http import FetchError
    except ImportError:
        return (PayloadError,)
    return (PayloadError, FetchError)


def _expected(exc: Exception) -> bool:
    """Failures the outside world causes (network, HTTP status, bad payload): no traceback needed."""
    import httpx

    return isinstance(exc, (httpx.HTTPError, TimeoutError, ConnectionError) + _source_errors())


def _describe(exc: BaseException) -> str:
    import httpx

    detail = str(exc).strip()
    if isinstance(exc, httpx.HTTPStatusError):
        text = f"HTTP {exc.response.status_code} from {exc.request.url}"
    elif detail and isinstance(exc, _source_errors()):
        text = detail
    else:
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1] + "…"
    return text


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def human_span(seconds: float) -> str:
    """A duration for people: "45 s", "20 min", "6 h", "1.5 h"."""
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    hours = seconds / 3600
    return f"{hours:.1f} h".replace(".0 h", " h")
