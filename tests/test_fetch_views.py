"""Fetch now, the progress fragment, the Sources page and the `fetch` CLI command."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import datetime, timezone

import httpx
import pytest
import stamina
from flask import template_rendered

import config as config_mod
import fetch_cli
import fetch_views
import fetcher
import scheduler
import security
from conftest import FIXTURES
from scraper.http import make_client

REMOTEOK = (FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes()
GITLAB = (FIXTURES / "greenhouse" / "greenhouse_gitlab_content_trimmed3.json").read_bytes()
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def quiet_state(monkeypatch):
    monkeypatch.setattr(scheduler, "STATE", scheduler.FetchState())
    with stamina.set_testing(True, attempts=1):
        yield
    assert scheduler.wait_idle(10), "a fetch thread outlived its test"


@pytest.fixture
def jobsift_config():
    return replace(config_mod.Config(), sources=("remoteok", "remotive"), greenhouse_boards=("gitlab",))


class Internet:
    """Recorded payloads per URL fragment; Remote OK can be held back to watch progress."""

    def __init__(self):
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.routes = {
            "remoteok.com/api": lambda r: httpx.Response(200, content=REMOTEOK),
            "remotive.com/api": lambda r: httpx.Response(500, text="Remotive is down"),
            "boards/gitlab/jobs": lambda r: httpx.Response(200, content=GITLAB),
        }

    def __call__(self, request):
        url = str(request.url)
        if "remoteok" in url:
            self.entered.set()
            assert self.hold.wait(10), "the test never let Remote OK answer"
        for fragment, answer in self.routes.items():
            if fragment in url:
                return answer(request)
        return httpx.Response(404)


@pytest.fixture
def internet(app):
    net = Internet()
    app.config["HTTP_CLIENT_FACTORY"] = lambda: make_client(transport=httpx.MockTransport(net))
    # Registered here too, so these tests hold whether or not the app factory does it yet.
    security.init_app(app)
    if "fetch" not in app.blueprints:
        fetch_views.init_app(app)
    if "fetch" not in app.cli.commands:
        fetch_cli.init_app(app)
    return net


def token(client) -> str:
    page = client.get("/sources").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def wait_done(client) -> str:
    assert scheduler.wait_idle(10)
    return client.get("/fetch/status", headers=HTMX).get_data(as_text=True)


def test_fetch_now_needs_the_csrf_token(client, internet):
    response = client.post("/fetch", headers=HTMX)
    assert response.status_code == 403
    assert not scheduler.is_running()
    assert scheduler.STATE.snapshot()["started_at"] == ""


def test_fetch_now_starts_a_run_and_the_status_polls_until_done(client, internet, db):
    internet.hold.clear()
    csrf = token(client)
    try:
        response = client.post("/fetch", headers={**HTMX, "X-CSRF-Token": csrf})
        assert response.status_code == 202
        html = response.get_data(as_text=True)
        assert "Fetch started." in html
        assert 'hx-trigger="every 1s"' in html and 'hx-get="/fetch/status"' in html

        again = client.post("/fetch", headers={**HTMX, "X-CSRF-Token": csrf})
        assert again.status_code == 200
        assert "already running" in again.get_data(as_text=True)

        assert internet.entered.wait(10)
        running = client.get("/fetch/status", headers=HTMX).get_data(as_text=True)
        assert "Fetching remoteok (1/3)" in running
        assert 'hx-trigger="every 1s"' in running
    finally:
        internet.hold.set()

    done = wait_done(client)
    assert "hx-trigger" not in done
    assert "Last fetch finished" in done
    assert "1 failed" in done
    assert re.search(r"remoteok</span>: ok \(\d+ fetched, \d+ new", done)
    assert "HTTP 500" in done
    assert db.conn.execute("SELECT count(*) FROM listings WHERE source = 'greenhouse'").fetchone()[0] == 3


def test_fetch_now_without_htmx_redirects_to_the_sources_page(client, internet):
    response = client.post("/fetch", data={"csrf_token": token(client)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/sources")
    wait_done(client)


def test_fetch_now_for_one_source(client, internet, db):
    response = client.post("/fetch", data={"csrf_token": token(client), "source": "greenhouse:gitlab"}, headers=HTMX)
    assert response.status_code == 202
    wait_done(client)
    assert [o["name"] for o in scheduler.STATE.snapshot()["outcomes"]] == ["greenhouse:gitlab"]


def test_fetch_now_with_an_unknown_source_says_so(client, internet):
    response = client.post("/fetch", data={"csrf_token": token(client), "source": "<monster>"}, headers=HTMX)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Unknown source" in html and "&lt;monster&gt;" in html
    assert not scheduler.is_running()


def test_status_before_any_fetch(client, internet):
    html = client.get("/fetch/status").get_data(as_text=True)
    assert "No fetch since the app started." in html
    assert "hx-trigger" not in html


def test_sources_page_lists_each_source_with_its_errors_and_counts(app, client, internet, db):
    rendered = []

    def record(sender, template, context, **extra):
        rendered.append(template.name)

    with app.config["HTTP_CLIENT_FACTORY"]() as http:
        fetcher.run_fetch(db, app.config["JOBSIFT"], http, now=datetime.now(timezone.utc))
    n_remoteok = db.conn.execute("SELECT count(*) FROM listings WHERE source='remoteok'").fetchone()[0]

    with template_rendered.connected_to(record, app):
        response = client.get("/sources")
    assert response.status_code == 200
    assert rendered == ["sources.html"]
    html = response.get_data(as_text=True)
    assert 'class="site-header"' in html  # the page extends base.html

    rows = dict(re.findall(r'<tr class="source-row[^"]*" id="source-([\w-]+)">(.*?)</tr>', html, re.S))
    assert list(rows) == ["remoteok", "remotive", "greenhouse-gitlab"]
    assert "HTTP 500" in rows["remotive"] and "run-error" in rows["remotive"]
    assert "never" in rows["remotive"]  # no success yet
    assert f"{n_remoteok} new, 0 updated of {n_remoteok}" in rows["remoteok"]
    assert "none" in rows["remoteok"]  # no error
    assert 'href="https://remoteok.com"' in rows["remoteok"]
    assert "3 new" in rows["greenhouse-gitlab"] and "all Greenhouse boards" in rows["greenhouse-gitlab"]
    assert "Fetch now" in html
    assert html.count('id="fetch-status"') == 1


def test_sources_page_with_no_sources(app, client, internet):
    app.config["JOBSIFT"] = replace(config_mod.Config(), sources=())
    html = client.get("/sources").get_data(as_text=True)
    assert "No sources are configured" in html


def test_cli_fetch_prints_one_line_per_source_and_fails_when_one_failed(app, runner, internet, db):
    result = runner.invoke(args=["fetch"])
    assert result.exit_code == 1
    assert re.search(r"^remoteok: ok \(\d+ fetched, \d+ new, 0 updated", result.output, re.M)
    assert "remotive: error: " in result.output and "HTTP 500" in result.output
    assert "greenhouse:gitlab: ok (3 fetched, 3 new" in result.output
    assert "1 of 3 sources failed" in result.output

    # Within Remote OK's hour: skipped unless forced.
    result = runner.invoke(args=["fetch", "--source", "remoteok"])
    assert result.exit_code == 0 and "remoteok: skipped: last tried" in result.output
    result = runner.invoke(args=["fetch", "--source", "remoteok", "--force"])
    assert result.exit_code == 0 and re.search(r"remoteok: ok \(\d+ fetched, 0 new, 0 updated, \d+ unchanged", result.output)


def test_cli_fetch_rejects_an_unknown_source(runner, internet):
    result = runner.invoke(args=["fetch", "--source", "monster"])
    assert result.exit_code == 2
    assert "unknown source 'monster'" in result.output
