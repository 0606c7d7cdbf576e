"""Claude in the dashboard: re-score button and polling, budget confirmation, errors, spend page, calibration."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask import render_template_string, template_rendered

import claude_views
import config as config_mod
import security
from fake_anthropic import FakeAnthropic, store_recorded_listings
from scoring import calibration, claude, escalation, ledger
from scoring import queue
from scoring import profile as profile_mod

KEY = "sk-ant-test-views-4d2e8a"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def jobsift_config():
    return replace(config_mod.Config(), scoring={"claude_max_retries": 0, "claude_timeout_s": 1, "mode": "hybrid"})


@pytest.fixture
def fake():
    f = FakeAnthropic(min_cache_tokens={}).start()
    yield f
    f.stop()


@pytest.fixture
def claude_app(app, fake, tmp_path, monkeypatch):
    # Registered here too, so these tests hold whether or not the app factory does it yet.
    security.init_app(app)
    if "claude" not in app.blueprints:
        claude_views.init_app(app)
    app.config["CLAUDE_ENV_FILE"] = str(tmp_path / "no.env")
    app.instance_path = str(tmp_path / "instance")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.setattr(claude_views, "_JOBS", {})
    monkeypatch.setattr(calibration, "STATE", calibration.CalibrationState())
    monkeypatch.setattr(escalation, "STATE", escalation.EscalationState())
    yield app
    assert claude_views.wait_idle(10), "a Claude thread outlived its test"


@pytest.fixture
def ids(db):
    return store_recorded_listings(db)


def token(client) -> str:
    page = client.get("/spend").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def post(client, url, data=None, **kw):
    return client.post(url, data=data or {}, headers={**HTMX, "X-CSRF-Token": token(client)}, **kw)


def finished(client, url) -> str:
    assert claude_views.wait_idle(10)
    return client.get(url, headers=HTMX).get_data(as_text=True)


def test_rescore_needs_the_csrf_token(claude_app, client, fake, ids):
    response = client.post(f"/listing/{ids['AI Engineer']}/rescore", headers=HTMX)
    assert response.status_code == 403
    assert fake.requests == []


def test_rescore_runs_in_the_background_and_the_fragment_polls_until_done(claude_app, client, db, fake, ids):
    lid = ids["AI Engineer"]
    fake.delay = 0.3
    response = post(client, f"/listing/{lid}/rescore")
    assert response.status_code == 202
    html = response.get_data(as_text=True)
    assert f'hx-get="/listing/{lid}/rescore"' in html and 'hx-trigger="every 1s"' in html
    assert "Claude is reading the listing" in html

    html = finished(client, f"/listing/{lid}/rescore")
    assert "hx-trigger" not in html
    assert "claude-sonnet-4-6" in html
    for text in ("Strengths", "Relevant engineering background", "Gaps", "Location needs checking",
                 "Recommendations", "Mention the platform work first", "<q>AI Engineer</q>"):
        assert text in html
    assert "Re-score again with Claude" in html

    [body] = fake.message_requests()
    assert body["model"] == "claude-sonnet-4-6" and body["tools"][0]["name"] == "record_assessment"
    strategy, score = db.conn.execute(
        "SELECT s.strategy, s.score FROM current_scores cs JOIN scores s ON s.id = cs.score_id WHERE cs.listing_id = ?",
        [lid]).fetchone()
    assert strategy == "claude" and f"<strong>{score}</strong>" in html
    [call] = list(db.query("SELECT * FROM llm_calls"))
    assert call["purpose"] == "rescore" and call["listing_id"] == lid and call["status"] == "ok"


def test_a_plain_form_post_goes_back_to_the_listing(claude_app, client, ids):
    lid = ids["AI Engineer"]
    response = client.post(f"/listing/{lid}/rescore", data={"csrf_token": token(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/listing/{lid}")


def test_rescore_of_a_missing_listing_is_404(claude_app, client, fake, ids):
    assert post(client, "/listing/9999/rescore").status_code == 404
    assert client.get("/listing/9999/rescore").status_code == 404


def test_without_a_key_claude_buttons_are_disabled_and_say_why(claude_app, client, fake, ids, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    page = client.get("/spend").get_data(as_text=True)
    assert claude.NO_KEY_MESSAGE in page
    assert re.search(r"<button type=\"submit\" disabled>Calibrate</button>", page)
    lid = ids["AI Engineer"]
    fragment = client.get(f"/listing/{lid}/rescore").get_data(as_text=True)
    assert re.search(r"<button type=\"submit\" disabled>Re-score with Claude</button>", fragment)
    assert claude.NO_KEY_MESSAGE in fragment
    response = post(client, f"/listing/{lid}/rescore")
    assert response.status_code == 409 and claude.NO_KEY_MESSAGE in response.get_data(as_text=True)
    assert post(client, "/escalations/run").status_code == 409
    assert fake.requests == []


def test_rescore_past_the_budget_asks_for_confirmation(claude_app, client, db, fake, ids):
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="escalate", status="ok", cost_usd=5.0))
    lid = ids["AI Engineer"]
    response = post(client, f"/listing/{lid}/rescore")
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert '<input type="hidden" name="confirm" value="1">' in html and "Re-score anyway" in html
    assert "$5.00 of $5.00" in html
    assert fake.requests == []

    response = post(client, f"/listing/{lid}/rescore", data={"confirm": "1"})
    assert response.status_code == 202
    assert "Strengths" in finished(client, f"/listing/{lid}/rescore")
    assert len(fake.message_requests()) == 1


@pytest.mark.parametrize(
    "step, message",
    [
        ({"status": 429, "headers": {"retry-after": "0"}}, "Claude is rate limiting requests (HTTP 429)"),
        ({"status": 500}, "the Anthropic API failed (HTTP 500)"),
        ({"delay": 2.0}, "Claude did not answer within 1 s"),
        ({"tool_input": {"score": 101, "reasoning": "x", "evidence": [], "strengths": [], "gaps": [],
                         "recommendations": []}}, "malformed record_assessment input: score"),
    ],
)
def test_rescore_errors_show_inline(claude_app, client, db, fake, ids, step, message):
    fake.script.append(step)
    lid = ids["AI Engineer"]
    assert post(client, f"/listing/{lid}/rescore").status_code == 202
    html = finished(client, f"/listing/{lid}/rescore")
    assert message in html and 'role="alert"' in html
    assert "hx-trigger" not in html and "Re-score with Claude" in html
    assert db.conn.execute("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_the_key_never_reaches_the_html(claude_app, client, fake, ids):
    lid = ids["AI Engineer"]
    fake.script.append({"status": 401, "message": f"bad key {KEY}"})
    post(client, f"/listing/{lid}/rescore")
    pages = [finished(client, f"/listing/{lid}/rescore")]
    assert "rejected the key (HTTP 401)" in pages[0]
    post(client, f"/listing/{lid}/rescore")
    pages.append(finished(client, f"/listing/{lid}/rescore"))
    pages.append(client.get("/spend").get_data(as_text=True))
    pages.append(client.get("/spend", headers=HTMX).get_data(as_text=True))
    assert all(KEY not in page for page in pages)


def rendered(app):
    names = []

    def record(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(record, app, weak=False)
    return names


def test_spend_page_and_partial(claude_app, client, db, ids):
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="escalate", status="ok",
                                        listing_id=ids["AI Engineer"], cost_usd=0.0012,
                                        usage=ledger.Usage(400, 80, 1000, 0)))
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="escalate", status="ok",
                                        listing_id=ids["Research Engineer"], cost_usd=0.0028,
                                        usage=ledger.Usage(400, 80, 0, 200)))
    queue.score_with_rules(db, list(ids.values()), profile_mod.load(profile_mod.BUNDLED / "example.json"))
    names = rendered(claude_app)
    page = client.get("/spend").get_data(as_text=True)
    assert names == ["spend.html"]
    row = ('<th scope="row">claude-haiku-4-5</th><td>2</td><td>800</td><td>1000</td><td>200</td><td>160</td>'
           "<td>50%</td><td>$0.0040</td>")
    assert row in page
    assert "$0.0040</strong> of a $5.00 budget" in page
    # 16 listings scored locally at $0.002 each with Claude.
    assert "16 listings are scored locally" in page and "<strong>$0.03</strong>" in page
    assert "2 queued" not in page and "0 queued" in page

    names.clear()
    partial = client.get("/spend", headers=HTMX).get_data(as_text=True)
    assert names == ["_claude_spend.html"]
    assert "<html" not in partial and "claude-haiku-4-5" in partial


def test_budget_banner_shows_only_once_the_budget_is_reached(claude_app, db):
    template = '{% include "_claude_banner.html" %}'
    with claude_app.test_request_context("/"):
        assert render_template_string(template).strip() == ""
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="escalate", status="ok", cost_usd=5.5))
    with claude_app.test_request_context("/"):
        html = render_template_string(template)
    assert "Claude budget reached: $5.50 of $5.00 this month" in html and "Escalations are paused" in html


def test_escalations_run_from_the_page(claude_app, client, db, fake, ids):
    prof = profile_mod.load(profile_mod.BUNDLED / "example.json")
    for title in ("AI Engineer", "Research Engineer"):
        sid = queue.save(db, ids[title], queue.RulesStrategy(prof).score(
            queue.listing_views(db, [ids[title]])[ids[title]]), prof)
        escalation.enqueue(db, ids[title], ["band"], sid)
    page = client.get("/spend").get_data(as_text=True)
    assert "2 queued" in page
    response = post(client, "/escalations/run")
    assert response.status_code == 202 and "Escalations started." in response.get_data(as_text=True)
    html = finished(client, "/escalations/status")
    assert "0 queued · 0 running · 2 done · 0 failed" in html
    assert "Last run: 2 scored by Claude" in html
    assert len(fake.message_requests()) == 2


def test_escalations_do_not_start_past_the_budget(claude_app, client, db, fake, ids):
    ledger.record(db, ledger.CallRecord(model="claude-haiku-4-5", purpose="escalate", status="ok", cost_usd=6.0))
    response = post(client, "/escalations/run")
    assert response.status_code == 409 and escalation.BUDGET_MESSAGE in response.get_data(as_text=True)


CV = b"# Ada\nSenior Python and Go engineer in Berlin, ML platform, wants EU remote backend roles.\n"


def test_calibrate_from_the_page(claude_app, client, db, fake, ids, tmp_path):
    fake.delay = 0.2
    response = client.post(
        "/calibrate",
        data={"cv": (__import__("io").BytesIO(CV), "ada.md"), "sample": "4", "batch": ""},
        headers={**HTMX, "X-CSRF-Token": token(client)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    html = response.get_data(as_text=True)
    assert 'hx-get="/calibrate/status"' in html and 'hx-trigger="every 1s"' in html
    html = finished(client, "/calibrate/status")
    assert "Saved profile <code>ada</code>: Claude scored 4 of 4 sampled listings" in html
    assert "hx-trigger" not in html
    assert profile_mod.load(tmp_path / "instance" / "scoring_profiles" / "ada.json").examples
    derive = [b for b in fake.message_requests() if b["tools"][0]["name"] == "record_profile"]
    assert derive[0]["messages"][0]["content"] == "CV:\n" + CV.decode().strip()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"cv_text": "", "cv_name": "ada"}, "Choose a CV file"),
        ({"cv_text": "my cv", "cv_name": "../../etc"}, "Name the profile with letters"),
        ({"cv_text": "my cv", "cv_name": "ada", "sample": "0"}, "from 1 to 500"),
        ({"cv_text": "my cv", "cv_name": "ada", "sample": "lots"}, "from 1 to 500"),
    ],
)
def test_calibrate_refuses_bad_input_with_a_message(claude_app, client, fake, data, message):
    response = post(client, "/calibrate", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    assert fake.requests == []


def test_calibrate_refuses_a_binary_file(claude_app, client, fake):
    response = client.post(
        "/calibrate",
        data={"cv": (__import__("io").BytesIO(b"\xff\xfe\x00binary"), "cv.pdf")},
        headers={**HTMX, "X-CSRF-Token": token(client)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "not UTF-8 text" in response.get_data(as_text=True)


def test_the_rescore_fragment_can_be_included_in_the_detail_panel(claude_app, ids):
    lid = ids["AI Engineer"]
    with claude_app.test_request_context(f"/listing/{lid}"):
        html = render_template_string('{% set detail = {"id": ' + str(lid) + '} %}{% include "_claude_rescore.html" %}')
    assert f'id="claude-rescore-{lid}"' in html and f'hx-post="/listing/{lid}/rescore"' in html
    assert 'name="csrf_token"' in html and "Re-score with Claude" in html
