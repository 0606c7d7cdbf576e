"""The scoring queue: which listings to score next, with which strategy, in the background.

Every listing gets an instant `rules` score as soon as it is stored, so the dashboard
always has a number and its reasoning. When the active strategy uses a model, the
queue then re-scores listings in order of relevance (eligible and priority first,
newest first). A down or slow engine never loses work: the listing keeps (or gets)
its rules score marked as a fallback, and the queue tries the engine again later.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import db as storage
from scoring import profile as profile_mod
from scoring.strategies import STRATEGIES, OutputError, RulesStrategy, ScoreResult, Strategy, view

log = logging.getLogger(__name__)

# Labels of the person's own (calibration + overrides) before `auto` trusts them
# over the shipped development set.
MIN_PERSON_LABELS = 15
ENGINE_RETRY_S = 60.0
_ELIGIBLE_FIRST = ("loc:home", "loc:remote", "loc:unknown")


@dataclass
class QueueState:
    """Progress of the background scorer, read by the UI and the CLI."""

    running: bool = False
    done: int = 0
    total: int = 0
    strategy: str = ""
    model: str = ""
    current: str = ""
    fallbacks: int = 0
    errors: int = 0
    last_error: str = ""
    engine_down_until: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict:
        """A copy safe to render while the scorer runs."""
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k != "lock"}


STATE = QueueState()
_RUN_LOCK = threading.Lock()


def effective_flags(db: storage.Database, listing_ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
    """Flags per listing, the person's flag overrides winning over computed ones."""
    out: dict[int, dict[str, tuple[str, str]]] = {lid: {} for lid in listing_ids}
    if not listing_ids:
        return out
    marks = ",".join("?" * len(listing_ids))
    for lid, kind, label, evidence in db.conn.execute(
        f"SELECT listing_id, kind, label, evidence FROM flags WHERE listing_id IN ({marks})", listing_ids
    ):
        out[lid][kind] = (label, evidence or "")
    for lid, kind, label, reason in db.conn.execute(
        f"SELECT listing_id, kind, label, reason FROM flag_overrides WHERE listing_id IN ({marks})", listing_ids
    ):
        out[lid][kind] = (label, f"your override: {reason}" if reason else "your override")
    return out


def listing_views(db: storage.Database, listing_ids: list[int]) -> dict[int, dict]:
    """Strategy views for listings, by id."""
    if not listing_ids:
        return {}
    marks = ",".join("?" * len(listing_ids))
    rows = db.query(
        f"SELECT id, title, company, location, description_html FROM listings WHERE id IN ({marks})", listing_ids
    )
    flags = effective_flags(db, listing_ids)
    return {r["id"]: view(r, flags.get(r["id"], {})) for r in rows}


def pending(db: storage.Database, strategy: str, prof: profile_mod.Profile, limit: int | None = None) -> list[int]:
    """Listings whose current score is missing, from another strategy, or from an older profile; most relevant first."""
    sql = f"""
        SELECT l.id FROM listings l
        LEFT JOIN current_scores cs ON cs.listing_id = l.id
        LEFT JOIN scores s ON s.id = cs.score_id
        LEFT JOIN flags fl ON fl.listing_id = l.id AND fl.kind = 'location'
        LEFT JOIN flags ff ON ff.listing_id = l.id AND ff.kind = 'focus'
        LEFT JOIN verdicts v ON v.listing_id = l.id
        WHERE l.stale = 0
          AND coalesce(v.status, 'new') != 'hidden'
          AND (cs.listing_id IS NULL
               OR (s.strategy NOT IN ('claude', 'human')
                   AND (s.strategy != :strategy OR s.profile_version != :version
                        OR json_extract(s.detail, '$.fallback') IS NOT NULL)))
        ORDER BY
          CASE WHEN fl.label IN ({",".join("'" + x + "'" for x in _ELIGIBLE_FIRST)}) THEN 0 ELSE 1 END,
          CASE WHEN ff.label = 'focus:priority' THEN 0 WHEN ff.label = 'focus:tech' THEN 1 ELSE 2 END,
          coalesce(l.posted_at, l.first_seen) DESC
    """
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [r[0] for r in db.conn.execute(sql, {"strategy": strategy, "version": prof.version})]


def save(db: storage.Database, lid: int, r: ScoreResult, prof: profile_mod.Profile) -> int:
    """Store a strategy's result as the listing's current score."""
    return storage.save_score(
        db, lid, strategy=r.strategy, provider=r.provider, model=r.model, profile_version=prof.version,
        weights_version=prof.weights_version, score=r.score, reasoning=r.reasoning, evidence=r.evidence,
        grounded=int(r.grounded), latency_ms=r.latency_ms, prompt_tokens=r.prompt_tokens,
        completion_tokens=r.completion_tokens, detail=r.detail,
    )


def score_with_rules(db: storage.Database, listing_ids: list[int], prof: profile_mod.Profile) -> int:
    """Give listings an instant rules score (used right after ingest)."""
    strategy = RulesStrategy(prof)
    views = listing_views(db, listing_ids)
    for lid, v in views.items():
        save(db, lid, strategy.score(v), prof)
    return len(views)


def active_strategy(db: storage.Database, setting: str, prof: profile_mod.Profile) -> tuple[str, dict | None]:
    """The strategy to use and the evaluation that chose it: a fixed setting, or the best-agreeing one for `auto`."""
    if setting in STRATEGIES:
        return setting, best_evaluation(db, setting)
    return choose_auto(db)


def best_evaluation(db: storage.Database, strategy: str | None = None) -> dict | None:
    """The newest evaluation per strategy on the label set `auto` trusts, best first (or of one strategy)."""
    person = db.conn.execute(
        "SELECT max(n) FROM strategy_evals WHERE label_set = 'person'"
    ).fetchone()[0] or 0
    label_set = "person" if person >= MIN_PERSON_LABELS else "dev"
    rows = list(
        db.query(
            "SELECT * FROM strategy_evals WHERE id IN (SELECT max(id) FROM strategy_evals WHERE label_set = ?"
            " GROUP BY strategy) ORDER BY spearman DESC, mae ASC",
            [label_set],
        )
    )
    if strategy:
        rows = [r for r in rows if r["strategy"] == strategy]
    return rows[0] if rows else None


def choose_auto(db: storage.Database) -> tuple[str, dict | None]:
    """`auto`: the strategy whose newest evaluation agrees best with labels; rules when nothing was measured."""
    best = best_evaluation(db)
    if best is None:
        return "rules", None
    return best["strategy"], best


def record_evaluation(db: storage.Database, summary: dict, strategy: str, model: str, profile_version: str,
                      label_set: str) -> None:
    """Store an evaluation so `auto` and the UI can use it."""
    with storage.write(db):
        db["strategy_evals"].insert(
            {
                "strategy": strategy, "model": model, "profile_version": profile_version, "label_set": label_set,
                "n": summary.get("n", 0), "spearman": summary.get("spearman"), "mae": summary.get("mae"),
                "top10": summary.get("top10"), "band_agreement": summary.get("band_agreement"),
                "valid_rate": summary.get("valid_rate"), "grounded_rate": summary.get("grounded_rate"),
                "median_s": summary.get("median_s"), "created_at": storage.now_iso(),
            }
        )


def build_strategy(name: str, prof: profile_mod.Profile, engine=None, example_cap: int = 8) -> Strategy:
    """An instance of a named strategy, with the engine when it uses a model."""
    cls = STRATEGIES[name]
    if cls.uses_model:
        if engine is None:
            raise ValueError(f"strategy {name!r} needs a local model engine")
        if name == "fewshot":
            return cls(prof, engine, example_cap=example_cap)
        return cls(prof, engine)
    return cls(prof)


def run(db: storage.Database, prof: profile_mod.Profile, strategy_name: str, engine_factory=None,
        limit: int | None = None, stop: threading.Event | None = None, progress=None,
        state: QueueState = STATE, claude_settings=None, example_cap: int = 8) -> dict:
    """Score pending listings with the strategy; engine failures fall back to rules and are retried later.

    With `claude_settings` in hybrid mode, each local score is checked against the
    escalation triggers and unsure listings are queued for Claude.
    """
    if not _RUN_LOCK.acquire(blocking=False):
        return {"started": False, "reason": "scoring is already running"}
    try:
        ids = pending(db, strategy_name, prof, limit)
        rules = RulesStrategy(prof)
        strategy: Strategy | None = None
        engine_error = ""
        if STRATEGIES[strategy_name].uses_model:
            try:
                strategy = build_strategy(strategy_name, prof, engine_factory() if engine_factory else None,
                                          example_cap)
            except Exception as exc:  # model file missing, bad settings: say so, use rules
                engine_error = f"engine unavailable: {exc}"
                log.warning("scoring: %s", engine_error)
        else:
            strategy = rules
        with state.lock:
            state.running, state.done, state.total = True, 0, len(ids)
            state.strategy = strategy_name
            state.model = getattr(getattr(strategy, "engine", None), "model", "rules")
            state.fallbacks = state.errors = 0
            state.last_error = engine_error
            state.started_at, state.finished_at = time.time(), 0.0
        for i, lid in enumerate(ids):
            if stop is not None and stop.is_set():
                break
            v = listing_views(db, [lid]).get(lid)
            if v is None:
                continue
            with state.lock:
                state.current = v["title"][:80]
            result = None
            engine_down = strategy is None or time.time() < state.engine_down_until
            if not engine_down:
                try:
                    result = strategy.score(v)
                except OutputError as exc:
                    # Unusable model output: keep the listing on rules, record why.
                    with state.lock:
                        state.errors += 1
                        state.last_error = str(exc)
                except Exception as exc:  # EngineError and transport failures
                    with state.lock:
                        state.engine_down_until = time.time() + ENGINE_RETRY_S
                        state.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("scoring: engine failed, falling back to rules: %s", exc)
            if result is None:
                with state.lock:
                    state.fallbacks += 1
                if _has_score(db, lid):
                    # It keeps the score it has; the model gets another try on a later run.
                    with state.lock:
                        state.done = i + 1
                    continue
                result = rules.score(v)
                if strategy is not rules:
                    result.detail["fallback"] = state.last_error or engine_error or "engine unavailable"
            # Never hold a write transaction across the model call: save() opens its own.
            save(db, lid, result, prof)
            if claude_settings is not None:
                # Imported here: escalation imports this module.
                from scoring import escalation

                others = [rules.score(v)] if result.strategy != "rules" else []
                escalation.after_local_score(db, lid, result, others, claude_settings)
            with state.lock:
                state.done = i + 1
            if progress:
                progress(i + 1, len(ids), result)
        with state.lock:
            state.running = False
            state.current = ""
            state.finished_at = time.time()
        return {"started": True, "scored": state.done, "fallbacks": state.fallbacks, "errors": state.errors}
    finally:
        _RUN_LOCK.release()


def _has_score(db: storage.Database, lid: int) -> bool:
    return db.conn.execute("SELECT 1 FROM current_scores WHERE listing_id = ?", [lid]).fetchone() is not None


def profiles_dir(instance_path: str | Path) -> Path:
    """Where the person's scoring profiles live."""
    return Path(instance_path) / "scoring_profiles"
