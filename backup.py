"""Backups of the database and a health check of it.

A backup is an online copy (SQLite's backup API) of the live database, taken while
the app keeps reading and writing: it is written under a temporary name, verified
with integrity_check, switched to a self-contained rollback-journal file, and only
then renamed to `jobs-<UTC time>.db`, so a file with that name is always a complete
backup. The oldest backups beyond `keep` are removed only after a new one succeeded.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_KEEP = 7
JOB_ID = "backup"
MISFIRE_GRACE_S = 3600
# The daily job runs a while after start (not during the first fetch) and skips
# when a recent backup exists, so restarting the app does not pile up copies.
FIRST_RUN_DELAY_S = 600
MIN_AGE_FOR_SCHEDULED = timedelta(hours=20)

NAME_RE = re.compile(r"^jobs-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$")
_PARTIAL_SUFFIX = ".partial"
# FTS5 keeps its index in these tables beside the virtual table; they are counted with it.
_FTS_SHADOW_RE = re.compile(r"_(data|idx|content|docsize|config)$")
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class BackupError(RuntimeError):
    """A backup that could not be made; the message says why and what was kept."""


@dataclass
class BackupResult:
    """A finished backup: where it is, how big, and which old backups were removed."""

    path: Path
    size_bytes: int
    removed: list[Path] = field(default_factory=list)
    kept: int = 0


@dataclass
class CheckReport:
    """What `check` found: SQLite's own verdict, rows per table, and any problems."""

    path: Path
    integrity: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


# ---------------------------------------------------------------- backups


def backup_dir(app) -> Path:
    """Where the app's backups go: BACKUP_DIR when set, else instance/backups."""
    configured = app.config.get("BACKUP_DIR")
    return Path(configured) if configured else Path(app.instance_path) / "backups"


def keep_setting(config) -> int:
    """How many backups to keep, from [backup] keep in the person's config (default 7)."""
    raw = getattr(config, "raw", None) or {}
    section = raw.get("backup") if isinstance(raw, dict) else None
    value = section.get("keep", DEFAULT_KEEP) if isinstance(section, dict) else DEFAULT_KEEP
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        log.warning("[backup] keep must be a whole number of at least 1, got %r; keeping %d", value, DEFAULT_KEEP)
        return DEFAULT_KEEP
    return value


def list_backups(directory: str | Path) -> list[Path]:
    """The backups in `directory`, oldest first (only files this module named)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_file() and NAME_RE.match(p.name)]
    return sorted(found, key=_backup_order)


def backup_time(path: Path) -> datetime:
    """When a backup was taken, read from its name."""
    stamp = NAME_RE.match(path.name).group(1)
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def latest_backup(directory: str | Path) -> Path | None:
    """The newest backup in `directory`, or None."""
    backups = list_backups(directory)
    return backups[-1] if backups else None


def make_backup(db_path: str | Path, directory: str | Path, keep: int = DEFAULT_KEEP,
                now: datetime | None = None) -> BackupResult:
    """Copy the live database into `directory` as jobs-<UTC time>.db and keep the newest `keep` backups."""
    db_path, directory = Path(db_path), Path(directory)
    if keep < 1:
        raise BackupError(f"keep must be at least 1, got {keep}")
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}: nothing to back up")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot use {directory} for backups: {exc.strerror or exc}") from exc
    if not directory.is_dir():
        raise BackupError(f"cannot use {directory} for backups: it is not a folder")

    final = _free_name(directory, _utc(now))
    partial = final.with_name(final.name + _PARTIAL_SUFFIX)
    try:
        _copy(db_path, partial)
        _fsync(partial)
        os.replace(partial, final)
        _fsync(directory)
    except BaseException as exc:
        _remove_partial(partial)
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise BackupError(_failure_message(exc, directory)) from exc
        raise
    removed = prune(directory, keep)
    return BackupResult(final, final.stat().st_size, removed, len(list_backups(directory)))


def prune(directory: str | Path, keep: int) -> list[Path]:
    """Delete the oldest backups beyond `keep`; returns what was removed."""
    backups = list_backups(directory)
    doomed = backups[: max(0, len(backups) - keep)]
    removed = []
    for path in doomed:
        try:
            path.unlink()
            removed.append(path)
        except OSError as exc:  # an old file we cannot delete is not worth failing a good backup for
            log.warning("could not remove old backup %s: %s", path, exc)
    return removed


def _copy(db_path: Path, target: Path) -> None:
    source = sqlite3.connect(str(db_path), timeout=30)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        dest = sqlite3.connect(str(target))
        try:
            # One step (pages=-1) copies a single consistent snapshot; stepping in
            # chunks would restart whenever the app commits in between.
            source.backup(dest, pages=-1)
            problems = [r[0] for r in dest.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"the copy failed its integrity check: {'; '.join(problems[:5])}")
            # A backup is one self-contained file, not a WAL database that needs its -wal/-shm.
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
    finally:
        source.close()


def _free_name(directory: Path, moment: datetime) -> Path:
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    candidate = directory / f"jobs-{stamp}.db"
    n = 1
    while candidate.exists():
        candidate = directory / f"jobs-{stamp}-{n}.db"
        n += 1
    return candidate


def _backup_order(path: Path) -> tuple[str, int]:
    m = NAME_RE.match(path.name)
    return (m.group(1), int(m.group(2) or 0)) if m else ("", 0)


def _remove_partial(partial: Path) -> None:
    for leftover in (partial, Path(str(partial) + "-journal"), Path(str(partial) + "-wal"),
                     Path(str(partial) + "-shm")):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _failure_message(exc: BaseException, directory: Path) -> str:
    kept = len(list_backups(directory))
    tail = f"the database was not changed and the {kept} existing backup{'s' if kept != 1 else ''} were kept"
    name = getattr(exc, "sqlite_errorname", "") or ""
    full = (
        (isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS)
        or name in ("SQLITE_FULL", "SQLITE_IOERR_WRITE")
        or "disk is full" in str(exc)
    )
    if full:
        return f"backup failed: could not write to {directory} (disk full?): {exc}; {tail}"
    return f"backup failed: {exc}; {tail}"


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


# ---------------------------------------------------------------- check


def check(db_path: str | Path) -> CheckReport:
    """Run integrity_check, foreign_key_check and the search index's own check; count rows per table."""
    db_path = Path(db_path)
    report = CheckReport(db_path)
    if not db_path.is_file():
        report.problems.append(f"no database at {db_path}")
        return report
    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        report.integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if report.integrity != ["ok"]:
            report.problems += [f"integrity: {line}" for line in report.integrity[:20]]
        for table, rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check").fetchall()[:20]:
            report.problems.append(f"{table} row {rowid} points at a missing {parent} row")
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )]
        virtual = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        )}
        for table in tables:
            if any(table.startswith(v + "_") and _FTS_SHADOW_RE.search(table) for v in virtual):
                continue
            report.counts[table] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        if "listings_fts" in virtual:
            _check_search_index(conn, report)
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"cannot read {db_path}: {exc}")
    finally:
        conn.close()
    return report


def _check_search_index(conn: sqlite3.Connection, report: CheckReport) -> None:
    if report.counts.get("listings_fts") != report.counts.get("listings"):
        report.problems.append(
            f"the search index has {report.counts.get('listings_fts')} rows for "
            f"{report.counts.get('listings')} listings"
        )
    # FTS5 runs its check as an INSERT command; nothing is written, and the rollback makes sure.
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO listings_fts(listings_fts) VALUES ('integrity-check')")
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"search index: {exc}")
    finally:
        conn.execute("ROLLBACK")


# ---------------------------------------------------------------- the daily job


def schedule_backup(scheduler, app) -> None:
    """Add the daily backup job (id "backup") to the app's APScheduler."""
    scheduler.add_job(
        scheduled_backup,
        "interval",
        days=1,
        args=[app],
        id=JOB_ID,
        name="daily database backup",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_S,
        next_run_time=datetime.now(timezone.utc) + timedelta(seconds=FIRST_RUN_DELAY_S),
    )


def scheduled_backup(app, now: datetime | None = None) -> BackupResult | None:
    """The daily job: back up unless a backup from the last 20 hours exists; failures are logged."""
    directory = backup_dir(app)
    moment = _utc(now)
    newest = latest_backup(directory)
    if newest is not None:
        taken = backup_time(newest)
        if timedelta(0) <= moment - taken < MIN_AGE_FOR_SCHEDULED:
            log.info("scheduled backup skipped: %s is recent", newest.name)
            return None
    try:
        result = make_backup(app.config["DATABASE"], directory, keep_setting(app.config["JOBSIFT"]), now=moment)
    except BackupError as exc:
        log.error("%s", exc)
        return None
    log.info("backup written: %s (%d bytes), %d old removed", result.path, result.size_bytes, len(result.removed))
    return result
