"""Backups: an online copy that is complete and self-contained, retention, the CLI, the daily job, and `check`."""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

import backup
import backup_cli
import config as config_mod
import db as storage
from fake_anthropic import recorded_listings, store_recorded_listings
from scraper.base import Listing

T0 = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def filled(app, db):
    """The app's database with the recorded listings, flags and a few verdicts."""
    ids = store_recorded_listings(db)
    storage.set_verdict(db, ids["AI Engineer"], status="starred", note="ask about the team")
    storage.set_verdict(db, ids["Research Engineer"], status="hidden", override_score=12, override_reason="on-site")
    return ids


@pytest.fixture
def cli(app):
    if "backup" not in app.cli.commands:
        backup_cli.init_app(app)
    return app.test_cli_runner()


def rows(path, sql):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_backup_is_a_complete_self_contained_copy(app, filled, tmp_path):
    result = backup.make_backup(app.config["DATABASE"], tmp_path / "backups", now=T0)

    assert result.path == tmp_path / "backups" / "jobs-20260701T030000Z.db"
    assert result.size_bytes == result.path.stat().st_size > 0
    # One file: no -wal or -shm beside it, and not in WAL mode when opened elsewhere.
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [result.path.name]
    assert rows(result.path, "PRAGMA journal_mode") == [("delete",)]
    live = app.config["DATABASE"]
    for sql in ("SELECT id, source, source_id, title, raw FROM listings ORDER BY id",
                "SELECT * FROM verdicts ORDER BY listing_id",
                "SELECT * FROM flags ORDER BY listing_id, kind"):
        assert rows(result.path, sql) == rows(live, sql)
    assert len(rows(result.path, "SELECT id FROM listings")) == len(recorded_listings())
    assert backup.check(result.path).ok


def test_keeps_the_newest_backups_and_never_touches_other_files(app, filled, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "jobs-manual-copy.db").write_bytes(b"also mine")
    made = [backup.make_backup(app.config["DATABASE"], folder, keep=3, now=T0 + timedelta(days=d)) for d in range(5)]

    assert backup.list_backups(folder) == [m.path for m in made[2:]]
    assert made[3].removed == [made[0].path] and made[4].removed == [made[1].path]
    assert made[4].kept == 3
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "jobs-manual-copy.db").read_bytes() == b"also mine"


def test_two_backups_in_the_same_second_both_survive(app, filled, tmp_path):
    first = backup.make_backup(app.config["DATABASE"], tmp_path, now=T0)
    second = backup.make_backup(app.config["DATABASE"], tmp_path, now=T0)
    assert first.path != second.path
    assert backup.list_backups(tmp_path) == [first.path, second.path]
    assert backup.latest_backup(tmp_path) == second.path


def test_backup_while_a_fetch_writes_gives_a_consistent_snapshot(app, db, tmp_path):
    """Each batch of listings commits with its fetch_runs row; every backup holds whole batches only."""
    base = recorded_listings()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer():
        conn = storage.connect(app.config["DATABASE"], migrate_now=False)
        try:
            k = 0
            while not stop.is_set() and k < 400:
                batch = [replace(item, source_id=f"{item.source_id}-{k}") for item in base]
                with storage.write(conn):
                    storage.upsert_listings(conn, batch)
                    conn.conn.execute(
                        "INSERT INTO fetch_runs (source, started_at, status, n_fetched, n_new, n_updated, n_skipped)"
                        " VALUES ('load', ?, 'ok', ?, ?, 0, 0)", (storage.now_iso(), len(batch), len(batch)))
                k += 1
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            conn.conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    made = []
    try:
        for i in range(6):
            made.append(backup.make_backup(app.config["DATABASE"], tmp_path / "b", keep=10,
                                           now=T0 + timedelta(minutes=i)))
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    sizes = []
    for m in made:
        n_listings = rows(m.path, "SELECT count(*) FROM listings")[0][0]
        n_recorded = rows(m.path, "SELECT coalesce(sum(n_new), 0) FROM fetch_runs WHERE status = 'ok'")[0][0]
        assert n_listings == n_recorded
        assert rows(m.path, "SELECT count(*) FROM listings_fts")[0][0] == n_listings
        assert backup.check(m.path).ok, backup.check(m.path).problems
        sizes.append(n_listings)
    # The writer really was writing while the copies were taken.
    assert sizes[-1] > sizes[0] or rows(app.config["DATABASE"], "SELECT count(*) FROM listings")[0][0] > sizes[0]


def test_backup_command_writes_into_instance_backups_and_uses_the_configured_keep(app, filled, cli, tmp_path):
    app.instance_path = str(tmp_path / "instance")
    app.config["JOBSIFT"] = config_mod.from_dict({"backup": {"keep": 2}})
    outputs = [cli.invoke(args=["backup"]) for _ in range(3)]

    for out in outputs:
        assert out.exit_code == 0, out.output
        assert "backup written: " in out.output
    folder = tmp_path / "instance" / "backups"
    assert len(backup.list_backups(folder)) == 2
    assert "removed old backup: jobs-" in outputs[2].output
    assert f"2 backups kept in {folder} (keep = 2)" in outputs[2].output


def test_backup_command_options_override_the_config(app, filled, cli, tmp_path):
    out = cli.invoke(args=["backup", "--dir", str(tmp_path / "elsewhere"), "--keep", "1"])
    assert out.exit_code == 0, out.output
    assert len(backup.list_backups(tmp_path / "elsewhere")) == 1
    assert cli.invoke(args=["backup", "--keep", "0"]).exit_code != 0


@pytest.mark.parametrize("value", [0, -3, "seven", True, 2.5])
def test_a_bad_keep_setting_falls_back_to_seven_and_says_so(value, caplog):
    with caplog.at_level(logging.WARNING):
        assert backup.keep_setting(config_mod.from_dict({"backup": {"keep": value}})) == 7
    assert "[backup] keep must be a whole number" in caplog.text


def test_keep_setting_defaults():
    assert backup.keep_setting(config_mod.Config()) == 7
    assert backup.keep_setting(config_mod.from_dict({"backup": {"keep": 30}})) == 30


def test_backing_up_a_missing_database_says_so(tmp_path):
    with pytest.raises(backup.BackupError, match="no database at"):
        backup.make_backup(tmp_path / "nope.db", tmp_path / "b")
    assert not (tmp_path / "b").exists() or backup.list_backups(tmp_path / "b") == []


# ---------------------------------------------------------------- check


def test_check_reports_counts_per_table_and_passes_on_a_healthy_database(app, filled, cli):
    out = cli.invoke(args=["check"])
    assert out.exit_code == 0, out.output
    assert "integrity_check: ok" in out.output
    assert "no problems found" in out.output
    report = backup.check(app.config["DATABASE"])
    assert report.counts["listings"] == report.counts["listings_fts"] == len(filled)
    assert report.counts["verdicts"] == 2
    # FTS5's own storage tables are counted with the index, not listed.
    assert not any(name.startswith("listings_fts_") for name in report.counts)
    assert f"  listings " in out.output


def test_check_fails_on_a_damaged_file(app, filled, cli, tmp_path):
    copy = backup.make_backup(app.config["DATABASE"], tmp_path / "b", now=T0).path
    data = bytearray(copy.read_bytes())
    page = 4096
    # Overwrite the middle pages (the b-trees of the larger tables) with noise.
    for offset in range(2 * page, min(len(data), 8 * page)):
        data[offset] = (offset * 37) % 251
    copy.write_bytes(bytes(data))

    out = cli.invoke(args=["check", str(copy)])
    assert out.exit_code != 0
    assert "problem: " in out.output and "integrity_check: ok" not in out.output


def test_check_fails_when_the_search_index_is_out_of_step(app, filled, cli):
    conn = sqlite3.connect(app.config["DATABASE"])
    conn.execute("DELETE FROM listings_fts WHERE rowid = ?", (filled["AI Engineer"],))
    conn.commit()
    conn.close()

    out = cli.invoke(args=["check"])
    assert out.exit_code != 0
    assert f"the search index has {len(filled) - 1} rows for {len(filled)} listings" in out.output


def test_check_of_a_file_that_is_not_a_database(cli, tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not sqlite" * 300)
    out = cli.invoke(args=["check", str(bogus)])
    assert out.exit_code != 0
    assert "cannot read" in out.output and "not a database" in out.output
    out = cli.invoke(args=["check", str(tmp_path / "missing.db")])
    assert out.exit_code != 0 and "no database at" in out.output


def test_check_finds_rows_pointing_at_missing_listings(app, filled):
    conn = sqlite3.connect(app.config["DATABASE"])
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("INSERT INTO verdicts (listing_id, status) VALUES (999999, 'starred')")
    conn.commit()
    conn.close()
    report = backup.check(app.config["DATABASE"])
    assert report.problems == ["verdicts row 999999 points at a missing listings row"]
    assert not report.ok


# ---------------------------------------------------------------- the daily job


def test_schedule_backup_adds_one_daily_job_that_never_overlaps(app):
    sched = BackgroundScheduler(timezone="UTC")
    sched.start(paused=True)
    try:
        backup.schedule_backup(sched, app)
        backup.schedule_backup(sched, app)  # replaces, never duplicates
        jobs = sched.get_jobs()
    finally:
        sched.shutdown(wait=False)
    assert [j.id for j in jobs] == ["backup"]
    job = jobs[0]
    assert job.trigger.interval == timedelta(days=1)
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time == 3600
    assert job.func is backup.scheduled_backup and job.args == (app,)


def test_scheduled_backup_skips_when_a_recent_backup_exists(app, filled, tmp_path):
    app.config["BACKUP_DIR"] = str(tmp_path / "b")
    first = backup.scheduled_backup(app, now=T0)
    assert first is not None and first.path.exists()
    assert backup.scheduled_backup(app, now=T0 + timedelta(hours=5)) is None
    later = backup.scheduled_backup(app, now=T0 + timedelta(hours=21))
    assert later is not None
    assert len(backup.list_backups(tmp_path / "b")) == 2


def test_scheduled_backup_failure_is_logged_not_raised(app, filled, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app.config["BACKUP_DIR"] = str(blocker / "backups")
    with caplog.at_level(logging.ERROR, logger="backup"):
        assert backup.scheduled_backup(app, now=T0) is None
    assert "cannot use" in caplog.text and "for backups" in caplog.text


def test_listing_with_unusual_text_survives_the_round_trip(app, db, tmp_path):
    odd = Listing(source="hn", source_id="odd", title="Ingénieur·e 🚀 \u202e backend", company="Ü\x00ber",
                  description_html="<p>NUL\x00 and \ud7ff</p>", raw={"k": "\u2028"})
    storage.upsert_listings(db, [odd])
    result = backup.make_backup(app.config["DATABASE"], tmp_path, now=T0)
    assert rows(result.path, "SELECT title, company, description_html, raw FROM listings") == rows(
        app.config["DATABASE"], "SELECT title, company, description_html, raw FROM listings")
