"""What the scorer learned, in the dashboard: the agreement report, the model bench, and re-scoring progress.

`after_override` is the dashboard's hook: it turns the person's override into an
example (and a refit and a re-score in the background). Pages: /calibration (the
agreement report with its charts) and /models (the bench results). The status
partial, `{% include "_learning_status.html" %}`, polls itself while listings
are being re-scored with the latest labels.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, current_app, render_template, request

from scoring import learning, modelbench, report, service

log = logging.getLogger(__name__)

bp = Blueprint("learning", __name__)


def init_app(app) -> None:
    """Register the learning pages and the `learning_status()` template helper."""
    app.register_blueprint(bp)


def _db():
    from app import get_db

    return get_db()


def _scoring() -> dict:
    return dict(current_app.config["JOBSIFT"].scoring)


def _rescore_starter():
    app = current_app._get_current_object()
    return lambda: service.start_background(app)


# The folder Flask gives an app that was never told otherwise: the person's own instance.
DEFAULT_INSTANCE = Path(__file__).resolve().parent / "instance"


def after_override(kind: str, listing_id: int, *args) -> None:
    """Learn from an override the dashboard just saved: kind "score" (score, reason; None clears) or "flag"."""
    db, settings, instance = _db(), _scoring(), current_app.instance_path
    if current_app.testing and Path(instance).resolve() == DEFAULT_INSTANCE:
        # A test app over a throwaway database must not teach the person's real profile.
        log.warning("not learning from the override of listing %s: the test app uses %s", listing_id, instance)
        return
    if kind == "score":
        score, reason = args
        learning.on_score_override(db, listing_id, score, reason, instance, settings, rescore=_rescore_starter())
    elif kind == "flag":
        learning.on_flag_override(db, listing_id, instance, settings, rescore=_rescore_starter())
    else:
        raise ValueError(f"unknown override kind {kind!r}")


def status() -> dict:
    """Re-scoring progress and ranking moves, for the status partial."""
    return learning.status(_db(), current_app.instance_path, _scoring())


@bp.app_context_processor
def _learning_context() -> dict:
    # A callable, so pages that never show the status never pay for it.
    return {"learning_status": status}


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


@bp.get("/learning/status")
def learning_status():
    """The re-scoring status partial; it polls itself while the scorer catches up with the latest labels."""
    return render_template("_learning_status.html", ls=status())


@bp.get("/calibration")
def calibration():
    """The agreement report: each strategy against Claude's labels and the person's, over time, with charts."""
    from scoring import profile as profile_mod
    from scoring.queue import profiles_dir

    settings = _scoring()
    prof = None
    problems = []
    try:
        prof = profile_mod.active(profiles_dir(current_app.instance_path), settings.get("profile") or None)
    except ValueError as exc:
        problems.append(str(exc))
    chart = (request.args.get("chart") or "").strip() or None
    rep = report.build(_db(), prof, settings, chart_strategy=chart)
    rep["problems"] = problems + rep["problems"]
    template = "_learning_report.html" if _is_htmx() else "calibration.html"
    return render_template(template, rep=rep, ls=status())


@bp.get("/models")
def models():
    """The model bench: the latest run ranked, earlier runs, and the model `local_model = "auto"` would use."""
    db = _db()
    settings = _scoring()
    latest = modelbench.latest_run(db)
    auto = str(settings.get("local_model", "")).strip().lower() == "auto"
    chosen = modelbench.best_model_settings(db, settings) if auto else None
    try:
        qw, sw = modelbench.weights_from(settings)
        weight_problem = ""
    except ValueError as exc:
        qw, sw = modelbench.DEFAULT_QUALITY_WEIGHT, modelbench.DEFAULT_SPEED_WEIGHT
        weight_problem = str(exc)
    specs, problems = modelbench.configured_models(settings)
    return render_template(
        "models.html", latest=latest, runs=modelbench.runs(db), auto=auto, chosen=chosen,
        quality_weight=qw, speed_weight=sw, problems=problems + ([weight_problem] if weight_problem else []),
        configured=[s.ref or f"{s.provider} (demo model)" for s in specs],
    )
