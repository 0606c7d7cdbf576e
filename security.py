"""Browser-facing protections for an app that runs on localhost without logins.

Nobody logs in, so cookies alone cannot tell the person's own page from another site
the person has open: every state-changing request must carry the session's CSRF token
and come from this origin. A Host allowlist stops DNS-rebinding pages from reading the
dashboard, and strict headers keep scraped content from running anything.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, request, session
from markupsafe import escape

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Werkzeug 3.1 cannot match an IPv6 literal such as [::1] in this list (it cuts each
# entry at its first ':'), and the app binds 127.0.0.1, so only these two can arrive.
TRUSTED_HOSTS = ["localhost", "127.0.0.1"]

CSRF_SESSION_KEY = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
_EXTENSION_KEY = "jobsift.security"


def init_app(app: Flask) -> None:
    """Install the Host allowlist, CSRF check, security headers and the csrf_token() template global."""
    if _EXTENSION_KEY in app.extensions:
        return
    app.extensions[_EXTENSION_KEY] = True
    if app.config.get("TRUSTED_HOSTS") is None:
        app.config["TRUSTED_HOSTS"] = list(TRUSTED_HOSTS)
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.before_request(refuse_forged_request)
    app.after_request(add_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def refusal_reason() -> str | None:
    """Why the current unsafe request must be refused, or None when it may proceed."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in _ALLOWED_FETCH_SITES:
        return "it was sent by another site"
    origin = request.headers.get("Origin")
    if origin is not None and not _is_own_origin(origin):
        return "it was sent from another origin"
    expected = session.get(CSRF_SESSION_KEY)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    if not expected or not sent:
        return "its security token is missing"
    if not hmac.compare_digest(str(expected).encode(), str(sent).encode()):
        return "its security token does not match this session"
    return None


def refuse_forged_request() -> Response | None:
    """before_request hook: answer 403 to an unsafe request that is not from the person's own page."""
    if request.method not in UNSAFE_METHODS:
        return None
    reason = refusal_reason()
    if reason is None:
        return None
    message = f"Refused: {reason}. Reload the jobsift page and try again."
    body = f'<p class="error" role="alert">{escape(message)}</p>'
    return Response(body, status=403, mimetype="text/html")


def add_security_headers(response: Response) -> Response:
    """after_request hook: the CSP and friends on every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def _is_own_origin(origin: str) -> bool:
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    return (
        parts.scheme.lower() == request.scheme.lower()
        and parts.netloc.lower() == request.host.lower()
    )
