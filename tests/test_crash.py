"""SIGKILL during a fetch: the database stays whole, each source's batch is all-or-nothing, verdicts survive."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import backup
import db as storage
from crash_fetch import GENERATION_RE, SOURCES, expected_counts

HELPER = Path(__file__).resolve().parent / "crash_fetch.py"
TOTAL = 2000
KILLS = 20
SEED = 20260701


def run_helper(db_path: Path, generation: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(db_path), str(TOTAL), str(generation)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def generations(conn: sqlite3.Connection) -> dict[str, set[int]]:
    """listings.source -> the generation markers its stored listings carry."""
    found: dict[str, set[int]] = {}
    for source, html in conn.execute("SELECT source, description_html FROM listings"):
        marks = GENERATION_RE.findall(html)
        found.setdefault(source, set()).update(int(m) for m in marks or ["-1"])
    return found


def ok_runs(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT source, count(*) FROM fetch_runs WHERE status = 'ok' GROUP BY source"))


def verdict_rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM verdicts ORDER BY listing_id").fetchall()


def test_sigkill_at_random_points_never_leaves_a_partial_batch(tmp_path):
    db_path = tmp_path / "jobs.db"
    counts = expected_counts(TOTAL)

    started = time.monotonic()
    baseline = run_helper(db_path, 0)
    out, err = baseline.communicate(timeout=120)
    full_run_s = time.monotonic() - started
    assert baseline.returncode == 0, err

    # The person's verdicts, set before any crash, on listings of every source.
    db = storage.connect(db_path)
    picks = [row[0] for row in db.conn.execute(
        "SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY source ORDER BY id) AS n FROM listings)"
        " WHERE n % 97 = 1")]
    statuses = ("starred", "hidden", "applied")
    for i, lid in enumerate(picks):
        storage.set_verdict(db, lid, status=statuses[i % 3], note=f"note {i}",
                            **({"override_score": 10 + i, "override_reason": "mine"} if i % 2 else {}))
    before = verdict_rows(db.conn)
    db.conn.close()
    assert len(before) == len(picks) >= 20

    # How many times each source's batch has committed so far: the baseline's.
    committed = {SOURCES[name][1]: 1 for name in SOURCES}
    current = {SOURCES[name][1]: 0 for name in SOURCES}
    rng = random.Random(SEED)
    killed_mid_run = 0
    partial_runs = 0  # killed after some sources committed and before the others
    for generation in range(1, KILLS + 1):
        delay = rng.uniform(0.0, full_run_s)
        proc = run_helper(db_path, generation)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        proc.communicate(timeout=60)

        conn = sqlite3.connect(str(db_path))
        try:
            report = backup.check(db_path)
            assert report.ok, f"after kill {generation} at {delay:.2f} s: {report.problems}"
            found = generations(conn)
            moved = 0
            for name, (_fragment, source) in SOURCES.items():
                marks = found.get(source, set())
                assert len(marks) == 1, f"after kill {generation}: {source} holds a mix of batches {marks}"
                n = conn.execute("SELECT count(*) FROM listings WHERE source = ?", (source,)).fetchone()[0]
                assert n == counts[name]
                (mark,) = marks
                if mark != current[source]:
                    assert mark == generation
                    current[source] = mark
                    committed[source] += 1
                    moved += 1
            # A batch's listings changed exactly when its 'ok' fetch_runs row committed with them.
            runs = ok_runs(conn)
            assert {src: runs.get(name, 0) for name, (_f, src) in SOURCES.items()} == committed
            for name, n_fetched in conn.execute("SELECT source, n_fetched FROM fetch_runs WHERE status = 'ok'"):
                assert n_fetched == counts[name]
            assert verdict_rows(conn) == before, f"verdicts changed after kill {generation}"
            if 0 < moved < len(SOURCES):
                partial_runs += 1
        finally:
            conn.close()

    final = run_helper(db_path, KILLS + 1)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err + out
    conn = sqlite3.connect(str(db_path))
    try:
        assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == TOTAL
        assert conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM listings GROUP BY source, source_id HAVING count(*) > 1)"
        ).fetchone()[0] == 0
        assert all(marks == {KILLS + 1} for marks in generations(conn).values())
        assert verdict_rows(conn) == before
        # Runs cut off by a kill were closed as interrupted by the next run of their source.
        assert conn.execute("SELECT count(*) FROM fetch_runs WHERE status = 'running'").fetchone()[0] == 0
        interrupted = conn.execute(
            "SELECT count(*) FROM fetch_runs WHERE status = 'error' AND error LIKE 'interrupted%'").fetchone()[0]
    finally:
        conn.close()
    assert backup.check(db_path).ok
    print(f"\n{killed_mid_run}/{KILLS} kills landed mid-run ({partial_runs} between two sources' commits); "
          f"{interrupted} interrupted runs recorded; a full run took {full_run_s:.1f} s")
    # The seeded delays spread over a full run: most kills must hit a running fetch.
    assert killed_mid_run >= KILLS // 2
    assert interrupted >= 1
