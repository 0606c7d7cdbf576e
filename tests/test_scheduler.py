"""The background scheduler and run_now: one scheduler per process, never two fetches at once."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

import httpx
import pytest

import config as config_mod
import scheduler
from conftest import FIXTURES
from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import make_client

REMOTEOK = (FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes()


@pytest.fixture(autouse=True)
def clean_scheduler(monkeypatch):
    """Fresh progress state, no scheduler left running, no fetch thread left behind."""
    monkeypatch.delenv("JOBSIFT_SCHEDULER", raising=False)
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    monkeypatch.setattr(scheduler, "STATE", scheduler.FetchState())
    scheduler.stop()
    yield
    scheduler.stop()
    assert scheduler.wait_idle(10), "a fetch thread outlived its test"


@pytest.fixture
def jobsift_config():
    return replace(config_mod.Config(), sources=("remoteok",), fetch_interval_minutes=45)


@pytest.fixture
def served(app):
    """Serve Remote OK's recorded feed to every fetch the app starts."""
    board = {"requests": 0}

    def handler(request):
        board["requests"] += 1
        return httpx.Response(200, content=REMOTEOK)

    app.config["HTTP_CLIENT_FACTORY"] = lambda: make_client(transport=httpx.MockTransport(handler))
    return board


class Gate(Source):
    """A source whose fetch blocks until the test releases it."""

    name = "gate"
    min_interval_s = 0

    def __init__(self, **options):
        super().__init__(**options)
        self.entered = threading.Event()
        self.release = threading.Event()

    def parse(self, payload):
        return ParseResult([Listing("gate", "g1", "Platform Engineer", "Gate GmbH", "Berlin, Germany")])

    def fetch(self, client, validators=None):
        self.entered.set()
        assert self.release.wait(10), "the test never released the fetch"
        return FetchResult(self.parse(b""))


def test_no_scheduler_unless_asked(app):
    assert scheduler.init_app(app) is False
    assert scheduler.get_scheduler() is None


def test_env_variable_starts_the_scheduler(app, monkeypatch):
    monkeypatch.setenv("JOBSIFT_SCHEDULER", "1")
    assert scheduler.init_app(app) is True
    assert scheduler.get_scheduler().running


def test_a_second_app_in_the_same_process_does_not_start_a_second_scheduler(tmp_path, jobsift_config):
    from app import create_app

    apps = [
        create_app(
            {
                "TESTING": True,
                "DATABASE": str(tmp_path / f"jobs{i}.db"),
                "JOBSIFT": jobsift_config,
                "SECRET_KEY": "test",
                "START_SCHEDULER": True,
            }
        )
        for i in range(2)
    ]
    scheduler.init_app(apps[0])  # a no-op when create_app already started it
    first = scheduler.get_scheduler()
    assert first is not None and first.running
    assert scheduler.init_app(apps[1]) is False
    assert scheduler.start(apps[1]) is False
    assert scheduler.get_scheduler() is first
    assert sorted(job.id for job in first.get_jobs()) == ["backup", "fetch"]
    schedulers = [t for t in threading.enumerate() if t.name == "APScheduler" and t.is_alive()]
    assert len(schedulers) == 1


def test_the_fetch_job_never_overlaps_or_piles_up(app):
    scheduler.start(app)
    job = scheduler.get_scheduler().get_job("fetch")
    assert job.max_instances == 1
    assert job.coalesce is True
    assert job.misfire_grace_time == 3600
    assert job.trigger.interval.total_seconds() == 45 * 60
    assert job.args == (app,)
    # The first run comes soon after start; the sources' own intervals keep it polite.
    assert (job.next_run_time - datetime.now(timezone.utc)).total_seconds() <= scheduler.FIRST_RUN_DELAY_S


def test_not_started_in_the_reloaders_watching_process(app, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["flask", "--app", "app", "run", "--reload"])
    assert scheduler.start(app) is False
    assert scheduler.get_scheduler() is None
    # The reloader's child serves the app: it schedules.
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    assert scheduler.start(app) is True


def test_job_errors_are_logged(app, caplog):
    scheduler.start(app)

    def broken():
        raise RuntimeError("the job blew up")

    with caplog.at_level(logging.ERROR, logger="scheduler"):
        scheduler.get_scheduler().add_job(broken, id="broken", next_run_time=datetime.now(timezone.utc))
        deadline = time.monotonic() + 10
        while "the job blew up" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "scheduled job broken failed" in caplog.text


def test_run_now_refuses_while_a_run_is_in_progress(app, served, db):
    gate = Gate()
    assert scheduler.run_now(app, gate) is True
    try:
        assert gate.entered.wait(10)
        assert scheduler.is_running()
        assert scheduler.run_now(app) is False
        # A scheduled run that comes due meanwhile steps aside too.
        scheduler.scheduled_fetch(app)
        state = scheduler.STATE.snapshot()
        assert state["running"] and state["current"] == "gate" and (state["i"], state["n"]) == (1, 1)
        assert state["trigger"] == "manual"
        assert served["requests"] == 0
    finally:
        gate.release.set()
    assert scheduler.wait_idle(10)

    state = scheduler.STATE.snapshot()
    assert not state["running"] and state["finished_at"]
    assert [(o["name"], o["status"], o["n_new"]) for o in state["outcomes"]] == [("gate", "ok", 1)]
    assert db.conn.execute("SELECT title FROM listings WHERE source = 'gate'").fetchall() == [("Platform Engineer",)]
    # Free again: the next request starts a run.
    assert scheduler.run_now(app) is True
    assert scheduler.wait_idle(10)
    assert served["requests"] == 1


def test_scheduled_fetch_runs_the_configured_sources_on_its_own_connection(app, served, db):
    scheduler.scheduled_fetch(app)

    state = scheduler.STATE.snapshot()
    assert state["trigger"] == "schedule" and not state["running"] and state["error"] == ""
    [outcome] = state["outcomes"]
    assert outcome["name"] == "remoteok" and outcome["status"] == "ok" and outcome["n_new"] > 90
    assert db.conn.execute("SELECT status FROM fetch_runs").fetchall() == [("ok",)]
    assert not scheduler.is_running()


def test_a_run_that_cannot_start_reports_the_error_and_frees_the_lock(app):
    def no_network():
        raise OSError("no route to host")

    app.config["HTTP_CLIENT_FACTORY"] = no_network
    assert scheduler.run_now(app) is True
    assert scheduler.wait_idle(10)
    state = scheduler.STATE.snapshot()
    assert not state["running"] and "no route to host" in state["error"]
    assert scheduler.run_now(app) is True
    assert scheduler.wait_idle(10)
