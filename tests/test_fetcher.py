"""run_fetch over real recorded payloads served through httpx.MockTransport."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import stamina

import config as config_mod
import db as storage
import fetcher
from conftest import FIXTURES
from scraper.base import FetchResult, Listing, ParseResult, Source
from scraper.http import make_client

T0 = datetime(2026, 7, 28, 9, 0, tzinfo=timezone.utc)
REMOTEOK = (FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes()
REMOTIVE = (FIXTURES / "remotive" / "remotive_all_2026-07.json").read_bytes()
GITLAB = (FIXTURES / "greenhouse" / "greenhouse_gitlab_content_trimmed3.json").read_bytes()
HELSING = (FIXTURES / "greenhouse" / "greenhouse_helsing_trimmed.json").read_bytes()


@pytest.fixture(autouse=True)
def no_backoff():
    """Retries happen but never sleep."""
    with stamina.set_testing(True, attempts=2):
        yield


def make_config(**changes) -> config_mod.Config:
    base = {"sources": ("remoteok", "remotive"), "greenhouse_boards": ()}
    base.update(changes)
    return replace(config_mod.Config(), **base)


class Board:
    """A fake internet: URL path fragment -> handler, counting requests."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        for fragment, answer in self.routes.items():
            if fragment in url:
                if callable(answer):
                    return answer(request)
                return httpx.Response(200, content=answer, headers={"Content-Type": "application/json"})
        return httpx.Response(404, text=f"no route for {url}")

    def hits(self, fragment: str) -> int:
        return sum(fragment in str(r.url) for r in self.requests)

    def client(self) -> httpx.Client:
        return make_client(transport=httpx.MockTransport(self))


def listing_count(db, source=None) -> int:
    if source:
        return db.conn.execute("SELECT count(*) FROM listings WHERE source = ?", [source]).fetchone()[0]
    return db.conn.execute("SELECT count(*) FROM listings").fetchone()[0]


def runs(db, source) -> list[dict]:
    return list(db.query("SELECT * FROM fetch_runs WHERE source = ? ORDER BY id", [source]))


def remoteok_items() -> list:
    return json.loads(REMOTEOK)


def served(items) -> bytes:
    return json.dumps(items).encode()


def test_fetches_and_stores_every_configured_source(db):
    board = Board({"remoteok.com/api": REMOTEOK, "remotive.com/api": REMOTIVE})
    outcomes = fetcher.run_fetch(db, make_config(), board.client(), now=T0)

    assert [(o.name, o.status) for o in outcomes] == [("remoteok", "ok"), ("remotive", "ok")]
    remoteok, remotive = outcomes
    assert remoteok.n_new == remoteok.n_fetched == listing_count(db, "remoteok") > 90
    assert remotive.n_new == listing_count(db, "remotive") == 35
    row = db.conn.execute(
        "SELECT title, company, first_seen, last_seen, stale FROM listings WHERE source = 'remoteok' AND source_id = '1097929'"
    ).fetchone()
    assert row == ("Engineering Lead", "Aragon", "2026-07-28T09:00:00+00:00", "2026-07-28T09:00:00+00:00", 0)
    [run] = runs(db, "remoteok")
    assert run["status"] == "ok" and run["error"] is None and run["finished_at"]
    assert (run["n_fetched"], run["n_new"], run["n_updated"]) == (remoteok.n_fetched, remoteok.n_new, 0)
    # Flags are computed in the same batch.
    flagged = db.conn.execute(
        "SELECT count(DISTINCT listing_id) FROM flags WHERE listing_id IN (SELECT id FROM listings WHERE source='remotive')"
    ).fetchone()[0]
    assert flagged == 35


def test_company_boards_run_once_per_board_under_their_own_name(db):
    board = Board({"boards/gitlab/jobs": GITLAB, "boards/helsing/jobs": HELSING})
    config = make_config(sources=(), greenhouse_boards=("gitlab", "helsing"))
    outcomes = fetcher.run_fetch(db, config, board.client(), now=T0)

    assert [(o.name, o.status, o.n_new) for o in outcomes] == [("greenhouse:gitlab", "ok", 3), ("greenhouse:helsing", "ok", 2)]
    assert "content=true" in str(board.requests[0].url)
    assert listing_count(db, "greenhouse") == 5
    assert [r["status"] for r in runs(db, "greenhouse:helsing")] == ["ok"]


def timeout(request):
    raise httpx.ReadTimeout("read timed out", request=request)


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda r: httpx.Response(500, text="upstream broke"), "HTTP 500"),
        (timeout, "ReadTimeout"),
        (lambda r: httpx.Response(200, text="<html><body>Maintenance</body></html>"), "remotive"),
        # Schema drift: the jobs array moved under another key.
        (lambda r: httpx.Response(200, json={"data": {"positions": json.loads(REMOTIVE.decode("utf-8-sig"))["jobs"]}}), "remotive"),
    ],
    ids=["500-forever", "timeout", "not-json", "schema-drift"],
)
def test_one_failing_source_is_recorded_and_the_others_still_commit(db, caplog, answer, expected):
    board = Board({"remoteok.com/api": REMOTEOK, "remotive.com/api": answer, "boards/gitlab/jobs": GITLAB})
    config = make_config(greenhouse_boards=("gitlab",))
    with caplog.at_level(logging.WARNING, logger="fetcher"):
        outcomes = fetcher.run_fetch(db, config, board.client(), now=T0)

    assert [o.status for o in outcomes] == ["ok", "error", "ok"]
    failed = outcomes[1]
    assert expected in failed.message
    [run] = runs(db, "remotive")
    assert run["status"] == "error" and run["error"] == failed.message and run["finished_at"]
    assert listing_count(db, "remotive") == 0
    assert listing_count(db, "remoteok") == outcomes[0].n_new > 0
    assert listing_count(db, "greenhouse") == 3
    # Validators and last success are only written with a stored batch.
    state = db.conn.execute("SELECT last_attempt_at, last_success_at FROM source_state WHERE source='remotive'").fetchone()
    assert state == ("2026-07-28T09:00:00+00:00", None)
    assert "remotive" in caplog.text


def test_server_errors_are_retried_before_giving_up(db):
    board = Board({"remoteok.com/api": lambda r: httpx.Response(503, text="busy")})
    [outcome] = fetcher.run_fetch(db, make_config(sources=("remoteok",)), board.client(), now=T0)
    assert outcome.status == "error"
    assert board.hits("remoteok.com/api") == 2  # the attempts stamina was allowed here


class BrokenParser(Source):
    """A source whose parser has a bug on today's payload."""

    name = "broken"

    def parse(self, payload):
        return ParseResult()

    def fetch(self, client, validators=None):
        client.get("https://broken.example/jobs")
        return FetchResult(ParseResult([{"not": "a listing"}]))


def test_a_bug_in_one_source_is_recorded_with_a_traceback_in_the_log(db, caplog):
    board = Board({"broken.example": b"[]", "remoteok.com/api": REMOTEOK})
    with caplog.at_level(logging.ERROR, logger="fetcher"):
        outcomes = fetcher.run_fetch(db, make_config(), board.client(), sources=[BrokenParser(), "remoteok"], now=T0)

    assert [o.status for o in outcomes] == ["error", "ok"]
    assert outcomes[0].message.startswith("AttributeError")
    assert runs(db, "broken")[0]["status"] == "error"
    assert any(record.exc_info for record in caplog.records)


def test_items_the_parser_skips_are_logged_and_counted(db, caplog):
    items = remoteok_items()  # item 97 of the recorded feed already lacks a position
    del items[3]["position"]
    items[5]["surprise_field"] = {"nested": [1, 2]}
    board = Board({"remoteok.com/api": served(items)})
    with caplog.at_level(logging.INFO, logger="fetcher"):
        [outcome] = fetcher.run_fetch(db, make_config(sources=("remoteok",)), board.client(), now=T0)

    assert outcome.status == "ok"
    assert outcome.n_skipped == 2
    assert runs(db, "remoteok")[0]["n_skipped"] == 2
    assert "remoteok item 3: missing position" in caplog.text
    assert "remoteok item 97: missing position" in caplog.text
    # 98 elements: the legal notice and two broken items are not listings.
    assert listing_count(db, "remoteok") == outcome.n_fetched == 95


def test_not_modified_writes_no_listings_and_keeps_validators(db):
    etag = '"v1-remoteok"'
    seen_etags = []

    def remoteok(request):
        seen_etags.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == etag:
            return httpx.Response(304)
        return httpx.Response(200, content=REMOTEOK, headers={"ETag": etag})

    board = Board({"remoteok.com/api": remoteok})
    config = make_config(sources=("remoteok",))
    fetcher.run_fetch(db, config, board.client(), now=T0)
    before = db.conn.execute("SELECT * FROM listings ORDER BY id").fetchall()

    [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(hours=2))

    assert seen_etags == [None, etag]
    assert outcome.status == "not-modified"
    assert (outcome.n_new, outcome.n_updated) == (0, 0)
    assert db.conn.execute("SELECT * FROM listings ORDER BY id").fetchall() == before
    assert [r["status"] for r in runs(db, "remoteok")] == ["ok", "not-modified"]
    stored = db.conn.execute("SELECT etag, last_success_at FROM source_state WHERE source='remoteok'").fetchone()
    assert json.loads(stored[0]) == {"https://remoteok.com/api": etag}
    assert stored[1] == "2026-07-28T11:00:00+00:00"

    # Weeks of 304s: the board is unchanged, so nothing on it is stale.
    [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(days=20))
    assert outcome.status == "not-modified"
    assert db.conn.execute("SELECT count(*) FROM listings WHERE stale = 1").fetchone()[0] == 0


def test_min_interval_is_respected_unless_forced(db):
    board = Board({"remoteok.com/api": REMOTEOK, "remotive.com/api": REMOTIVE})
    config = make_config()
    fetcher.run_fetch(db, config, board.client(), now=T0)
    assert board.hits("remotive") == 1

    # Remote OK allows one call an hour, Remotive one every six hours.
    outcomes = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(hours=2))
    assert [(o.name, o.status) for o in outcomes] == [("remoteok", "ok"), ("remotive", "skipped")]
    assert "every 6 h" in outcomes[1].message and "next in 4 h" in outcomes[1].message
    assert board.hits("remotive") == 1
    assert runs(db, "remotive")[-1]["status"] == "skipped"

    outcomes = fetcher.run_fetch(db, config, board.client(), sources=["remotive"], now=T0 + timedelta(hours=2), force=True)
    assert [o.status for o in outcomes] == ["ok"]
    assert board.hits("remotive") == 2

    outcomes = fetcher.run_fetch(db, config, board.client(), sources=["remotive"], now=T0 + timedelta(hours=8, seconds=1))
    assert [o.status for o in outcomes] == ["ok"]


def test_refetch_updates_a_changed_listing_and_keeps_the_verdict(db):
    items = remoteok_items()
    board = Board({"remoteok.com/api": lambda r: httpx.Response(200, content=served(items))})
    config = make_config(sources=("remoteok",))
    fetcher.run_fetch(db, config, board.client(), now=T0)
    lid = db.conn.execute("SELECT id FROM listings WHERE source='remoteok' AND source_id='1097929'").fetchone()[0]
    storage.set_verdict(db, lid, status="starred", note="ask about on-call", override_score=91)

    items[1]["position"] = "Engineering Lead (Platform)"
    [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(hours=3))

    assert (outcome.status, outcome.n_updated, outcome.n_new) == ("ok", 1, 0)
    assert outcome.updated_ids == [lid]
    assert db.conn.execute("SELECT title FROM listings WHERE id = ?", [lid]).fetchone()[0] == "Engineering Lead (Platform)"
    verdict = storage.get_verdict(db, lid)
    assert (verdict["status"], verdict["note"], verdict["override_score"]) == ("starred", "ask about on-call", 91)


def test_listings_gone_for_stale_after_days_are_marked_stale_never_deleted(db):
    items = remoteok_items()
    board = Board({"remoteok.com/api": lambda r: httpx.Response(200, content=served(items))})
    config = make_config(sources=("remoteok",), stale_after_days=14)
    fetcher.run_fetch(db, config, board.client(), now=T0)
    total = listing_count(db)
    gone = items.pop(1)["id"]

    [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(days=3))
    assert outcome.n_stale == 0

    [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(days=15))
    assert outcome.n_stale == 1
    assert listing_count(db) == total
    stale = db.conn.execute("SELECT source_id FROM listings WHERE stale = 1").fetchall()
    assert stale == [(gone,)]

    # Back on the board: fresh again.
    items.insert(1, remoteok_items()[1])
    fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(days=16))
    assert db.conn.execute("SELECT count(*) FROM listings WHERE stale = 1").fetchone()[0] == 0


def test_a_failed_fetch_marks_nothing_stale(db):
    answers = iter([httpx.Response(200, content=REMOTEOK), httpx.Response(500, text="down"), httpx.Response(500, text="down")])
    board = Board({"remoteok.com/api": lambda r: next(answers)})
    config = make_config(sources=("remoteok",))
    fetcher.run_fetch(db, config, board.client(), now=T0)
    [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(days=30))
    assert outcome.status == "error"
    assert db.conn.execute("SELECT count(*) FROM listings WHERE stale = 1").fetchone()[0] == 0


@pytest.mark.parametrize(
    "trigger",
    [
        # The batch is written, then recording the run fails.
        "CREATE TRIGGER boom BEFORE UPDATE ON fetch_runs WHEN NEW.status = 'ok'"
        " BEGIN SELECT RAISE(ABORT, 'disk said no'); END",
        # Half the batch is written, then an insert fails.
        "CREATE TRIGGER boom BEFORE INSERT ON listings WHEN NEW.source_id = '1096950'"
        " BEGIN SELECT RAISE(ABORT, 'disk said no'); END",
    ],
    ids=["after-batch", "mid-batch"],
)
def test_a_crash_inside_the_batch_leaves_no_partial_batch_and_no_ok_row(db, trigger):
    db.conn.execute(trigger)
    board = Board({"remoteok.com/api": lambda r: httpx.Response(200, content=REMOTEOK, headers={"ETag": '"x"'})})
    [outcome] = fetcher.run_fetch(db, make_config(sources=("remoteok",)), board.client(), now=T0)

    assert outcome.status == "error" and "disk said no" in outcome.message
    assert listing_count(db) == 0
    assert db.conn.execute("SELECT count(*) FROM flags").fetchone()[0] == 0
    assert db.conn.execute("SELECT count(*) FROM listings_fts").fetchone()[0] == 0
    assert [r["status"] for r in runs(db, "remoteok")] == ["error"]
    # No validators were kept, so the next fetch downloads the whole feed again.
    assert db.conn.execute("SELECT etag, last_success_at FROM source_state").fetchone() == (None, None)


def test_no_write_transaction_is_open_during_network_io(db, app):
    observed = []

    def remoteok(request):
        other = sqlite3.connect(app.config["DATABASE"], timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if anyone holds the write lock
            other.execute("ROLLBACK")
            running = other.execute("SELECT status FROM fetch_runs WHERE source='remoteok'").fetchall()
        finally:
            other.close()
        observed.append((db.conn.in_transaction, running))
        return httpx.Response(200, content=REMOTEOK)

    board = Board({"remoteok.com/api": remoteok})
    [outcome] = fetcher.run_fetch(db, make_config(sources=("remoteok",)), board.client(), now=T0)

    assert outcome.status == "ok"
    # The 'running' row was already committed, in its own transaction.
    assert observed == [(False, [("running",)])]


def test_a_running_row_left_by_a_dead_process_is_closed_as_interrupted(db):
    db.conn.execute("INSERT INTO fetch_runs (source, started_at, status) VALUES ('remoteok', '2026-07-01T00:00:00+00:00', 'running')")
    db.conn.commit()
    board = Board({"remoteok.com/api": REMOTEOK})
    fetcher.run_fetch(db, make_config(sources=("remoteok",)), board.client(), now=T0)
    statuses = [(r["status"], (r["error"] or "")[:11]) for r in runs(db, "remoteok")]
    assert statuses == [("error", "interrupted"), ("ok", "")]


def test_unknown_and_misconfigured_sources_are_errors_not_crashes(db):
    board = Board({"remoteok.com/api": REMOTEOK})
    config = make_config(sources=("remoteok", "monster-jobs", "greenhouse"))
    outcomes = fetcher.run_fetch(db, config, board.client(), now=T0)

    assert [(o.name, o.status) for o in outcomes] == [("remoteok", "ok"), ("monster-jobs", "error"), ("greenhouse", "error")]
    assert "unknown source 'monster-jobs'" in outcomes[1].message and "remoteok" in outcomes[1].message
    assert "greenhouse_boards" in outcomes[2].message
    assert runs(db, "monster-jobs")[0]["status"] == "error"


def test_sources_selects_by_name_or_kind(db):
    board = Board({"remoteok.com/api": REMOTEOK, "boards/gitlab/jobs": GITLAB, "boards/helsing/jobs": HELSING})
    config = make_config(greenhouse_boards=("gitlab", "helsing"))
    outcomes = fetcher.run_fetch(db, config, board.client(), sources=["greenhouse"], now=T0)
    assert [o.name for o in outcomes] == ["greenhouse:gitlab", "greenhouse:helsing"]
    outcomes = fetcher.run_fetch(db, config, board.client(), sources=["greenhouse:helsing"], now=T0, force=True)
    assert [o.name for o in outcomes] == ["greenhouse:helsing"]
    assert board.hits("remoteok") == 0


def test_hooks_get_the_new_and_updated_ids_and_a_failing_hook_is_not_fatal(db, monkeypatch, caplog):
    received = []

    def failing(db_, ids):
        raise RuntimeError("scoring queue is down")

    monkeypatch.setattr(fetcher, "AFTER_FETCH_HOOKS", [failing, lambda db_, ids: received.append(sorted(ids))])
    board = Board({"boards/gitlab/jobs": GITLAB})
    config = make_config(sources=(), greenhouse_boards=("gitlab",))
    with caplog.at_level(logging.ERROR, logger="fetcher"):
        [outcome] = fetcher.run_fetch(db, config, board.client(), now=T0)

    assert outcome.status == "ok"
    ids = [r[0] for r in db.conn.execute("SELECT id FROM listings ORDER BY id")]
    assert received == [ids]
    assert "scoring queue is down" in caplog.text
    # Nothing new or changed: hooks are not called.
    fetcher.run_fetch(db, config, board.client(), now=T0 + timedelta(hours=2))
    assert received == [ids]


def test_progress_reports_each_source_before_and_after(db):
    calls = []
    board = Board({"remoteok.com/api": REMOTEOK, "remotive.com/api": lambda r: httpx.Response(404)})
    fetcher.run_fetch(db, make_config(), board.client(), now=T0, progress=lambda *a: calls.append(a))
    assert calls == [
        ("remoteok", 1, 2, "running"),
        ("remoteok", 1, 2, "ok"),
        ("remotive", 2, 2, "running"),
        ("remotive", 2, 2, "error"),
    ]


class Gate(Source):
    """A source whose fetch waits until the test lets it go."""

    name = "gate"
    min_interval_s = 0

    def __init__(self, **options):
        super().__init__(**options)
        self.entered = threading.Event()
        self.release = threading.Event()

    def parse(self, payload):
        return ParseResult([Listing("gate", "1", "Backend Engineer (Python)", "Gate GmbH", "Berlin")])

    def fetch(self, client, validators=None):
        self.entered.set()
        assert self.release.wait(10), "test never released the fetch"
        return FetchResult(self.parse(b""))


def test_the_web_app_can_write_while_a_source_downloads(db, app):
    gate = Gate()
    done = []
    worker = threading.Thread(
        target=lambda: done.append(fetcher.run_fetch(db, make_config(), httpx.Client(), sources=[gate], now=T0))
    )
    worker.start()
    try:
        assert gate.entered.wait(10)
        other = storage.connect(app.config["DATABASE"], migrate_now=False)
        other.conn.execute("PRAGMA busy_timeout = 0")
        storage.upsert_listings(other, [Listing("manual", "m1", "Python Developer", "Acme", "Berlin")])
        other.conn.close()
    finally:
        gate.release.set()
        worker.join(10)
    assert [o.status for o in done[0]] == ["ok"]
    assert listing_count(db) == 2
