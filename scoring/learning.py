"""The person's overrides teach the scorer: examples in the profile, refitted weights, stale scores re-scored.

An overridden score becomes a human example in the active profile (it replaces
Claude's example of the same job) at once, so the next few-shot prompt shows it.
The rule weights are then refitted to every label (the person's overrides and
Claude's scores) in a background thread, the profile is saved (its version moves),
and a background re-score gives every listing scored with an older version a new
score. The person's override itself lives in `verdicts` and is never touched here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import db as storage
from scoring import metrics, queue, rules
from scoring import profile as profile_mod
from scoring.profile import Example, Profile
from scoring.strategies import RulesStrategy
from scoring.text import listing_text

log = logging.getLogger(__name__)

EXCERPT_CHARS = 300
# Folds for measuring fitted weights on labels they were not fitted to.
CV_FOLDS = 5
TOP_N = 10


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class LearningSettings:
    """The [scoring] settings that concern learning from labels."""

    refit_min_labels: int = 5
    example_cap: int = 8
    recalibrate_below: float = 0.5
    recalibrate_min_labels: int = 10
    problems: tuple[str, ...] = ()


def settings_from(scoring: dict | None) -> LearningSettings:
    """LearningSettings from the raw [scoring] table; unusable values fall back to defaults, listed in `problems`."""
    t = dict(scoring or {})
    d = LearningSettings()
    problems: list[str] = []

    def number(key, default, cast, lo, hi):
        if key not in t:
            return default
        try:
            value = cast(t[key])
            if isinstance(t[key], bool) or not lo <= value <= hi:
                raise ValueError
            return value
        except (TypeError, ValueError):
            problems.append(f"[scoring] {key} = {t[key]!r} must be a number from {lo} to {hi}; using {default}")
            return default

    return LearningSettings(
        refit_min_labels=number("refit_min_labels", d.refit_min_labels, int, 1, 100_000),
        example_cap=number("example_cap", d.example_cap, int, 0, 100),
        recalibrate_below=number("recalibrate_below", d.recalibrate_below, float, -1.0, 1.0),
        recalibrate_min_labels=number("recalibrate_min_labels", d.recalibrate_min_labels, int, 1, 100_000),
        problems=tuple(problems),
    )


# ---------------------------------------------------------------- the active profile's file

# Every read-modify-write of a profile file in this process goes through this lock,
# so an override saved while a refit runs is never overwritten by the refit.
_PROFILE_LOCK = threading.RLock()


def profile_path(instance_path: str | Path, settings: dict | None) -> Path:
    """The file of the profile `profile.active` would use (it may be the bundled example)."""
    pdir = queue.profiles_dir(instance_path)
    name = (settings or {}).get("profile") or None
    if name:
        for d in (pdir, profile_mod.BUNDLED):
            if (d / f"{name}.json").exists():
                return d / f"{name}.json"
        raise ValueError(f"no scoring profile named {name!r} in {pdir}")
    mine = sorted(pdir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if pdir.exists() else []
    return mine[0] if mine else profile_mod.BUNDLED / "example.json"


def editable_profile(instance_path: str | Path, settings: dict | None) -> tuple[Profile, Path]:
    """The active profile and the file to save it to; the bundled example is first copied to the person's folder."""
    path = profile_path(instance_path, settings)
    prof = profile_mod.load(path)
    if path.resolve().parent == profile_mod.BUNDLED.resolve():
        # data/ ships with the code: the person's labels go to their own copy.
        path = profile_mod.save(prof, queue.profiles_dir(instance_path))
    return prof, path


# ---------------------------------------------------------------- labels


@dataclass
class Label:
    """A reference score for one listing: the person's override or Claude's score."""

    listing_id: int
    score: int
    source: str  # human | claude
    reasoning: str = ""
    evidence: list[str] = field(default_factory=list)


def group_ids(db: storage.Database, listing_id: int) -> set[int]:
    """The listing and every listing of the same job (same group key)."""
    rows = db.conn.execute(
        "SELECT m.listing_id FROM listing_groups g JOIN listing_groups m ON m.group_key = g.group_key"
        " WHERE g.listing_id = ?",
        [listing_id],
    ).fetchall()
    return {listing_id} | {r[0] for r in rows}


def _group_keys(db: storage.Database) -> dict[int, str]:
    return dict(db.conn.execute("SELECT listing_id, group_key FROM listing_groups").fetchall())


def human_labels(db: storage.Database) -> dict[int, Label]:
    """The person's override scores: per job, the group's latest verdict, keyed by the listing holding it."""
    out: dict[int, Label] = {}
    seen: set[str] = set()
    # Same order as search.verdict_holder: the latest verdict speaks for the group.
    for lid, score, reason, key in db.conn.execute(
        "SELECT v.listing_id, v.override_score, v.override_reason, coalesce(g.group_key, '#' || v.listing_id)"
        " FROM verdicts v LEFT JOIN listing_groups g ON g.listing_id = v.listing_id"
        " ORDER BY v.updated_at DESC, v.listing_id DESC"
    ):
        if key in seen:
            continue
        seen.add(key)
        if score is not None:
            out[lid] = Label(lid, int(score), "human", reason or "")
    return out


def claude_labels(db: storage.Database, prof: Profile | None = None) -> dict[int, Label]:
    """Claude's scores: its latest score per listing, and the profile's Claude examples of stored listings."""
    out: dict[int, Label] = {}
    for lid, score, reasoning, evidence in db.conn.execute(
        "SELECT s.listing_id, s.score, s.reasoning, s.evidence FROM scores s"
        " WHERE s.id IN (SELECT max(id) FROM scores WHERE strategy = 'claude' GROUP BY listing_id)"
    ):
        out[lid] = Label(lid, int(score), "claude", reasoning or "", _json_list(evidence))
    if prof is not None:
        stored = _existing(db, [e.listing_id for e in prof.examples if e.source == "claude" and e.listing_id])
        for e in prof.examples:
            if e.source == "claude" and e.listing_id in stored and e.listing_id not in out:
                out[e.listing_id] = Label(e.listing_id, e.score, "claude", e.reasoning)
    return out


def combined_labels(db: storage.Database, prof: Profile | None = None) -> dict[int, Label]:
    """Every label, the person's winning over Claude's for the same job."""
    human = human_labels(db)
    keys = _group_keys(db)
    human_groups = {keys.get(lid, f"#{lid}") for lid in human}
    out = {lid: lab for lid, lab in claude_labels(db, prof).items() if keys.get(lid, f"#{lid}") not in human_groups}
    out.update(human)
    return dict(sorted(out.items()))


def _existing(db: storage.Database, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {r[0] for r in db.conn.execute(f"SELECT id FROM listings WHERE id IN ({marks})", ids)}


def _json_list(value) -> list[str]:
    try:
        data = json.loads(value or "[]")
    except (TypeError, ValueError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


# ---------------------------------------------------------------- overrides become examples


def human_example(db: storage.Database, listing_id: int, score: int, reason: str) -> Example:
    """The person's override of a listing as a profile example."""
    row = db.conn.execute(
        "SELECT title, company, location, description_html FROM listings WHERE id = ?", [listing_id]
    ).fetchone()
    if row is None:
        raise ValueError(f"there is no listing #{listing_id}")
    title, company, location, description_html = row
    return Example(
        title=title or "", company=company or "", location=location or "", score=score, reasoning=reason or "",
        source="human", listing_id=listing_id, excerpt=listing_text(description_html, EXCERPT_CHARS),
        created_at=storage.now_iso(),
    )


def with_override(prof: Profile, db: storage.Database, listing_id: int, score: int | None,
                  reason: str | None) -> Profile:
    """The profile with the person's example of this job added or replaced (score None removes it)."""
    group = group_ids(db, listing_id)
    if score is None:
        examples = [e for e in prof.examples if not (e.source == "human" and e.listing_id in group)]
    else:
        # The person's word on a job replaces anything else said about it. The example names
        # the listing holding the job's verdict, where every other reader finds the label.
        holder = next((lid for lid in human_labels(db) if lid in group), listing_id)
        examples = [e for e in prof.examples if e.listing_id not in group or e.source == "dataset"]
        examples.append(human_example(db, holder, score, reason or ""))
    return prof.model_copy(update={"examples": examples})


def on_score_override(db: storage.Database, listing_id: int, score: int | None, reason: str | None,
                      instance_path: str | Path, settings: dict | None,
                      rescore: Callable[[], bool] | None = None, background: bool = True) -> Profile:
    """Teach the scorer the person's score of a listing (None: the override was cleared).

    The example is saved at once; the refit and the re-score follow in the background
    (or right here with background=False). Returns the saved profile.
    """
    with _PROFILE_LOCK:
        prof, path = editable_profile(instance_path, settings)
        changed = with_override(prof, db, listing_id, score, reason)
        if changed.examples != prof.examples:
            profile_mod.save(changed, path.parent)
    schedule(db, instance_path, settings, rescore, refit=True, background=background)
    return changed


def on_flag_override(db: storage.Database, listing_id: int, instance_path: str | Path, settings: dict | None,
                     rescore: Callable[[], bool] | None = None, background: bool = True) -> None:
    """Re-score a listing whose flag the person changed: a rules score now, the active strategy's next.

    The fresh rules score replaces the current one, so the queue treats the listing
    as stale for any model strategy; a labeled listing also changes the weight fit.
    """
    prof = profile_mod.active(queue.profiles_dir(instance_path), (settings or {}).get("profile") or None)
    queue.score_with_rules(db, [listing_id], prof)
    labeled = group_ids(db, listing_id) & set(combined_labels(db, prof))
    schedule(db, instance_path, settings, rescore, refit=bool(labeled), background=background)


# ---------------------------------------------------------------- refit


def labeled_facts(db: storage.Database, labels: dict[int, Label]) -> dict[int, tuple[dict, rules.ListingFacts]]:
    """Strategy view and rule facts (effective flags, overrides winning) of each labeled listing still stored."""
    views = queue.listing_views(db, list(labels))
    return {lid: (v, rules.facts_from_listing(v, v["flags"])) for lid, v in views.items()}


def fit_weights(prof: Profile, labeled: list[tuple[rules.ListingFacts, int]], min_labels: int):
    """Weights fitted to the labels, or None (the profile's own weights) when there are too few."""
    if len(labeled) < min_labels:
        return None
    return rules.fit(prof, labeled)


def evaluate_rules(prof: Profile, items: list[tuple[int, dict, rules.ListingFacts, int]], min_labels: int) -> dict:
    """Agreement of the rules strategy with the labels; fitted weights are measured on folds they were not fitted to."""
    if not items:
        return {"n": 0}
    preds: dict[int, int] = {}
    grounded = 0
    strategies: dict[int, RulesStrategy] = {}
    folds = min(CV_FOLDS, len(items)) if prof.weights is not None else 1
    for k in range(folds):
        if folds == 1:
            fold_prof = prof
        else:
            train = [(f, lab) for i, (_, _, f, lab) in enumerate(items) if i % folds != k]
            fold_prof = prof.model_copy(update={"weights": fit_weights(prof, train, min_labels)})
        strategies[k] = RulesStrategy(fold_prof)
    for i, (lid, v, _, _) in enumerate(items):
        r = strategies[i % folds].score(v)
        preds[lid] = r.score
        grounded += r.grounded
    labels = [lab for _, _, _, lab in items]
    summary = metrics.summary([preds[lid] for lid, _, _, _ in items], labels)
    summary["valid_rate"] = 1.0
    summary["grounded_rate"] = round(grounded / len(items), 3)
    summary["median_s"] = 0.0
    return summary


def refit_now(db: storage.Database, instance_path: str | Path, settings: dict | None) -> dict:
    """Refit the active profile's weights to every label, save it when it changed, and record the rules' agreement."""
    ls = settings_from(settings)
    with _PROFILE_LOCK:
        prof, path = editable_profile(instance_path, settings)
    labels = combined_labels(db, prof)
    facts = labeled_facts(db, labels)
    items = [(lid, facts[lid][0], facts[lid][1], labels[lid].score) for lid in labels if lid in facts]
    # The fit reads every listing's text: slow with many labels, so never under the lock.
    weights = fit_weights(prof, [(f, lab) for _, _, f, lab in items], ls.refit_min_labels)
    with _PROFILE_LOCK:
        latest = profile_mod.load(path)
        changed = _fit_key(weights) != _fit_key(latest.weights)
        new = latest.model_copy(update={"weights": weights})
        if changed:
            snapshot_scores(db, instance_path, latest.version, new.version, len(items), weights is not None)
            profile_mod.save(new, path.parent)
        else:
            new = latest
    summary = evaluate_rules(new, items, ls.refit_min_labels)
    if summary.get("n"):
        queue.record_evaluation(db, summary, "rules", f"rules@{new.weights_version}", new.version, "person")
    return {"n_labels": len(items), "fitted": weights is not None, "changed": changed,
            "profile_version": new.version, "evaluation": summary}


def _fit_key(weights) -> tuple | None:
    # The same fit at another time is no change: re-scoring every listing for it would be waste.
    return None if weights is None else (weights.intercept, sorted(weights.coef.items()), weights.n_labels)


# ---------------------------------------------------------------- the background worker


@dataclass
class LearningState:
    """The refit worker's progress, read by the status partial."""

    running: bool = False
    phase: str = ""  # refitting | waiting (for a scoring pass with an older profile to end) | ""
    refit_wanted: bool = False
    rescore_wanted: bool = False
    last: dict = field(default_factory=dict)
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict:
        """A copy safe to render while the worker runs."""
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k != "lock"}


STATE = LearningState()
_THREAD: threading.Thread | None = None
_JOB: dict = {}
RESCORE_RETRY_S = 2.0


def database_path(db: storage.Database) -> str | None:
    """The file behind a connection, or None for an in-memory database."""
    for _seq, name, file in db.conn.execute("PRAGMA database_list"):
        if name == "main":
            return file or None
    return None


def schedule(db: storage.Database, instance_path: str | Path, settings: dict | None,
             rescore: Callable[[], bool] | None, refit: bool = True, background: bool = True) -> None:
    """Refit (when asked) and then start a re-score; in a background thread that coalesces requests."""
    global _THREAD
    path = database_path(db)
    if not background or path is None:
        if refit:
            STATE.last = refit_now(db, instance_path, settings)
        if rescore is not None:
            rescore()
        return
    with STATE.lock:
        STATE.refit_wanted |= refit
        STATE.rescore_wanted |= rescore is not None
        _JOB.update(db_path=path, instance_path=str(instance_path), settings=dict(settings or {}))
        if rescore is not None:
            _JOB["rescore"] = rescore
        if _THREAD is not None and _THREAD.is_alive():
            return
        STATE.running = True
        _THREAD = threading.Thread(target=_work, name="jobsift-learn", daemon=True)
        _THREAD.start()


def _work() -> None:
    from scoring import service

    while True:
        with STATE.lock:
            if not (STATE.refit_wanted or STATE.rescore_wanted):
                STATE.running, STATE.phase = False, ""
                return
            refit, STATE.refit_wanted = STATE.refit_wanted, False
            STATE.phase = "refitting" if refit else STATE.phase
            job = dict(_JOB)
        if refit:
            try:
                db = storage.connect(job["db_path"], migrate_now=False)
                try:
                    result = refit_now(db, job["instance_path"], job["settings"])
                finally:
                    db.conn.close()
                with STATE.lock:
                    STATE.last, STATE.last_error = result, ""
            except (ValueError, sqlite3.Error, OSError) as exc:
                log.warning("refit failed: %s", exc)
                with STATE.lock:
                    STATE.last_error = str(exc)
            except Exception as exc:  # the worker must end cleanly whatever happens
                log.exception("refit failed")
                with STATE.lock:
                    STATE.last_error = f"unexpected error ({type(exc).__name__}); see the log"
        with STATE.lock:
            if STATE.refit_wanted:
                continue  # newer labels arrived: refit again before re-scoring
            wanted, STATE.rescore_wanted = STATE.rescore_wanted, False
            rescore = job.get("rescore")
            STATE.phase = "waiting" if wanted else ""
        if wanted and rescore is not None and not _start_rescore(rescore, service):
            with STATE.lock:
                STATE.rescore_wanted = True


def _start_rescore(rescore: Callable[[], bool], service) -> bool:
    """Start a scoring pass; while one is running (it has an older profile) wait for it and start another."""
    while True:
        try:
            if rescore():
                return True
        except Exception:
            log.exception("could not start the re-score")
            return True  # nothing to retry into; the next fetch or override starts one
        with STATE.lock:
            if STATE.refit_wanted:
                return False
        service.wait_idle(RESCORE_RETRY_S)
        time.sleep(0.05)


def wait_idle(timeout: float | None = None) -> bool:
    """Wait for the refit worker to finish; True when it is not running afterwards."""
    t = _THREAD
    if t is not None:
        t.join(timeout)
    return t is None or not t.is_alive()


# ---------------------------------------------------------------- what the person sees


def _snapshot_path(instance_path: str | Path) -> Path:
    return Path(instance_path) / "learning" / "last_refit.json"


def snapshot_scores(db: storage.Database, instance_path: str | Path, from_version: str, to_version: str,
                    n_labels: int, fitted: bool) -> None:
    """Keep the current scores as they are before a refit, to show later how rankings moved."""
    before = {str(lid): score for lid, score in db.conn.execute(
        "SELECT cs.listing_id, cs.score FROM current_scores cs JOIN listings l ON l.id = cs.listing_id"
        " WHERE l.stale = 0"
    )}
    last_score_id = db.conn.execute("SELECT coalesce(max(id), 0) FROM scores").fetchone()[0]
    path = _snapshot_path(instance_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"at": storage.now_iso(), "from_version": from_version, "to_version": to_version,
                               "n_labels": n_labels, "fitted": fitted, "last_score_id": last_score_id,
                               "before": before}), encoding="utf-8")
    tmp.replace(path)


def ranking_moves(db: storage.Database, instance_path: str | Path, top_n: int = TOP_N) -> dict | None:
    """How scores and the top of the ranking moved since the last refit, or None before any refit."""
    path = _snapshot_path(instance_path)
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
        before = {int(k): int(v) for k, v in snap["before"].items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    now = {}
    rescored = 0
    last_score_id = int(snap.get("last_score_id") or 0)
    for lid, score, score_id in db.conn.execute(
        "SELECT cs.listing_id, cs.score, cs.score_id FROM current_scores cs"
        " JOIN listings l ON l.id = cs.listing_id WHERE l.stale = 0"
    ):
        now[lid] = score
        rescored += score_id > last_score_id
    common = [lid for lid in before if lid in now]
    changes = [abs(now[lid] - before[lid]) for lid in common]

    def top(scores: dict[int, int]) -> list[int]:
        return sorted(scores, key=lambda lid: (-scores[lid], lid))[:top_n]

    top_before, top_now = top(before), top(now)
    ids = sorted(set(top_before) | set(top_now))
    titles = {}
    if ids:
        marks = ",".join("?" * len(ids))
        titles = dict(db.conn.execute(f"SELECT id, title FROM listings WHERE id IN ({marks})", ids).fetchall())
    return {
        "at": snap.get("at", ""),
        "n_labels": snap.get("n_labels", 0),
        "fitted": bool(snap.get("fitted")),
        "rescored": rescored,
        "compared": len(common),
        "moved": sum(1 for c in changes if c),
        "mean_abs_change": round(sum(changes) / len(changes), 1) if changes else 0.0,
        "top_before": [{"id": lid, "title": titles.get(lid, ""), "score": before[lid], "kept": lid in top_now}
                       for lid in top_before],
        "top_now": [{"id": lid, "title": titles.get(lid, ""), "score": now[lid], "new": lid not in top_before}
                    for lid in top_now],
    }


def status(db: storage.Database, instance_path: str | Path, settings: dict | None) -> dict:
    """How many listings wait for a score with the latest labels, and what the worker and the scorer are doing."""
    scorer = queue.STATE.snapshot()
    learner = STATE.snapshot()
    try:
        prof = profile_mod.active(queue.profiles_dir(instance_path), (settings or {}).get("profile") or None)
    except ValueError as exc:
        return {"stale": 0, "strategy": "", "profile_version": "", "human_examples": 0, "weights": None,
                "scorer_running": scorer["running"], "scorer_done": scorer["done"], "scorer_total": scorer["total"],
                "learning": learner["running"], "refitting": False, "last_error": str(exc), "busy": False,
                "moves": None}
    strategy, _ = queue.active_strategy(db, (settings or {}).get("strategy", "auto"), prof)
    stale = len(queue.pending(db, strategy, prof))
    return {
        "stale": stale,
        "strategy": strategy,
        "profile_version": prof.version,
        "human_examples": sum(1 for e in prof.examples if e.source == "human"),
        "weights": prof.weights.model_dump() if prof.weights else None,
        "scorer_running": scorer["running"],
        "scorer_done": scorer["done"],
        "scorer_total": scorer["total"],
        "learning": learner["running"],
        "refitting": learner["phase"] == "refitting",
        "last_error": learner["last_error"],
        "busy": learner["running"] or (scorer["running"] and stale > 0),
        "moves": ranking_moves(db, instance_path),
    }
