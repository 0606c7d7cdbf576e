"""Fetching in the background: a periodic job and "Fetch now", never two runs at once.

One APScheduler BackgroundScheduler per process runs the periodic fetch; `run_now`
starts a one-off run in a thread. Both take the same process-wide lock, so a manual
fetch and a scheduled one never overlap, and both report into `STATE`, which the
status fragment reads. Each run opens its own database connection and HTTP client.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import db as storage
import fetcher

log = logging.getLogger(__name__)

JOB_ID = "fetch"
MISFIRE_GRACE_S = 3600
# The first scheduled run comes shortly after start, so data is fresh on launch;
# each source's min_interval_s still keeps the boards from being asked too often.
FIRST_RUN_DELAY_S = 30

_RUN_LOCK = threading.Lock()  # held for the whole of a fetch run, by whichever thread runs it
_START_LOCK = threading.Lock()
_scheduler = None
_atexit_registered = False
_worker: threading.Thread | None = None


@dataclass
class FetchState:
    """Progress of the current (or last) fetch run, shared between the fetch thread and requests."""

    running: bool = False
    trigger: str = ""  # manual | schedule
    current: str = ""
    i: int = 0
    n: int = 0
    outcomes: list[dict] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, trigger: str) -> None:
        """Reset for a new run."""
        with self.lock:
            self.running, self.trigger = True, trigger
            self.current, self.i, self.n = "", 0, 0
            self.outcomes = []
            self.started_at, self.finished_at, self.error = storage.now_iso(), "", ""

    def progress(self, name: str, i: int, n: int, status: str) -> None:
        """Record where the run is; the fetcher calls this before and after each source."""
        with self.lock:
            self.current, self.i, self.n = name, i, n
            for entry in self.outcomes:
                if entry["name"] == name:
                    entry["status"] = status
                    break
            else:
                self.outcomes.append(_entry(name, status))

    def record(self, outcome: fetcher.SourceOutcome) -> None:
        """Replace a source's 'running' entry with how it ended."""
        entry = _entry(
            outcome.name,
            outcome.status,
            outcome.message,
            n_fetched=outcome.n_fetched,
            n_new=outcome.n_new,
            n_updated=outcome.n_updated,
            n_skipped=outcome.n_skipped,
        )
        with self.lock:
            for k, existing in enumerate(self.outcomes):
                if existing["name"] == outcome.name:
                    self.outcomes[k] = entry
                    break
            else:
                self.outcomes.append(entry)

    def finish(self, error: str = "") -> None:
        """Mark the run as over."""
        with self.lock:
            self.running, self.current = False, ""
            self.finished_at, self.error = storage.now_iso(), error

    def snapshot(self) -> dict:
        """A copy safe to render while the run goes on."""
        with self.lock:
            data = {k: v for k, v in self.__dict__.items() if k != "lock"}
            data["outcomes"] = [dict(o) for o in self.outcomes]
            return data


STATE = FetchState()


def _entry(name: str, status: str, message: str = "", **counts: int) -> dict:
    entry = {"name": name, "status": status, "message": message, "n_fetched": 0, "n_new": 0, "n_updated": 0, "n_skipped": 0}
    entry.update(counts)
    return entry


def init_app(app) -> bool:
    """Start the background scheduler when the app asks for it (START_SCHEDULER or JOBSIFT_SCHEDULER=1)."""
    if app.config.get("START_SCHEDULER") or os.environ.get("JOBSIFT_SCHEDULER") == "1":
        return start(app)
    return False


def start(app) -> bool:
    """Start this process's scheduler with the periodic fetch job; False if one already runs."""
    global _scheduler, _atexit_registered
    if _in_reloader_parent():
        # The reloader's parent only watches files; its child serves and schedules.
        return False
    with _START_LOCK:
        if _scheduler is not None:
            return False
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler

        sched = BackgroundScheduler(timezone="UTC")
        sched.add_listener(_on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        minutes = max(1, int(app.config["JOBSIFT"].fetch_interval_minutes))
        sched.add_job(
            scheduled_fetch,
            "interval",
            minutes=minutes,
            args=[app],
            id=JOB_ID,
            name="fetch all sources",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            next_run_time=datetime.now(timezone.utc) + timedelta(seconds=FIRST_RUN_DELAY_S),
        )
        import backup

        backup.schedule_backup(sched, app)
        sched.start()
        _scheduler = sched
        if not _atexit_registered:
            atexit.register(stop)
            _atexit_registered = True
        log.info("scheduler started: fetch every %d min", minutes)
        return True


def stop() -> None:
    """Shut the scheduler down without waiting for a running fetch (it is rolled back if cut off)."""
    global _scheduler
    with _START_LOCK:
        sched, _scheduler = _scheduler, None
    if sched is not None and sched.running:
        sched.shutdown(wait=False)


def get_scheduler():
    """This process's running scheduler, or None."""
    return _scheduler


def run_now(app, source=None, *, force: bool = False) -> bool:
    """Start a fetch in a background thread; False when a fetch is already running."""
    global _worker
    if not _RUN_LOCK.acquire(blocking=False):
        return False
    try:
        STATE.begin("manual")
        sources = None if source is None else [source]
        worker = threading.Thread(
            target=_run_locked, args=(app, sources, force), name="jobsift-fetch", daemon=True
        )
        worker.start()
    except BaseException:
        STATE.finish("could not start the fetch thread")
        _RUN_LOCK.release()
        raise
    _worker = worker
    return True


def scheduled_fetch(app) -> None:
    """The periodic job: fetch every source unless a fetch is already running."""
    if not _RUN_LOCK.acquire(blocking=False):
        log.info("scheduled fetch skipped: a fetch is already running")
        return
    STATE.begin("schedule")
    _run_locked(app, None, False)


def is_running() -> bool:
    """True while a fetch run holds the lock."""
    return _RUN_LOCK.locked()


def wait_idle(timeout: float | None = None) -> bool:
    """Wait for the last `run_now` thread to end; True when no fetch is running afterwards."""
    worker = _worker
    if worker is not None:
        worker.join(timeout)
    return not is_running()


def _run_locked(app, sources, force: bool) -> None:
    # Runs with _RUN_LOCK held by the caller; releases it whatever happens.
    error = ""
    try:
        db = storage.connect(app.config["DATABASE"], migrate_now=False)
        try:
            client = _client_factory(app)()
            try:
                outcomes = fetcher.run_fetch(
                    db, app.config["JOBSIFT"], client, sources=sources, progress=STATE.progress, force=force
                )
            finally:
                client.close()
        finally:
            db.conn.close()
        for outcome in outcomes:
            STATE.record(outcome)
        if app.config.get("SCORE_AFTER_FETCH", True):
            # New listings get their rules score at once and the model's in the background.
            from scoring import service

            service.start_background(app)
    except Exception as exc:
        log.exception("fetch run failed")
        error = f"{type(exc).__name__}: {exc}"
    finally:
        STATE.finish(error)
        _RUN_LOCK.release()


def _client_factory(app):
    factory = app.config.get("HTTP_CLIENT_FACTORY")
    if factory is None:
        from scraper.http import make_client

        factory = make_client
    return factory


def _on_job_event(event) -> None:
    if getattr(event, "exception", None) is not None:
        log.error("scheduled job %s failed: %r", event.job_id, event.exception, exc_info=event.exception)
    else:
        log.warning("scheduled job %s missed its run time %s", event.job_id, event.scheduled_run_time)


def _in_reloader_parent() -> bool:
    """True in the process that only watches files for `flask run --reload` / `--debug`."""
    from werkzeug.serving import is_running_from_reloader

    if is_running_from_reloader():
        return False
    argv = sys.argv[1:]
    if "run" not in argv or "--no-reload" in argv:
        return False
    if "--reload" in argv:
        return True
    from flask.helpers import get_debug_flag

    return get_debug_flag()
