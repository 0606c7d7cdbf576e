"""Shared fixtures: an app over a fresh SQLite file, its client and CLI runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = Path(__file__).resolve().parent / "fixtures"
pytest_plugins = ["engine"]

import config as config_mod  # noqa: E402
import db as storage  # noqa: E402


@pytest.fixture
def jobsift_config():
    """The default settings: a person in Berlin."""
    return config_mod.Config()


@pytest.fixture
def app(tmp_path, jobsift_config):
    """An app over a temporary database, no scheduler, no instance files."""
    from app import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(tmp_path / "jobs.db"),
            "CONFIG_PATH": str(tmp_path / "config.toml"),
            "JOBSIFT": jobsift_config,
            "SECRET_KEY": "test",
        }
    )
    # Never the real instance/ folder: profiles and backups written by tests stay in tmp.
    app.instance_path = str(tmp_path / "instance")
    app.jinja_env.undefined = __import__("jinja2").StrictUndefined
    yield app
    # A background scoring pass this test started must not outlive it (it holds the
    # queue's run lock and this test's temporary database).
    from scoring import service

    service.wait_idle(180)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A connection to the app's database, closed after the test."""
    conn = storage.connect(app.config["DATABASE"])
    yield conn
    conn.conn.close()
