"""Claude in the dashboard: one-click re-score, calibration, escalation runs, and the spend page.

Every Claude call runs in a background thread with its own database connection;
the request that starts it returns a fragment that polls until the work is done.
Without an API key the buttons render disabled with a one-line explanation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

import db as storage
from scoring import calibration, claude, escalation, ledger
from scoring import profile as profile_mod
from scoring.queue import listing_views, profiles_dir

log = logging.getLogger(__name__)

bp = Blueprint("claude", __name__)
MAX_CV_BYTES = 200_000


def init_app(app) -> None:
    """Register the Claude routes and the `claude_status()` / `claude_rescore()` template helpers."""
    app.register_blueprint(bp)


# ---------------------------------------------------------------- background work


@dataclass
class RescoreJob:
    """A re-score in progress or finished, per listing."""

    status: str = "running"  # running | done | error
    error: str = ""
    score_id: int | None = None
    started_at: float = 0.0


_JOBS: dict[int, RescoreJob] = {}
_JOBS_LOCK = threading.Lock()
_THREADS: set[threading.Thread] = set()
_THREADS_LOCK = threading.Lock()


def _spawn(target, *args) -> threading.Thread:
    def run() -> None:
        try:
            target(*args)
        finally:
            with _THREADS_LOCK:
                _THREADS.discard(threading.current_thread())

    t = threading.Thread(target=run, daemon=True, name=f"claude-{target.__name__}")
    with _THREADS_LOCK:
        _THREADS.add(t)
    t.start()
    return t


def wait_idle(timeout: float = 10.0) -> bool:
    """Wait for every Claude background thread of this process; False when one is still running."""
    deadline = time.monotonic() + timeout
    while True:
        with _THREADS_LOCK:
            threads = list(_THREADS)
        if not threads:
            return True
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _THREADS_LOCK:
                return not _THREADS


@dataclass(frozen=True)
class _Env:
    """What a background thread needs from the app, read while the request is live."""

    db_path: str
    scoring: dict
    settings: claude.ClaudeSettings
    env_file: str | None
    instance_path: str
    profile_name: str | None

    def profile(self) -> profile_mod.Profile:
        """The active scoring profile."""
        return profile_mod.active(profiles_dir(self.instance_path), self.profile_name)

    def client(self) -> claude.ClaudeClient:
        """A Claude client recording into the app's database (NoKey without a key)."""
        return claude.client_for(self.settings, self.db_path, self.env_file)


def _env() -> _Env:
    app = current_app
    scoring = app.config["JOBSIFT"].scoring
    return _Env(
        db_path=app.config["DATABASE"],
        scoring=dict(scoring),
        settings=claude.settings_from(scoring),
        env_file=app.config.get("CLAUDE_ENV_FILE"),
        instance_path=app.instance_path,
        profile_name=(scoring.get("profile") or None),
    )


def _rescore_worker(env: _Env, listing_id: int, job: RescoreJob) -> None:
    db = storage.connect(env.db_path, migrate_now=False)
    client = None
    try:
        client = env.client()
        v = listing_views(db, [listing_id]).get(listing_id)
        if v is None:
            raise claude.Failed("the listing no longer exists")
        prof = env.profile()
        r = client.assess(v, prof, listing_id=listing_id)
        sid = storage.save_score(
            db, listing_id, strategy="claude", provider="anthropic", model=r.model, profile_version=prof.version,
            score=r.score, reasoning=r.reasoning, evidence=r.evidence, grounded=int(r.grounded),
            latency_ms=r.latency_ms, prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
            detail=r.detail,
        )
        with _JOBS_LOCK:
            job.status, job.score_id = "done", sid
    except (claude.ClaudeError, ValueError) as exc:
        with _JOBS_LOCK:
            job.status, job.error = "error", str(exc)
    except Exception as exc:  # never leave the fragment polling forever
        log.exception("re-score of listing %s failed", listing_id)
        with _JOBS_LOCK:
            job.status, job.error = "error", f"unexpected error ({type(exc).__name__}); see the log"
    finally:
        if client is not None:
            client.close()
        db.conn.close()


def _escalation_worker(env: _Env) -> None:
    # The button runs whatever is queued, even when hybrid mode has since been turned off.
    try:
        result = escalation.run_pending(env.db_path, env.scoring, env.instance_path, env.env_file,
                                        require_hybrid=False)
        problem = "" if result.get("started") else result.get("reason", "")
    except (claude.ClaudeError, ValueError) as exc:
        problem = str(exc)
    except Exception as exc:
        log.exception("escalation run failed")
        problem = f"unexpected error ({type(exc).__name__}); see the log"
    if problem:
        with escalation.STATE.lock:
            escalation.STATE.running = False
            escalation.STATE.paused = problem


def _calibration_worker(env: _Env, cv_text: str, cv_name: str, sample_n: int, batch: bool, ignore_budget: bool
                        ) -> None:
    db = storage.connect(env.db_path, migrate_now=False)
    client = None
    try:
        client = env.client()
        calibration.run(db, client, cv_text, cv_name, env.instance_path, sample_n=sample_n, batch=batch,
                        poll_s=10.0, ignore_budget=ignore_budget)
    except (claude.ClaudeError, calibration.CalibrationError, ValueError) as exc:
        calibration.STATE.update(phase="error", error=str(exc), running=False)
    except Exception as exc:
        log.exception("calibration failed")
        calibration.STATE.update(phase="error", error=f"unexpected error ({type(exc).__name__}); see the log",
                                 running=False)
    finally:
        if client is not None:
            client.close()
        db.conn.close()


# ---------------------------------------------------------------- template helpers


def _db():
    from app import get_db

    return get_db()


def status() -> dict:
    """Key, budget and mode, for buttons and the banner."""
    env = _env()
    s = env.settings
    spent = ledger.month_spend(_db())
    key = claude.resolve_key(env.env_file) is not None
    return {
        "key_present": key,
        "disabled_reason": "" if key else claude.NO_KEY_MESSAGE,
        "mode": s.mode,
        "month_spend_usd": round(spent, 4),
        "budget_usd": s.monthly_budget_usd,
        "over_budget": spent >= s.monthly_budget_usd,
        "problems": list(s.problems),
    }


def _last_assessment(listing_id: int) -> dict | None:
    row = _db().conn.execute(
        "SELECT id, score, reasoning, evidence, grounded, model, created_at, detail FROM scores"
        " WHERE listing_id = ? AND strategy = 'claude' AND json_extract(detail, '$.purpose') = 'rescore'"
        " ORDER BY id DESC LIMIT 1",
        [listing_id],
    ).fetchone()
    if row is None:
        return None
    detail = json.loads(row[7] or "{}")
    return {
        "score_id": row[0], "score": row[1], "reasoning": row[2], "evidence": json.loads(row[3] or "[]"),
        "grounded": bool(row[4]), "model": row[5], "created_at": row[6],
        "strengths": detail.get("strengths", []), "gaps": detail.get("gaps", []),
        "recommendations": detail.get("recommendations", []), "cost_usd": detail.get("cost_usd"),
    }


def rescore_view(listing_id: int, error: str = "", confirm: bool = False) -> dict:
    """Everything the re-score fragment shows for one listing."""
    with _JOBS_LOCK:
        job = _JOBS.get(listing_id)
        state = (job.status, job.error) if job else ("idle", "")
    return {
        "listing_id": listing_id,
        "state": state[0],
        "error": error or (state[1] if state[0] == "error" else ""),
        "confirm": confirm,
        "result": _last_assessment(listing_id),
        "claude": status(),
    }


@bp.app_context_processor
def _claude_context() -> dict:
    # Callables, so pages that never show Claude's status never query it.
    return {"claude_status": status, "claude_rescore": rescore_view}


# ---------------------------------------------------------------- routes


def _listing_exists(listing_id: int) -> bool:
    return _db().conn.execute("SELECT 1 FROM listings WHERE id = ?", [listing_id]).fetchone() is not None


def _rescore_fragment(listing_id: int, code: int = 200, **kw):
    return render_template("_claude_rescore.html", rescore=rescore_view(listing_id, **kw)), code


@bp.post("/listing/<int:listing_id>/rescore")
def rescore(listing_id: int):
    """Start Claude's re-score of a listing in the background; the fragment polls until it is done."""
    if not _listing_exists(listing_id):
        abort(404)
    env = _env()
    if claude.resolve_key(env.env_file) is None:
        return _rescore_fragment(listing_id, 409, error=claude.NO_KEY_MESSAGE)
    if ledger.over_budget(_db(), env.settings.monthly_budget_usd) and request.form.get("confirm") != "1":
        return _rescore_fragment(listing_id, 409, confirm=True)
    with _JOBS_LOCK:
        job = _JOBS.get(listing_id)
        if job is not None and job.status == "running":
            return _rescore_fragment(listing_id)
        job = _JOBS[listing_id] = RescoreJob(started_at=time.time())
    _spawn(_rescore_worker, env, listing_id, job)
    if request.headers.get("HX-Request") != "true":
        # A plain form post (no JavaScript): back to the listing, where the result will show.
        return redirect(url_for("views.detail", listing_id=listing_id), code=303)
    return _rescore_fragment(listing_id, 202)


@bp.get("/listing/<int:listing_id>/rescore")
def rescore_status(listing_id: int):
    """The re-score fragment: polling while Claude works, then the assessment or the error."""
    if not _listing_exists(listing_id):
        abort(404)
    return _rescore_fragment(listing_id)


def _spend_context() -> dict:
    env = _env()
    db = _db()
    return {
        "spend": ledger.summary(db, env.settings.monthly_budget_usd),
        "claude": status(),
        "settings": env.settings,
        "escalations": {"counts": escalation.counts(db), "state": escalation.STATE.snapshot()},
        "calibration_state": calibration.STATE.snapshot(),
        "notice": "",
        "error": "",
        "confirm": False,
        "form": {},
    }


@bp.get("/spend")
def spend():
    """What Claude cost today and this month, per model, and what hybrid mode saved."""
    ctx = _spend_context()
    if request.headers.get("HX-Request") == "true":
        return render_template("_claude_spend.html", **ctx)
    return render_template("spend.html", **ctx)


def _escalations_fragment(notice: str = "", code: int = 200):
    db = _db()
    return render_template(
        "_claude_escalations.html", claude=status(), notice=notice,
        escalations={"counts": escalation.counts(db), "state": escalation.STATE.snapshot()},
    ), code


@bp.post("/escalations/run")
def run_escalations():
    """Send the queued escalations to Claude in the background."""
    env = _env()
    if claude.resolve_key(env.env_file) is None:
        return _escalations_fragment(claude.NO_KEY_MESSAGE, 409)
    if ledger.over_budget(_db(), env.settings.monthly_budget_usd):
        return _escalations_fragment(escalation.BUDGET_MESSAGE, 409)
    if escalation.STATE.snapshot()["running"]:
        return _escalations_fragment("Escalations are already running.")
    with escalation.STATE.lock:
        escalation.STATE.running = True  # shown at once; the worker resets it when done
        escalation.STATE.paused = ""
    _spawn(_escalation_worker, env)
    return _escalations_fragment("Escalations started.", 202)


@bp.get("/escalations/status")
def escalations_status():
    """The escalation queue fragment; it polls itself while a run is going."""
    return _escalations_fragment()


def _calibrate_fragment(error: str = "", code: int = 200, confirm: bool = False, form: dict | None = None):
    return render_template("_claude_calibrate.html", claude=status(), calibration_state=calibration.STATE.snapshot(),
                           error=error, confirm=confirm, form=form or {}), code


@bp.post("/calibrate")
def calibrate():
    """Start a calibration from an uploaded (or pasted) CV in the background."""
    env = _env()
    form = {k: request.form.get(k, "") for k in ("cv_name", "sample", "batch", "cv_text")}
    if claude.resolve_key(env.env_file) is None:
        return _calibrate_fragment(claude.NO_KEY_MESSAGE, 409, form=form)
    cv_text = form["cv_text"]
    upload = request.files.get("cv")
    if upload is not None and upload.filename:
        data = upload.read(MAX_CV_BYTES + 1)
        if len(data) > MAX_CV_BYTES:
            return _calibrate_fragment(f"The CV file is larger than {MAX_CV_BYTES // 1000} kB.", 400, form=form)
        try:
            cv_text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _calibrate_fragment("The CV file is not UTF-8 text (use Markdown or plain text).", 400, form=form)
    if not cv_text.strip():
        return _calibrate_fragment("Choose a CV file (Markdown or text) or paste the CV.", 400, form=form)
    from_file = Path(upload.filename).stem if upload is not None and upload.filename else ""
    cv_name = (form["cv_name"] or from_file).strip()
    try:
        profile_mod.Profile(cv_name=cv_name)
    except ValueError:
        return _calibrate_fragment("Name the profile with letters, digits, '.', '_' or '-' (it names a file).", 400,
                                   form=form)
    try:
        sample_n = int(form["sample"] or calibration.DEFAULT_SAMPLE)
        if not 1 <= sample_n <= 500:
            raise ValueError
    except ValueError:
        return _calibrate_fragment("The sample size must be a whole number from 1 to 500.", 400, form=form)
    ignore_budget = request.form.get("confirm") == "1"
    if ledger.over_budget(_db(), env.settings.monthly_budget_usd) and not ignore_budget:
        return _calibrate_fragment("", 409, confirm=True, form=form)
    if calibration.STATE.snapshot()["running"]:
        return _calibrate_fragment("A calibration is already running.", 409, form=form)
    calibration.STATE.update(running=True, phase="starting", error="", message="", done=0, total=0, result={})
    _spawn(_calibration_worker, env, cv_text, cv_name, sample_n, form["batch"] == "1", ignore_budget)
    return _calibrate_fragment(code=202)


@bp.get("/calibrate/status")
def calibrate_status():
    """The calibration fragment; it polls itself while a calibration runs."""
    return _calibrate_fragment()
