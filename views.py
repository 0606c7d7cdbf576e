"""The dashboard: the filtered listing list, the detail panel, and the person's actions.

Every view renders the same templates two ways: the full page for a normal request,
only the partial for an htmx request (htmx 4 sends `HX-Request: true`). Actions are
POSTs that answer with the updated row and detail, or a redirect without htmx.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, abort, redirect, render_template, request
from werkzeug.datastructures import MultiDict

import db as storage
import sanitize
import search
import security

bp = Blueprint("views", __name__)

LABEL_HELP = {
    "loc:home": "On-site or hybrid in your city",
    "loc:remote": "Remote work open to you",
    "loc:remote-restricted": "Remote, but limited to places that exclude you",
    "loc:country-other": "On-site or hybrid in another city of your country",
    "loc:overseas-onsite": "On-site or hybrid outside your country",
    "loc:unknown": "The location says nothing usable",
    "focus:priority": "The kind of role you want most",
    "focus:tech": "A technical role",
    "focus:non-tech": "Not a technical role",
}
STATUS_NAMES = {"active": "active (not hidden)", "starred": "starred", "hidden": "hidden",
                "applied": "applied", "all": "all"}
_SCORE_RE = re.compile(r"\d{1,3}")


@bp.record_once
def _install(state) -> None:
    # The templates need the CSRF token and the sanitizer; installing them with the
    # blueprint means the dashboard is never served without its protections.
    security.init_app(state.app)
    sanitize.init_app(state.app)
    # Created here until a migration adds them; a no-op once they exist.
    db = storage.connect(state.app.config["DATABASE"], migrate_now=False)
    try:
        search.ensure_indexes(db)
    finally:
        db.conn.close()
    state.app.jinja_env.filters["label_text"] = label_text
    state.app.jinja_env.globals.update(
        label_help=LABEL_HELP, status_names=STATUS_NAMES, source_info=source_info,
    )


def label_text(label: str | None) -> str:
    """A flag label as shown on the page: 'loc:remote' -> 'remote'."""
    if not label:
        return "unflagged"
    return label.split(":", 1)[-1]


def registered_sources() -> dict:
    """The job boards the scraper package knows, or {} while it is unavailable."""
    try:
        from scraper import SOURCES
    except Exception:  # noqa: BLE001 - the dashboard must work without any scraper
        return {}
    return SOURCES if isinstance(SOURCES, dict) else {}


def source_info(name: str) -> dict:
    """Display name and the credit a board asks for: {'label', 'attribution', 'attribution_url'}."""
    source = registered_sources().get(name)
    return {
        "label": getattr(source, "label", None) or name,
        "attribution": getattr(source, "attribution", None),
        "attribution_url": sanitize.safe_url(getattr(source, "attribution_url", None)),
    }


def is_htmx() -> bool:
    """True for an htmx request that wants a partial (not a history restore, which wants the page)."""
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


def _db():
    from app import get_db

    return get_db()


def _filters(args, db) -> tuple[search.Filters, list[str]]:
    registered = registered_sources()
    return search.parse_filters(args, lambda name: name in registered or search.source_exists(db, name))


def _page_context(db, filters: search.Filters, notices: list[str]) -> dict:
    result = search.search(db, filters)
    return {
        "result": result,
        "filters": result.filters,
        "notices": notices + result.notices,
        "sources": search.source_options(result.counts["source"], registered_sources(), result.filters.source),
        "detail": None,
        "errors": {},
        "form": {},
    }


@bp.get("/")
def index():
    """The listing list: the full page, or only the list and filters for htmx."""
    db = _db()
    filters, notices = _filters(request.args, db)
    context = _page_context(db, filters, notices)
    return render_template("_listings.html" if is_htmx() else "index.html", **context)


@bp.get("/listing/<int:listing_id>")
def detail(listing_id: int):
    """One listing's detail: the panel for htmx, else the page with the panel open."""
    db = _db()
    filters, notices = _filters(request.args, db)
    found = search.listing_detail(db, listing_id)
    if is_htmx():
        if found is None:
            return _missing_fragment(listing_id)
        return render_template("_detail.html", detail=found, filters=filters, errors={}, form={}, oob=False)
    context = _page_context(db, filters, notices)
    if found is None:
        context["notices"].append(f"There is no listing #{listing_id}.")
        return render_template("index.html", **context), 404
    context["detail"] = found
    return render_template("index.html", **context)


@bp.post("/listing/<int:listing_id>/status")
def set_status(listing_id: int):
    """Star, hide, mark applied, or reset the listing's job to new."""
    db = _db()
    if not search.listing_exists(db, listing_id):
        return _missing(listing_id)
    status = (request.form.get("status") or "").strip()
    if status not in storage.STATUSES:
        return _respond(db, listing_id, {"status": f"Unknown status {status[:20]!r}."}, 422)
    search.set_group_verdict(db, listing_id, status=status)
    return _respond(db, listing_id)


@bp.post("/listing/<int:listing_id>/note")
def set_note(listing_id: int):
    """Save the person's note on the listing's job (empty clears it)."""
    db = _db()
    if not search.listing_exists(db, listing_id):
        return _missing(listing_id)
    note = (request.form.get("note") or "").strip()
    if len(note) > search.MAX_NOTE_CHARS:
        return _respond(db, listing_id, {"note": f"Keep the note under {search.MAX_NOTE_CHARS} characters "
                                                 f"(it has {len(note)})."}, 422)
    search.set_group_verdict(db, listing_id, note=note or None)
    return _respond(db, listing_id)


@bp.post("/listing/<int:listing_id>/score")
def set_score(listing_id: int):
    """Override the score with the person's own 0-100 and a one-line reason (empty score clears it)."""
    db = _db()
    if not search.listing_exists(db, listing_id):
        return _missing(listing_id)
    raw = (request.form.get("override_score") or "").strip()
    reason = search.one_line(request.form.get("override_reason"))
    if not raw:
        search.set_group_verdict(db, listing_id, override_score=None, override_reason=None)
        _learn("score", listing_id, None, None)
        return _respond(db, listing_id)
    errors = {}
    if not _SCORE_RE.fullmatch(raw) or int(raw) > 100:
        errors["override_score"] = "Enter a whole number from 0 to 100."
    if not reason:
        errors["override_reason"] = "Say in one line why."
    elif len(reason) > search.MAX_REASON_CHARS:
        errors["override_reason"] = f"Keep the reason under {search.MAX_REASON_CHARS} characters."
    if errors:
        return _respond(db, listing_id, errors, 422)
    search.set_group_verdict(db, listing_id, override_score=int(raw), override_reason=reason)
    _learn("score", listing_id, int(raw), reason)
    return _respond(db, listing_id)


@bp.post("/listing/<int:listing_id>/flag")
def set_flag(listing_id: int):
    """Override the listing's location or focus flag (an empty label goes back to the computed one)."""
    db = _db()
    if not search.listing_exists(db, listing_id):
        return _missing(listing_id)
    kind = (request.form.get("kind") or "").strip()
    label = (request.form.get("label") or "").strip()
    reason = search.one_line(request.form.get("reason"))
    if kind not in search.FLAG_LABELS:
        return _respond(db, listing_id, {"flag": f"Unknown flag kind {kind[:20]!r}."}, 422)
    if label and label not in search.FLAG_LABELS[kind]:
        return _respond(db, listing_id, {f"flag_{kind}": f"{label[:30]!r} is not a {kind} label."}, 422)
    if len(reason) > search.MAX_REASON_CHARS:
        return _respond(db, listing_id, {f"flag_{kind}": f"Keep the reason under {search.MAX_REASON_CHARS} "
                                                         "characters."}, 422)
    if label:
        search.set_flag_override(db, listing_id, kind, label, reason)
    else:
        search.clear_flag_override(db, listing_id, kind)
    _learn("flag", listing_id)
    return _respond(db, listing_id)


def _learn(kind: str, listing_id: int, *args) -> None:
    """Let the scorer learn from an override already saved; a failure here is logged, the override stays."""
    try:
        import learning_views

        learning_views.after_override(kind, listing_id, *args)
    except Exception:  # noqa: BLE001 - the person's override is saved whatever learning does
        logging.getLogger(__name__).exception("learning from the %s override of listing %s failed", kind, listing_id)


def _next_url() -> str:
    """Where a non-htmx action returns to: the posted page path, if it is one of ours."""
    target = request.form.get("next") or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _respond(db, listing_id: int, errors: dict | None = None, code: int = 200):
    """The answer to an action: row + detail for htmx, a redirect (or the page with errors) otherwise."""
    errors = errors or {}
    next_url = _next_url()
    filters, _ = _filters(MultiDict(parse_qsl(urlsplit(next_url).query)), db)
    found = search.listing_detail(db, listing_id)
    form = request.form.to_dict() if errors else {}
    if not is_htmx():
        if not errors:
            return redirect(next_url, 303)
        context = _page_context(db, filters, [])
        context.update(detail=found, errors=errors, form=form)
        return render_template("index.html", **context), code
    row = search.load_row(db, listing_id)
    common = {"filters": filters, "errors": errors, "form": form}
    # The form that was used is the main swap target; the other view of the same
    # listing follows out of band and is dropped by htmx when it is not on screen.
    if request.form.get("from") == "detail":
        html = render_template("_detail.html", detail=found, oob=False, **common)
        html += render_template("_row.html", row=row, oob=True, **common)
    else:
        html = render_template("_row.html", row=row, oob=False, **common)
        html += render_template("_detail.html", detail=found, oob=True, **common)
    return html, code


def _missing_fragment(listing_id: int):
    return render_template("_message.html", message=f"There is no listing #{listing_id}."), 404


def _missing(listing_id: int):
    if is_htmx():
        return _missing_fragment(listing_id)
    abort(404, description=f"There is no listing #{listing_id}.")
