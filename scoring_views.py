"""Scoring in the UI: which strategy is active and how well it agrees, progress, 'Score now'."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Flask, current_app, render_template, request

bp = Blueprint("scoring", __name__)


def init_app(app: Flask) -> None:
    """Register the scoring routes and the template helpers."""
    app.register_blueprint(bp)
    app.jinja_env.globals.update(scoring_status=scoring_status, is_demo_model=is_demo_model,
                                 strategy_agreement=strategy_agreement)


@lru_cache(maxsize=1)
def _demo_stem() -> str | None:
    from scoring.providers import demo_model_path

    path = demo_model_path()
    return Path(path).stem if path else None


def is_demo_model(model: str | None) -> bool:
    """True when a score came from the bundled demo model (meaningless judgments, for trying things out)."""
    stem = _demo_stem()
    return bool(model and stem and stem in model)


def strategy_agreement(strategy: str | None) -> dict | None:
    """The newest measured agreement of a strategy with labels, for the note beside each score."""
    if strategy not in ("rules", "fewshot", "facts"):
        return None
    from app import get_db
    from scoring import queue

    return queue.best_evaluation(get_db(), strategy)


def scoring_status() -> dict:
    """What the page says about scoring: active strategy, its measured agreement, queue progress."""
    from app import get_db
    from scoring import queue, service

    settings = dict(current_app.config["JOBSIFT"].scoring)
    db = get_db()
    try:
        prof = service.active_profile(current_app.instance_path, settings)
        name, evaluation = queue.active_strategy(db, settings.get("strategy", "auto"), prof)
        profile_name, profile_error = prof.cv_name, ""
    except ValueError as exc:  # a broken profile file: say so, keep the page up
        name, evaluation, profile_name, profile_error = "rules", None, "", str(exc)
    demo = name in ("fewshot", "facts") and settings.get("local_provider", "llamacpp") == "llamacpp" \
        and not settings.get("model_path")
    return {
        "strategy": name,
        "setting": settings.get("strategy", "auto"),
        "evaluation": evaluation,
        "profile": profile_name,
        "profile_error": profile_error,
        "demo": demo,
        "queue": queue.STATE.snapshot(),
    }


@bp.post("/score")
def start_scoring():
    """Start a background scoring pass (rules for new listings, then the active strategy)."""
    from scoring import service

    started = service.start_background(current_app._get_current_object())
    return render_template("_score_status.html", message=None if started else "Scoring is already running.")


@bp.get("/score/status")
def scoring_progress():
    """The polled progress fragment."""
    return render_template("_score_status.html", message=None)
