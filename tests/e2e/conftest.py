"""A live jobsift on a loopback port, filled from recorded payloads, and Playwright on Debian's Chromium.

Every page a test opens is watched: a JavaScript dialog, a Content Security Policy
violation, a page error, or a request to anywhere but the live server fails the test.
Without /usr/bin/chromium (or the browser JOBSIFT_CHROMIUM names) the tests are
skipped and the run says so in plain words.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("JOBSIFT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MISSING = f"browser tests skipped: {CHROMIUM} is not installed (apt-get install chromium)"
CLAUDE_KEY = "sk-ant-e2e-3b9d01"
# Seconds the recorded Remotive answer is held back, so "Fetch now" shows its progress.
FETCH_DELAY_S = 1.5

# Recorded payloads stored before the browser opens: (source, fixture, options).
STORED = [
    ("greenhouse", "greenhouse/greenhouse_gitlab_content_trimmed3.json", {"board": "gitlab"}),
    ("greenhouse", "greenhouse/greenhouse_helsing_trimmed.json", {"board": "helsing"}),
    ("lever", "lever/lever_hinge_trimmed.json", {"board": "hinge"}),
    ("himalayas", "himalayas/himalayas_jobs_limit5.json", {}),
    ("arbeitnow", "arbeitnow/arbeitnow_job-board-api_trimmed3.json", {}),
    ("ashby", "ashby/ashby_notion_trimmed3.json", {"board": "notion"}),
    ("wwr", "wwr/wwr_remote-jobs_2026-07.rss.xml", {}),
]
# What "Fetch now" downloads: URL fragment -> recorded payload.
FETCHED = {
    "remotive.com/api": "remotive/remotive_all_2026-07.json",
    "boards/gitlab/jobs": "greenhouse/greenhouse_gitlab_content_trimmed3.json",
}

XSS_TITLE = 'Senior Python Engineer <script>alert("title")</script><img src=x onerror=alert("img")>'
XSS_DESCRIPTION = (
    "<p>We build Python backends.</p>"
    '<script>alert("script")</script>'
    '<img src="x" onerror="alert(\'onerror\')">'
    '<a href="javascript:alert(\'href\')">Apply here</a>'
    '<svg onload="alert(\'svg\')"><circle r="5"></circle></svg>'
    '<div hx-get="/listing/1/status" hx-trigger="load" hx-target="body">hx-get</div>'
    '<button hx-post="/fetch" hx-trigger="load">hx-post</button>'
    '<p hx-on:click="alert(\'hx-on\')">click me</p>'
    '<a href="https://example.org/jobs/1" onclick="alert(\'onclick\')">a real link</a>'
    "&lt;script&gt;alert('escaped')&lt;/script&gt;"
    '<iframe src="javascript:alert(\'iframe\')"></iframe><style>body{display:none}</style>'
)


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if MISSING in str(r.longrepr)]
    if skipped:
        terminalreporter.section("browser tests", sep="=", yellow=True, bold=True)
        terminalreporter.write_line(f"{len(skipped)} {MISSING}", yellow=True, bold=True)


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(MISSING)


def _parse(source: str, fixture: str, options: dict):
    import scraper

    data = (FIXTURES / fixture).read_bytes()
    return scraper.get_source(source, **options).parse(data).listings


def _xss_listing():
    from scraper.base import Listing

    return Listing(
        source="hn", source_id="xss-1", title=XSS_TITLE, company='Evil <b onmouseover="alert(1)">Corp</b>',
        location='Berlin <img src=x onerror=alert("loc")>', url="javascript:alert('url')",
        description_html=XSS_DESCRIPTION, salary="<script>alert('salary')</script>",
        tags=["<svg onload=alert('tag')>"], raw={"id": "xss-1"},
    )


class Internet:
    """Recorded board answers for "Fetch now"; counts what was asked."""

    def __init__(self) -> None:
        self.served = {fragment: (FIXTURES / path).read_bytes() for fragment, path in FETCHED.items()}
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        for fragment, body in self.served.items():
            if fragment in url:
                if "remotive" in url:
                    time.sleep(FETCH_DELAY_S)
                return httpx.Response(200, content=body)
        return httpx.Response(404, text="not recorded")


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """The running app: {'url', 'app', 'db_path', 'ids', 'fake', 'internet'}."""
    import config as config_mod
    import db as storage
    import ingest
    from app import create_app
    from fake_anthropic import FakeAnthropic
    from scoring import service
    from scraper.http import make_client

    work = tmp_path_factory.mktemp("e2e")
    db_path = str(work / "jobs.db")
    fake = FakeAnthropic(min_cache_tokens={}).start()
    env_file = work / "claude.env"
    env_file.write_text(f"ANTHROPIC_API_KEY={CLAUDE_KEY}\nANTHROPIC_BASE_URL={fake.base_url}\n")
    internet = Internet()
    jobsift = replace(config_mod.Config(), sources=("remotive",), greenhouse_boards=("gitlab",),
                      scoring={"claude_max_retries": 0, "claude_timeout_s": 10})
    app = create_app({
        "DATABASE": db_path,
        "CONFIG_PATH": str(work / "config.toml"),
        "JOBSIFT": jobsift,
        "SECRET_KEY": "e2e",
        "CLAUDE_ENV_FILE": str(env_file),
        "HTTP_CLIENT_FACTORY": lambda: make_client(transport=httpx.MockTransport(internet)),
    })
    app.instance_path = str(work / "instance")
    (work / "instance" / "scoring_profiles").mkdir(parents=True)

    db = storage.connect(db_path)
    listings = [item for args in STORED for item in _parse(*args)] + [_xss_listing()]
    ingest.ingest(db, listings, jobsift)
    service.score_unscored(db, service.active_profile(app.instance_path, jobsift.scoring))
    ids = {(s, sid): lid for lid, s, sid in db.conn.execute("SELECT id, source, source_id FROM listings")}
    db.conn.close()

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "app": app, "db_path": db_path, "ids": ids,
           "fake": fake, "internet": internet}
    import claude_views
    import scheduler

    # Background work started by the pages (fetch, scoring after it, Claude) ends before the server does.
    assert scheduler.wait_idle(30) and service.wait_idle(30) and claude_views.wait_idle(30)
    server.shutdown()
    server.server_close()
    fake.stop()


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Runs in every page before its own scripts: CSP violations become console errors the test sees.
_WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + (e.sourceFile || "") + ":" + (e.lineNumber || 0));
});
"""


class Watch:
    """What a page did that it must never do."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []

    def on_request(self, request) -> None:
        self.requests.append(request.url)
        if not (request.url.startswith(self.origin + "/") or request.url == self.origin):
            self.foreign.append(request.url)

    def on_console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.csp.append(text)

    def on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def problems(self) -> list[str]:
        return ([f"dialog fired: {d}" for d in self.dialogs] + [f"CSP: {c}" for c in self.csp]
                + [f"page error: {e}" for e in self.errors] + [f"request left 127.0.0.1: {u}" for u in self.foreign])


@pytest.fixture
def watch(live):
    return Watch(live["url"])


def watched_page(browser, live, watch):
    """A new page in its own browser context, every listener of `watch` attached."""
    context = browser.new_context(base_url=live["url"], service_workers="block", viewport={"width": 1280, "height": 900})
    context.add_init_script(_WATCH_CSP)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.on("request", watch.on_request)
    pg.on("console", watch.on_console)
    pg.on("dialog", watch.on_dialog)
    pg.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    return context, pg


@pytest.fixture
def page(browser, live, watch, request):
    context, pg = watched_page(browser, live, watch)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    finally:
        context.close()
    assert watch.problems() == []


@pytest.fixture
def db(live):
    """A connection to the live app's database."""
    import db as storage

    conn = storage.connect(live["db_path"], migrate_now=False)
    yield conn
    conn.conn.close()
