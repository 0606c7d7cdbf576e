"""Scoring for the running app: which profile, strategy and engine; runs in the background after fetches."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import db as storage
from scoring import profile as profile_mod
from scoring import queue

log = logging.getLogger(__name__)
_THREAD: threading.Thread | None = None
_THREAD_LOCK = threading.Lock()


def active_profile(instance_path: str | Path, settings: dict) -> profile_mod.Profile:
    """The profile named in [scoring] profile, else the person's newest, else the bundled example."""
    return profile_mod.active(queue.profiles_dir(instance_path), settings.get("profile") or None)


def engine_factory(settings: dict):
    """A callable that builds the configured local engine (loaded lazily, only when a model strategy runs)."""

    def make():
        from scoring.providers import make_engine

        return make_engine(settings)

    return make


def score_unscored(db: storage.Database, prof: profile_mod.Profile) -> int:
    """Give every listing without a score an instant rules score."""
    ids = [r[0] for r in db.conn.execute(
        "SELECT l.id FROM listings l LEFT JOIN current_scores c ON c.listing_id = l.id WHERE c.listing_id IS NULL"
    )]
    return queue.score_with_rules(db, ids, prof) if ids else 0


def dev_profile() -> profile_mod.Profile:
    """The profile the development set's labels were written for (the bundled example CV)."""
    return profile_mod.load(profile_mod.BUNDLED / "example.json")


def ensure_rules_evaluation(db: storage.Database) -> dict | None:
    """Measure the rules strategy on the development set once (instant), so agreement shows from the start.

    The development labels belong to the bundled example CV, so they measure a strategy
    with that profile; the person's own labels measure it with theirs.
    """
    prof = dev_profile()
    have = db.conn.execute(
        "SELECT 1 FROM strategy_evals WHERE strategy = 'rules' AND profile_version = ? AND label_set = 'dev'",
        [prof.version],
    ).fetchone()
    if have:
        return None
    import config as config_mod
    from scoring import evaluate as ev
    from scoring.strategies import RulesStrategy

    e = ev.evaluate(RulesStrategy(prof), ev.dev_set(), config_mod.Config(person=ev.DEV_PERSON))
    queue.record_evaluation(db, e.summary, "rules", e.model, prof.version, "dev")
    return e.summary


def run(db_path: str, instance_path: str, settings: dict, limit: int | None = None, progress=None,
        env_file: str | None = None) -> dict:
    """One scoring pass: rules for the unscored, then the active strategy, then Claude for the unsure (hybrid)."""
    db = storage.connect(db_path, migrate_now=False)
    try:
        from scoring import learning, modelbench

        # `local_model = "auto"`: the best-ranked model of the last bench-models run.
        settings = modelbench.best_model_settings(db, settings)
        prof = active_profile(instance_path, settings)
        ensure_rules_evaluation(db)
        n_rules = score_unscored(db, prof)
        name, evaluation = queue.active_strategy(db, settings.get("strategy", "auto"), prof)
        claude_settings = None
        if settings.get("mode") == "hybrid":
            from scoring.claude import settings_from

            claude_settings = settings_from(settings)
        result = queue.run(db, prof, name, engine_factory(settings), limit=limit, progress=progress,
                           claude_settings=claude_settings,
                           example_cap=learning.settings_from(settings).example_cap)
        result.update({"rules_first": n_rules, "strategy": name, "evaluation": evaluation})
    finally:
        db.conn.close()
    if settings.get("mode") == "hybrid":
        from scoring import escalation

        result["escalations"] = escalation.run_pending(db_path, settings, instance_path, env_file)
    return result


def start_background(app) -> bool:
    """Start a scoring pass in a background thread unless one is running; False if one is."""
    global _THREAD
    with _THREAD_LOCK:
        if _THREAD is not None and _THREAD.is_alive():
            return False
        cfg = app.config["JOBSIFT"]
        args = (app.config["DATABASE"], app.instance_path, dict(cfg.scoring))
        kwargs = {"env_file": app.config.get("CLAUDE_ENV_FILE")}

        def work():
            try:
                run(*args, **kwargs)
            except Exception:
                log.exception("background scoring failed")

        _THREAD = threading.Thread(target=work, name="jobsift-score", daemon=True)
        _THREAD.start()
        return True


def wait_idle(timeout: float | None = None) -> bool:
    """Wait for the background scoring pass to end; True when none is running afterwards."""
    t = _THREAD
    if t is not None:
        t.join(timeout)
    return t is None or not t.is_alive()
