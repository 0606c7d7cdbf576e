"""Fetch pages: start a fetch, watch its progress, and see how each source has been doing."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

import fetcher
import scheduler

bp = Blueprint("fetch", __name__)


def init_app(app) -> None:
    """Register the fetch routes and the `fetch_status()` template helper."""
    app.register_blueprint(bp)


@bp.app_context_processor
def _fetch_context() -> dict:
    # A callable, so pages that never show the status never pay for a snapshot.
    return {"fetch_status": scheduler.STATE.snapshot}


@bp.post("/fetch")
def start():
    """Start a fetch of every source (or of the posted `source`) in the background."""
    app = current_app._get_current_object()
    name = (request.form.get("source") or "").strip()
    if name and name not in _planned_names(app):
        notice = f"Unknown source {name!r}: pick one listed on the Sources page."
        return _status(notice, code=400)
    started = scheduler.run_now(app, name or None)
    notice = "Fetch started." if started else "A fetch is already running; its progress is below."
    if not _is_htmx():
        return redirect(url_for("fetch.sources"), code=303)
    return _status(notice, code=202 if started else 200)


@bp.get("/fetch/status")
def status():
    """The progress fragment; it polls itself while a fetch runs."""
    return _status("")


@bp.get("/sources")
def sources():
    """Every source with its last run, last success, last error and listing counts."""
    from app import get_db

    app = current_app._get_current_object()
    rows = source_rows(get_db(), app.config["JOBSIFT"])
    return render_template("sources.html", sources=rows, status=scheduler.STATE.snapshot(), notice="")


def source_rows(db, config) -> list[dict]:
    """One row per configured source (then any other source with recorded runs) for the Sources page."""
    planned = fetcher.plan_sources(config)
    last_run = _latest(db, "1 = 1")
    last_ok = _latest(db, "status = 'ok'")
    last_error = _latest(db, "status = 'error'")
    state = {
        r[0]: {"last_attempt_at": r[1], "last_success_at": r[2]}
        for r in db.conn.execute("SELECT source, last_attempt_at, last_success_at FROM source_state")
    }
    stored = {
        r[0]: {"total": r[1], "stale": r[2] or 0}
        for r in db.conn.execute("SELECT source, count(*), sum(stale) FROM listings GROUP BY source")
    }
    names = [p.name for p in planned]
    names += sorted(set(last_run) - set(names))
    by_name = {p.name: p for p in planned}
    rows = []
    for name in names:
        kind = name.split(":", 1)[0]
        item = by_name.get(name)
        cls = _source_class(kind)
        listing_counts = stored.get(kind, {"total": 0, "stale": 0})
        rows.append(
            {
                "name": name,
                "label": (cls.label if cls and cls.label else kind),
                "configured": item is not None,
                "problem": item.problem if item is not None else "",
                "shared_with_boards": kind in fetcher.BOARD_KINDS,
                "min_interval": fetcher.human_span(cls.min_interval_s) if cls else "",
                "attribution": cls.attribution if cls else None,
                "attribution_url": cls.attribution_url if cls else None,
                "last_run": last_run.get(name),
                "last_ok": last_ok.get(name),
                "last_error": last_error.get(name),
                "last_success_at": state.get(name, {}).get("last_success_at"),
                "total": listing_counts["total"],
                "stale": listing_counts["stale"],
            }
        )
    return rows


def _latest(db, condition: str) -> dict[str, dict]:
    cols = ("id", "source", "started_at", "finished_at", "status", "error", "n_fetched", "n_new", "n_updated", "n_skipped")
    sql = (
        f"SELECT {', '.join(cols)} FROM fetch_runs WHERE id IN"
        f" (SELECT max(id) FROM fetch_runs WHERE {condition} GROUP BY source)"
    )
    return {row[1]: dict(zip(cols, row)) for row in db.conn.execute(sql)}


def _source_class(kind: str):
    import scraper

    return scraper.SOURCES.get(kind)


def _planned_names(app) -> set[str]:
    names = set()
    for item in fetcher.plan_sources(app.config["JOBSIFT"]):
        names.add(item.name)
        names.add(item.name.split(":", 1)[0])
    return names


def _status(notice: str, code: int = 200):
    html = render_template("_fetch_status.html", status=scheduler.STATE.snapshot(), notice=notice)
    return html, code


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"
