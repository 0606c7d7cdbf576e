"""jobsift: the Flask app factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, g

import config as config_mod
import db as storage

ROOT = Path(__file__).resolve().parent
EXAMPLE_DB = ROOT / "jobs.db.example"


def create_app(test_config: dict | None = None) -> Flask:
    """Create the app; tests pass `test_config` (DATABASE, JOBSIFT_CONFIG, ...) instead of instance files."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("JOBSIFT_SECRET_KEY") or os.urandom(32),
        DATABASE=str(Path(app.instance_path) / "jobs.db"),
        CONFIG_PATH=str(Path(app.instance_path) / "config.toml"),
        START_SCHEDULER=False,
    )
    if test_config is None:
        config_mod.ensure_instance(app.instance_path, EXAMPLE_DB)
    else:
        app.config.update(test_config)

    if "JOBSIFT" not in app.config:
        app.config["JOBSIFT"] = config_mod.load(app.config["CONFIG_PATH"])

    if not app.testing:
        # Build the place-name index off the request path: the first ingest or
        # classification would otherwise pay for it.
        import threading

        from scoring import geo

        threading.Thread(target=geo.gazetteer, name="gazetteer-warmup", daemon=True).start()

    # Apply migrations once at start so requests never race to create tables.
    storage.connect(app.config["DATABASE"]).conn.close()

    app.teardown_appcontext(close_db)

    import security

    security.init_app(app)

    import views

    app.register_blueprint(views.bp)

    import fetch_views

    fetch_views.init_app(app)

    import scoring_views

    scoring_views.init_app(app)

    import learning_views

    learning_views.init_app(app)

    import claude_views

    claude_views.init_app(app)

    import cli

    cli.init_app(app)

    import scheduler

    # Starts only when asked (make run sets JOBSIFT_SCHEDULER=1), once per process.
    scheduler.init_app(app)
    return app


def get_db() -> storage.Database:
    """The request's (or CLI command's) own database connection."""
    if "db" not in g:
        from flask import current_app

        g.db = storage.connect(current_app.config["DATABASE"], migrate_now=False)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    """Close this context's connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def jobsift_config():
    """The person's settings for the running app."""
    from flask import current_app

    return current_app.config["JOBSIFT"]
