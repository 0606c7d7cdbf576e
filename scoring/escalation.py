"""Hybrid mode: listings the local scorer is unsure about go to Claude, a few at a time, within the budget.

A local score escalates when it sits in the uncertainty band, its evidence is not
in the listing, two local strategies disagree, or the model's digit distribution is
spread out. Escalations wait in the `escalations` table; `run_escalations` sends
them to Claude with bounded concurrency. Claude's score becomes the listing's
current score and the local one stays in `scores` with its provenance. A rate
limit, server error or timeout that outlasts the SDK's retries leaves the row
queued for a later run; reaching the monthly budget pauses the queue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import combinations
from pathlib import Path

import db as storage
from scoring import ledger, metrics
from scoring.claude import ClaudeError, ClaudeSettings, InvalidOutput, Rejected, Transient
from scoring.profile import Profile
from scoring.strategies import ScoreResult

log = logging.getLogger(__name__)

REASONS = ("band", "ungrounded", "disagreement", "spread")
# A 'running' row older than this belongs to a run that died (calls time out long before).
STALE_RUNNING_S = 15 * 60
BUDGET_MESSAGE = "Monthly Claude budget reached: escalations are paused until next month or a higher budget."


def triggers(local: ScoreResult, others: list[ScoreResult], settings: ClaudeSettings) -> list[str]:
    """Why a local score should go to Claude (empty when it should not), in REASONS order."""
    reasons = []
    lo, hi = settings.uncertainty_band
    if lo <= local.score <= hi:
        reasons.append("band")
    if not local.grounded:
        reasons.append("ungrounded")
    scores = [local.score] + [o.score for o in others if o is not None]
    if any(abs(a - b) > settings.disagreement_margin for a, b in combinations(scores, 2)):
        reasons.append("disagreement")
    spreads = [r.detail.get("spread") for r in [local, *others] if r is not None and r.detail]
    if any(s is not None and s > settings.spread_threshold for s in spreads):
        reasons.append("spread")
    return reasons


def enqueue(db: storage.Database, listing_id: int, reasons: list[str], local_score_id: int | None) -> int:
    """Queue a listing for Claude; an open escalation of the same listing is updated instead of duplicated."""
    at = storage.now_iso()
    with storage.write(db):
        row = db.conn.execute(
            "SELECT id FROM escalations WHERE listing_id = ? AND status IN ('queued', 'running') ORDER BY id LIMIT 1",
            [listing_id],
        ).fetchone()
        if row:
            db.conn.execute(
                "UPDATE escalations SET reasons = ?, local_score_id = ?, updated_at = ? WHERE id = ?",
                [json.dumps(reasons), local_score_id, at, row[0]],
            )
            return row[0]
        cur = db.conn.execute(
            "INSERT INTO escalations (listing_id, reasons, local_score_id, status, attempts, created_at, updated_at)"
            " VALUES (?, ?, ?, 'queued', 0, ?, ?)",
            [listing_id, json.dumps(reasons), local_score_id, at, at],
        )
        return cur.lastrowid


def after_local_score(db: storage.Database, listing_id: int, result: ScoreResult, others: list[ScoreResult],
                      settings: ClaudeSettings) -> list[str]:
    """Called by the scoring queue after it saved a local score: queue the listing when hybrid mode is unsure."""
    if settings.mode != "hybrid" or result.strategy in ("claude", "human"):
        return []
    reasons = triggers(result, others, settings)
    if not reasons:
        return []
    current = db.conn.execute(
        "SELECT score_id, strategy FROM current_scores WHERE listing_id = ?", [listing_id]
    ).fetchone()
    if current and current[1] in ("claude", "human"):
        return []  # Claude or the person already decided this listing
    enqueue(db, listing_id, reasons, current[0] if current else None)
    return reasons


def counts(db: storage.Database) -> dict[str, int]:
    """Escalations per status."""
    out = {s: 0 for s in ("queued", "running", "done", "failed")}
    for status, n in db.conn.execute("SELECT status, count(*) FROM escalations GROUP BY status"):
        out[status] = n
    return out


@dataclass
class EscalationState:
    """Progress of the escalation worker, read by the UI and the CLI."""

    running: bool = False
    done: int = 0
    total: int = 0
    failed: int = 0
    requeued: int = 0
    paused: str = ""  # why the last run stopped early (budget, rate limit, key), shown as a status
    last_error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict:
        """A copy safe to render while the worker runs."""
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k != "lock"}


STATE = EscalationState()
_RUN_LOCK = threading.Lock()


def _set_row(db: storage.Database, esc_id: int, **cols) -> None:
    cols["updated_at"] = storage.now_iso()
    with storage.write(db):
        db.conn.execute(
            f"UPDATE escalations SET {', '.join(f'{k} = ?' for k in cols)} WHERE id = ?", [*cols.values(), esc_id]
        )


def _claim(db: storage.Database, esc_id: int) -> bool:
    with storage.write(db):
        return db.conn.execute(
            "UPDATE escalations SET status = 'running', updated_at = ? WHERE id = ? AND status = 'queued'",
            [storage.now_iso(), esc_id],
        ).rowcount == 1


def _save_claude(db: storage.Database, lid: int, r: ScoreResult, profile: Profile, row: dict) -> int:
    detail = dict(r.detail, escalation=row["reasons"], local_score_id=row["local_score_id"])
    return storage.save_score(
        db, lid, strategy="claude", provider="anthropic", model=r.model, profile_version=profile.version,
        score=r.score, reasoning=r.reasoning, evidence=r.evidence, grounded=int(r.grounded),
        latency_ms=r.latency_ms, prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, detail=detail,
    )


def run_escalations(db: storage.Database, client, settings: ClaudeSettings, max_workers: int = 2, *,
                    profile: Profile, limit: int | None = None, state: EscalationState | None = None) -> dict:
    """Send queued escalations to Claude, `max_workers` at a time, until the queue, the budget or the API runs out."""
    from scoring.queue import listing_views  # the queue imports this module for its hook

    state = state if state is not None else STATE

    if not _RUN_LOCK.acquire(blocking=False):
        return {"started": False, "reason": "escalations are already running"}
    try:
        stale = (datetime.now(timezone.utc) - timedelta(seconds=STALE_RUNNING_S)).replace(microsecond=0).isoformat()
        with storage.write(db):
            # Rows a killed run left 'running' were never answered: queue them again
            # (only old ones, so a run in another process keeps its own).
            db.conn.execute("UPDATE escalations SET status = 'queued' WHERE status = 'running' AND updated_at < ?",
                            [stale])
        sql = ("SELECT id, listing_id, reasons, local_score_id, attempts FROM escalations"
               " WHERE status = 'queued' ORDER BY id")
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = [
            {"id": r[0], "listing_id": r[1], "reasons": json.loads(r[2] or "[]"), "local_score_id": r[3],
             "attempts": r[4] or 0}
            for r in db.conn.execute(sql).fetchall()
        ]
        with state.lock:
            state.running, state.done, state.total, state.failed, state.requeued = True, 0, len(rows), 0, 0
            state.paused, state.last_error = "", ""
            state.started_at, state.finished_at = time.time(), 0.0
        queue = iter(rows)
        stop = ""

        def next_job(pool, in_flight) -> bool:
            nonlocal stop
            while not stop:
                # Checked before each call: calls already in flight may pass the cap by their own cost.
                if ledger.over_budget(db, settings.monthly_budget_usd):
                    stop = BUDGET_MESSAGE
                    return False
                row = next(queue, None)
                if row is None:
                    return False
                lid = row["listing_id"]
                current = db.conn.execute(
                    "SELECT score_id, strategy FROM current_scores WHERE listing_id = ?", [lid]
                ).fetchone()
                if current and current[1] in ("claude", "human"):
                    # A re-score or the person got there first: nothing to pay for.
                    _set_row(db, row["id"], status="done", claude_score_id=current[0], error=None)
                    with state.lock:
                        state.done += 1
                    continue
                v = listing_views(db, [lid]).get(lid)
                if v is None:
                    _set_row(db, row["id"], status="failed", error="listing no longer exists")
                    with state.lock:
                        state.failed += 1
                    continue
                if not _claim(db, row["id"]):
                    continue  # another run (say, the CLI) took it meanwhile
                in_flight[pool.submit(client.score, v, profile, "escalate", lid)] = row
                return True
            return False

        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="escalate") as pool:
            in_flight: dict = {}
            while len(in_flight) < max_workers and next_job(pool, in_flight):
                pass
            while in_flight:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    row = in_flight.pop(fut)
                    stop = _settle(db, fut, row, profile, settings, state) or stop
                while len(in_flight) < max_workers and next_job(pool, in_flight):
                    pass
        with state.lock:
            state.running = False
            state.paused = stop
            state.finished_at = time.time()
            result = {"started": True, "done": state.done, "failed": state.failed, "requeued": state.requeued,
                      "paused": stop, "total": state.total}
        if stop:
            log.info("escalations paused: %s", stop)
        return result
    finally:
        with state.lock:
            state.running = False
        _RUN_LOCK.release()


def _settle(db: storage.Database, fut, row: dict, profile: Profile, settings: ClaudeSettings,
            state: EscalationState) -> str:
    """Store one finished escalation; returns a reason to stop the run, or ''."""
    attempts = row["attempts"] + 1
    try:
        result = fut.result()
    except (Transient, Rejected) as exc:
        _set_row(db, row["id"], status="queued", attempts=attempts, error=str(exc))
        with state.lock:
            state.requeued += 1
            state.last_error = str(exc)
        # The API is down, limiting us or refusing the key: the next listing would fare no better.
        return str(exc)
    except ClaudeError as exc:
        final = attempts >= settings.max_attempts or not isinstance(exc, InvalidOutput)
        _set_row(db, row["id"], status="failed" if final else "queued", attempts=attempts, error=str(exc))
        with state.lock:
            state.failed += final
            state.requeued += not final
            state.last_error = str(exc)
        return ""
    sid = _save_claude(db, row["listing_id"], result, profile, row)
    _set_row(db, row["id"], status="done", attempts=attempts, claude_score_id=sid, error=None)
    with state.lock:
        state.done += 1
    return ""


def run_pending(db_path: str | Path, scoring: dict | None, instance_path: str | Path,
                env_file: str | Path | None = None, require_hybrid: bool = True,
                state: EscalationState | None = None) -> dict:
    """Run the queued escalations with the configured key, settings and active profile (for the scheduler and UI)."""
    from scoring import profile as profile_mod
    from scoring.claude import NoKey, client_for, settings_from

    settings = settings_from(scoring)
    if require_hybrid and settings.mode != "hybrid":
        return {"started": False, "reason": "hybrid mode is off"}
    try:
        client = client_for(settings, db_path, env_file)
    except NoKey as exc:
        return {"started": False, "reason": str(exc)}
    db = storage.connect(db_path, migrate_now=False)
    try:
        prof = profile_mod.active(Path(instance_path) / "scoring_profiles", (scoring or {}).get("profile") or None)
        return run_escalations(db, client, settings, settings.escalation_workers, profile=prof, state=state)
    finally:
        client.close()
        db.conn.close()


# ---------------------------------------------------------------- what escalation buys, measured on labels


def report(local: list[ScoreResult | None], labels: list[int], settings: ClaudeSettings,
           others: list[list[ScoreResult | None]] = ()) -> list[dict]:
    """Per trigger alone and for their union: how many listings escalate, and agreement when each takes its label.

    An escalated listing takes its label's value (the best a teacher could do); the
    'none' row is the local scores alone. Listings the local strategy failed on are left out.
    """
    items = []
    for i, r in enumerate(local):
        if r is None:
            continue
        rest = [o[i] for o in others if i < len(o) and o[i] is not None]
        items.append((r, labels[i], set(triggers(r, rest, settings))))
    truth = [lab for _, lab, _ in items]
    rows = []
    for name in ("none", *REASONS, "any"):
        if name == "none":
            chosen = [False] * len(items)
        elif name == "any":
            chosen = [bool(reasons) for _, _, reasons in items]
        else:
            chosen = [name in reasons for _, _, reasons in items]
        preds = [lab if c else r.score for (r, lab, _), c in zip(items, chosen)]
        rows.append({
            "trigger": name,
            "escalated": sum(chosen),
            "share": round(sum(chosen) / len(items), 3) if items else 0.0,
            "spearman": round(metrics.spearman(preds, truth), 3) if items else 0.0,
            "mae": round(metrics.mae(preds, truth), 1) if items else 0.0,
        })
    return rows


def dev_report(settings: ClaudeSettings, profile: Profile | None = None,
               extra: dict[str, list[ScoreResult | None]] | None = None, local_name: str = "rules") -> dict:
    """The trigger report on the shipped development set, the rules strategy plus any other results given."""
    from scoring import evaluate, profile as profile_mod
    from scoring.strategies import RulesStrategy

    profile = profile or profile_mod.load(profile_mod.BUNDLED / "example.json")
    labeled = evaluate.dev_set()
    ev = evaluate.evaluate(RulesStrategy(profile), labeled)
    by_name = {"rules": [r for _, r, _ in ev.results], **(extra or {})}
    if local_name not in by_name:
        raise ValueError(f"no results named {local_name!r}; have {', '.join(sorted(by_name))}")
    others = [res for name, res in by_name.items() if name != local_name]
    rows = report(by_name[local_name], [item.label for item in labeled], settings, others)
    return {"n": len(labeled), "local": local_name, "others": [n for n in by_name if n != local_name], "rows": rows}


def format_report(rep: dict, settings: ClaudeSettings) -> str:
    """The trigger report as a text table."""
    lo, hi = settings.uncertainty_band
    lines = [
        f"Escalation triggers on {rep['n']} labeled listings (local: {rep['local']}"
        + (f"; compared with {', '.join(rep['others'])}" if rep["others"] else "") + ")",
        f"band [{lo}, {hi}], disagreement > {settings.disagreement_margin:g}, spread > {settings.spread_threshold:g};"
        " escalated listings take their label (the best a teacher could do)",
        f"{'trigger':<13}{'escalated':>10}{'share':>8}{'spearman':>10}{'MAE':>7}",
    ]
    for r in rep["rows"]:
        lines.append(f"{r['trigger']:<13}{r['escalated']:>10}{r['share']:>8.1%}{r['spearman']:>10.3f}{r['mae']:>7.1f}")
    return "\n".join(lines)
