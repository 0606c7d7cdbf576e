"""Verdicts posted from several browser-like clients while a large fetch writes: none lost, none refused."""

from __future__ import annotations

import logging
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

import db as storage
import fetcher
import search
from crash_fetch import expected_counts, fetch_config, mock_client, payloads

HELPER = Path(__file__).resolve().parent / "crash_fetch.py"
STATUSES = ("new", "starred", "hidden", "applied")


@pytest.fixture
def live_app(tmp_path):
    """The app over a temporary database, served by a threaded werkzeug server on a free loopback port."""
    from app import create_app

    app = create_app({
        "DATABASE": str(tmp_path / "jobs.db"),
        "CONFIG_PATH": str(tmp_path / "config.toml"),
        "SECRET_KEY": "concurrency",
        "SCORE_AFTER_FETCH": False,
    })
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    app.config["LIVE_URL"] = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    server.server_close()
    thread.join(10)


class Person:
    """One browser session: its own cookie jar and CSRF token, posting verdicts on its own listings."""

    def __init__(self, base_url: str, listing_ids: list[int], n_posts: int, seed: int) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=120)
        page = self.client.get("/")
        assert page.status_code == 200
        self.token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
        self.ids = listing_ids
        self.n_posts = n_posts
        self.rng = random.Random(seed)
        self.expected = {lid: {"status": "new", "note": None, "override_score": None, "override_reason": None}
                         for lid in listing_ids}
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self.bodies_with_errors: list[str] = []
        self.finished_at: list[float] = []

    def run(self) -> None:
        headers = {"HX-Request": "true", "X-CSRF-Token": self.token}
        for k in range(self.n_posts):
            lid = self.rng.choice(self.ids)
            kind = self.rng.choice(("status", "status", "note", "score"))
            if kind == "status":
                value = self.rng.choice(STATUSES)
                url, data, change = f"/listing/{lid}/status", {"status": value}, {"status": value}
            elif kind == "note":
                note = f"note {k} from {self.rng.random():.6f}"
                url, data, change = f"/listing/{lid}/note", {"note": note}, {"note": note}
            else:
                score = self.rng.randint(0, 100)
                reason = f"reason {k}"
                url, data = f"/listing/{lid}/score", {"override_score": str(score), "override_reason": reason}
                change = {"override_score": score, "override_reason": reason}
            started = time.perf_counter()
            response = self.client.post(url, data=data, headers=headers)
            self.latencies.append(time.perf_counter() - started)
            self.finished_at.append(time.monotonic())
            self.statuses.append(response.status_code)
            if response.status_code != 200 or "locked" in response.text:
                self.bodies_with_errors.append(f"{response.status_code} {url}: {response.text[:300]}")
                continue
            self.expected[lid].update(change)
        self.client.close()


def post_verdicts_during(fetch, base_url: str, targets: list[int], n_posts: int, n_people: int):
    """Start `fetch` in a thread, post `n_posts` verdicts from `n_people` sessions meanwhile; return both sides."""
    fetch_done = threading.Event()
    fetch_result: dict = {}
    fetch_started = threading.Event()

    def fetch_thread():
        fetch_result["started"] = time.monotonic()
        fetch_started.set()
        try:
            fetch_result["value"] = fetch()
        except BaseException as exc:  # reported by the test
            fetch_result["error"] = exc
        finally:
            fetch_result["ended"] = time.monotonic()
            fetch_done.set()

    shares = [targets[i::n_people] for i in range(n_people)]
    per_person = [n_posts // n_people + (1 if i < n_posts % n_people else 0) for i in range(n_people)]
    people = [Person(base_url, shares[i], per_person[i], seed=i) for i in range(n_people)]
    worker = threading.Thread(target=fetch_thread)
    worker.start()
    assert fetch_started.wait(10)
    threads = [threading.Thread(target=p.run) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    worker.join(300)
    assert fetch_done.is_set(), "the fetch never finished"
    if "error" in fetch_result:
        raise fetch_result["error"]
    return people, fetch_result


def assert_every_verdict_persisted(db_path: str, people: list[Person]) -> None:
    db = storage.connect(db_path, migrate_now=False)
    try:
        for person in people:
            for lid, expected in person.expected.items():
                stored = search.group_verdict(db, lid)
                assert {k: stored[k] for k in expected} == expected, f"listing {lid}"
    finally:
        db.conn.close()


def report(people: list[Person], fetch_result: dict, label: str) -> tuple[int, float]:
    latencies = sorted(x for p in people for x in p.latencies)
    during = sum(1 for p in people for t in p.finished_at if t <= fetch_result["ended"])
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(f"\n{label}: {len(latencies)} verdict POSTs, {during} finished while the fetch ran "
          f"({fetch_result['ended'] - fetch_result['started']:.1f} s); latency p50 "
          f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    return during, p95


def test_500_verdicts_from_6_sessions_during_a_10000_listing_fetch(live_app, caplog):
    db_path = live_app.config["DATABASE"]
    total = 10_000
    db = storage.connect(db_path, migrate_now=False)
    # Listings the person already sees; the big fetch rewrites them (a new generation) while verdicts land.
    with mock_client(payloads(total, generation=0)) as client:
        seeded = fetcher.run_fetch(db, fetch_config(), client, sources=["lever:hinge"], force=True)
    assert [o.status for o in seeded] == ["ok"]
    targets = [r[0] for r in db.conn.execute("SELECT id FROM listings ORDER BY id LIMIT 60")]
    served = payloads(total, generation=1)

    def fetch():
        conn = storage.connect(db_path, migrate_now=False)
        try:
            with mock_client(served) as client:
                return fetcher.run_fetch(conn, fetch_config(), client, force=True)
        finally:
            conn.conn.close()

    with caplog.at_level(logging.WARNING):
        people, fetch_result = post_verdicts_during(fetch, live_app.config["LIVE_URL"], targets, 500, 6)

    errors = [e for p in people for e in p.bodies_with_errors]
    assert errors == []
    assert sum(len(p.statuses) for p in people) == 500
    assert all(code == 200 for p in people for code in p.statuses)
    assert "database is locked" not in caplog.text
    assert [o.status for o in fetch_result["value"]] == ["ok"] * 4
    counts = expected_counts(total)
    outcome = {o.name: (o.n_fetched, o.n_new, o.n_updated) for o in fetch_result["value"]}
    assert outcome["lever:hinge"] == (counts["lever:hinge"], 0, counts["lever:hinge"])
    assert db.conn.execute("SELECT count(*) FROM listings").fetchone()[0] == total
    db.conn.close()
    assert_every_verdict_persisted(db_path, people)
    during, _p95 = report(people, fetch_result, "in-process fetch")
    assert during > 0, "no verdict was posted while the fetch ran"


def test_verdicts_while_another_process_fetches(live_app, caplog):
    """The fetch CLI or a second app in its own process: SQLite's locks and busy_timeout, not a Python lock."""
    db_path = live_app.config["DATABASE"]
    total = 3000
    db = storage.connect(db_path, migrate_now=False)
    with mock_client(payloads(total, generation=0)) as client:
        fetcher.run_fetch(db, fetch_config(), client, sources=["remotive"], force=True)
    targets = [r[0] for r in db.conn.execute("SELECT id FROM listings ORDER BY id LIMIT 40")]
    db.conn.close()

    def fetch():
        proc = subprocess.run([sys.executable, str(HELPER), db_path, str(total), "1"],
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc.stdout

    with caplog.at_level(logging.WARNING):
        people, fetch_result = post_verdicts_during(fetch, live_app.config["LIVE_URL"], targets, 150, 5)

    assert [e for p in people for e in p.bodies_with_errors] == []
    assert all(code == 200 for p in people for code in p.statuses)
    assert "database is locked" not in caplog.text
    assert fetch_result["value"].count(": ok (") == 4
    assert_every_verdict_persisted(db_path, people)
    during, _p95 = report(people, fetch_result, "fetch in another process")
    assert during > 0, "no verdict was posted while the fetch ran"
