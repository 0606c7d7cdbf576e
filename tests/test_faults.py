"""Faults from outside: the local model server dies mid-queue, Claude fails a re-score, the backup disk is full.

In each case the person gets a clear message and loses nothing: scores, verdicts,
the database and old backups stay as they were.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import backup
import claude_views
import config as config_mod
import db as storage
from fake_anthropic import FakeAnthropic, store_recorded_listings
from scoring import calibration, escalation, queue
from scoring import profile as profile_mod
from scoring.providers import OpenAIEngine

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-ant-test-faults-7c1f"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def example_profile():
    return profile_mod.load(profile_mod.BUNDLED / "example.json")


def current(db, lid: int) -> tuple[str, dict]:
    strategy, detail = db.conn.execute(
        "SELECT s.strategy, s.detail FROM current_scores c JOIN scores s ON s.id = c.score_id WHERE c.listing_id = ?",
        (lid,)).fetchone()
    return strategy, json.loads(detail or "{}")


# ---------------------------------------------------------------- local model server down mid-queue

# A stand-in for llama_cpp.server in its own process, answering with recorded llama.cpp
# responses, so the test can kill a real server process without waiting on a model.
RECORDED_SERVER = textwrap.dedent("""
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    fixtures = sys.argv[1]
    models = open(fixtures + "/llama_cpp_server_models.json", "rb").read()
    chat = open(fixtures + "/llama_cpp_server_chat_json_logprobs.json", "rb").read()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, body):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.answer(models)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.answer(chat)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


class RecordedModelServer:
    """An OpenAI-compatible server process replaying recorded llama.cpp answers; `kill()` is SIGKILL."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RECORDED_SERVER, str(ROOT / "tests" / "fixtures" / "llamacpp")],
            stdout=subprocess.PIPE, text=True)
        self.base_url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/v1"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.process.stdout.close()


@pytest.fixture
def model_servers():
    started: list[RecordedModelServer] = []

    def start() -> RecordedModelServer:
        started.append(RecordedModelServer())
        return started[-1]

    yield start
    for server in started:
        server.kill()


def test_model_server_dies_mid_queue_and_a_later_run_rescores(db, model_servers, example_profile, monkeypatch):
    # A short pause before the engine is tried again, so the later run may use it within the test.
    monkeypatch.setattr(queue, "ENGINE_RETRY_S", 0.5)
    store_recorded_listings(db)
    batch = queue.pending(db, "fewshot", example_profile, limit=5)
    # Some already have their instant rules score; the others have none yet.
    queue.score_with_rules(db, batch[3:], example_profile)
    rules_before = {lid: current(db, lid) for lid in batch[3:]}
    state = queue.QueueState()
    server = model_servers()
    engine = OpenAIEngine(base_url=server.base_url, timeout=10)

    def kill_after_first(done, total, result):
        if done == 1:
            server.kill()

    first = queue.run(db, example_profile, "fewshot", lambda: engine, limit=5, progress=kill_after_first,
                      state=state)
    engine.close()

    assert first["started"] and first["fallbacks"] == 4
    snap = state.snapshot()
    assert "cannot reach the server" in snap["last_error"] and snap["engine_down_until"] > 0
    assert current(db, batch[0])[0] == "fewshot"
    for lid in batch[1:3]:
        # No score before: the listing gets the rules score now, marked as a fallback with the reason.
        strategy, detail = current(db, lid)
        assert strategy == "rules" and "cannot reach the server" in detail["fallback"]
    for lid in batch[3:]:
        # A listing that had a rules score keeps exactly that score.
        assert current(db, lid) == rules_before[lid]

    time.sleep(0.6)
    server = model_servers()
    engine = OpenAIEngine(base_url=server.base_url, timeout=10)
    second = queue.run(db, example_profile, "fewshot", lambda: engine, limit=4, state=state)
    engine.close()

    assert second["scored"] == 4 and second["fallbacks"] == 0 and second["errors"] == 0
    for lid in batch:
        strategy, detail = current(db, lid)
        assert strategy == "fewshot" and "fallback" not in detail
    assert queue.pending(db, "fewshot", example_profile, limit=5)[0] not in batch
    # The earlier rules scores stay in the history: re-scoring adds, never erases.
    for lid in batch[1:]:
        assert db.conn.execute(
            "SELECT count(*) FROM scores WHERE listing_id = ? AND strategy = 'rules'", (lid,)).fetchone()[0] == 1


def test_an_engine_that_cannot_start_falls_back_to_rules_and_says_why(db, example_profile, tmp_path):
    store_recorded_listings(db)
    state = queue.QueueState()

    def broken():
        raise FileNotFoundError(f"{tmp_path / 'missing.gguf'} does not exist")

    result = queue.run(db, example_profile, "fewshot", broken, limit=3, state=state)
    assert result["fallbacks"] == 3
    message = state.snapshot()["last_error"]
    assert message.startswith("engine unavailable: ") and "missing.gguf does not exist" in message
    rows = db.conn.execute(
        "SELECT s.strategy, s.detail FROM current_scores c JOIN scores s ON s.id = c.score_id").fetchall()
    assert len(rows) == 3
    assert all(strategy == "rules" and "missing.gguf" in json.loads(detail)["fallback"] for strategy, detail in rows)


# ---------------------------------------------------------------- Claude fails a re-score


@pytest.fixture
def fake():
    f = FakeAnthropic(min_cache_tokens={}).start()
    yield f
    f.stop()


@pytest.fixture
def jobsift_config():
    return replace(config_mod.Config(), scoring={"claude_max_retries": 0, "claude_timeout_s": 1})


@pytest.fixture
def claude_app(app, fake, tmp_path, monkeypatch):
    # The key and the fake API's address come from the env file, as a person's .env would give them.
    app.config["CLAUDE_ENV_FILE"] = str(tmp_path / "claude.env")
    (tmp_path / "claude.env").write_text(f"ANTHROPIC_API_KEY={KEY}\nANTHROPIC_BASE_URL={fake.base_url}\n")
    app.instance_path = str(tmp_path / "instance")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setattr(claude_views, "_JOBS", {})
    monkeypatch.setattr(calibration, "STATE", calibration.CalibrationState())
    monkeypatch.setattr(escalation, "STATE", escalation.EscalationState())
    yield app
    assert claude_views.wait_idle(10), "a Claude thread outlived its test"


@pytest.mark.parametrize(
    "step, message",
    [
        ({"status": 429, "headers": {"retry-after": "0"}}, "rate limiting"),
        ({"status": 500}, "HTTP 500"),
        ({"delay": 2.0}, "did not answer within 1 s"),
    ],
    ids=["429", "500", "timeout"],
)
def test_a_failed_rescore_loses_nothing_and_the_next_try_works(claude_app, client, db, fake, example_profile,
                                                             step, message):
    ids = store_recorded_listings(db)
    lid = ids["AI Engineer"]
    queue.score_with_rules(db, list(ids.values()), example_profile)
    storage.set_verdict(db, lid, status="starred", override_score=88, override_reason="my kind of team")
    scores_before = db.conn.execute("SELECT * FROM scores ORDER BY id").fetchall()
    verdict_before = storage.get_verdict(db, lid)
    page = client.get(f"/listing/{lid}").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    headers = {**HTMX, "X-CSRF-Token": token}

    fake.script.append(step)
    assert client.post(f"/listing/{lid}/rescore", headers=headers).status_code == 202
    assert claude_views.wait_idle(10)
    html = client.get(f"/listing/{lid}/rescore", headers=HTMX).get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    assert "Re-score with Claude" in html  # the button is back: the person can simply try again

    assert db.conn.execute("SELECT * FROM scores ORDER BY id").fetchall() == scores_before
    assert storage.get_verdict(db, lid) == verdict_before
    call = db.conn.execute("SELECT status, error, listing_id FROM llm_calls ORDER BY id DESC LIMIT 1").fetchone()
    assert call[0] != "ok" and call[1] and call[2] == lid
    # The detail page still shows the listing's score and the person's override.
    detail = client.get(f"/listing/{lid}", headers=HTMX).get_data(as_text=True)
    assert "88" in detail and "my kind of team" in detail

    assert client.post(f"/listing/{lid}/rescore", headers=headers).status_code == 202
    assert claude_views.wait_idle(10)
    html = client.get(f"/listing/{lid}/rescore", headers=HTMX).get_data(as_text=True)
    assert 'role="alert"' not in html and "Strengths" in html
    assert current(db, lid)[0] == "claude"
    assert len(db.conn.execute("SELECT * FROM scores").fetchall()) == len(scores_before) + 1
    assert storage.get_verdict(db, lid) == verdict_before


# ---------------------------------------------------------------- backup target fails

T0 = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)


def snapshot(path: str) -> list:
    conn = sqlite3.connect(path)
    try:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("listings", "flags", "verdicts", "scores", "fetch_runs")]
    finally:
        conn.close()


@pytest.fixture
def filled(app, db):
    ids = store_recorded_listings(db)
    storage.set_verdict(db, ids["AI Engineer"], status="applied", note="sent CV")
    return ids


def test_backup_into_a_path_that_is_a_file_says_so_and_changes_nothing(app, filled, tmp_path):
    before = snapshot(app.config["DATABASE"])
    blocker = tmp_path / "backups"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(backup.BackupError) as info:
        backup.make_backup(app.config["DATABASE"], blocker)
    assert f"cannot use {blocker} for backups" in str(info.value)
    with pytest.raises(backup.BackupError, match="for backups"):
        backup.make_backup(app.config["DATABASE"], blocker / "inside")
    assert blocker.read_text() == "a file where the folder should be"
    assert snapshot(app.config["DATABASE"]) == before


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    # Writes past the limit fail with EFBIG, as they would with ENOSPC on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    from app import create_app
    import backup_cli
    app = create_app({{"TESTING": True, "DATABASE": {db!r}, "CONFIG_PATH": {config!r}, "SECRET_KEY": "x",
                      "BACKUP_DIR": {folder!r}}})
    if "backup" not in app.cli.commands:
        backup_cli.init_app(app)
    result = app.test_cli_runner().invoke(args=["backup"])
    print(result.output)
    sys.exit(result.exit_code)
""")


def test_a_full_disk_fails_the_backup_clearly_and_keeps_old_backups(app, filled, tmp_path):
    folder = tmp_path / "backups"
    old = [backup.make_backup(app.config["DATABASE"], folder, now=T0 - timedelta(days=d)).path for d in (2, 1)]
    old_bytes = [p.read_bytes() for p in old]
    before = snapshot(app.config["DATABASE"])
    size = Path(app.config["DATABASE"]).stat().st_size
    script = DISK_FULL.format(root=str(ROOT), tests=str(ROOT / "tests"), limit=size // 3, db=app.config["DATABASE"],
                              config=str(tmp_path / "config.toml"), folder=str(folder))

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert f"backup failed: could not write to {folder} (disk full?)" in proc.stdout
    assert "the database was not changed and the 2 existing backups were kept" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # Nothing half-written is left looking like a backup, and the old ones are intact.
    assert sorted(folder.iterdir()) == sorted(old)
    assert [p.read_bytes() for p in old] == old_bytes
    assert snapshot(app.config["DATABASE"]) == before
    assert backup.check(app.config["DATABASE"]).ok


@pytest.fixture(autouse=True)
def _no_scoring_pass_running():
    # A background pass started by an earlier test holds the queue's run lock.
    from scoring import service

    assert service.wait_idle(180)
