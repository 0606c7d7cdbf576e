"""The polite GET: retries, Retry-After, conditional requests, clear errors; no real sleeping."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import stamina

from scraper import get_source
from scraper.base import PayloadError
from scraper.http import (
    USER_AGENT,
    FetchError,
    Retry,
    fetch_one,
    get,
    make_client,
    retry_after_seconds,
)

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://remotive.com/api/remote-jobs"


@pytest.fixture(autouse=True)
def no_backoff_sleep():
    """Stamina's test mode: same number of attempts, zero backoff."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


class Script:
    """A MockTransport handler that answers with a scripted sequence and records requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(script: Script) -> httpx.Client:
    return make_client(transport=httpx.MockTransport(script))


def test_make_client_is_descriptive_and_explicit():
    client = make_client()
    assert client.headers["User-Agent"] == USER_AGENT == "jobsift/0.1 (+local job triage; one person, few requests)"
    assert client.follow_redirects is True
    assert client.timeout.connect == 10.0 and client.timeout.read == 30.0


def test_user_agent_is_sent_and_redirects_are_followed():
    script = Script(
        httpx.Response(301, headers={"Location": "https://remotive.com/api/remote-jobs/"}),
        httpx.Response(200, json={"jobs": []}),
    )
    page = get(client_for(script), URL, source="remotive")
    assert page.status == 200 and page.json() == {"jobs": []}
    assert [str(r.url) for r in script.requests] == [URL, URL + "/"]
    assert script.requests[0].headers["User-Agent"] == USER_AGENT


def test_429_with_retry_after_then_success_waits_as_asked():
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, content=b"[]"))
    started = time.monotonic()
    page = get(client_for(script), URL, source="remotive")
    assert time.monotonic() - started < 2  # test mode: the 7 s wait is asked for, not slept
    assert page.status == 200 and page.body == b"[]"
    assert page.retries == [Retry("HTTP 429", 7.0)]
    assert len(script.requests) == 2


def test_503_with_retry_after_as_http_date():
    now = datetime(2026, 7, 10, 12, 0, 0, tzinfo=timezone.utc)
    response = httpx.Response(503, headers={"Retry-After": "Fri, 10 Jul 2026 12:00:42 GMT"})
    assert retry_after_seconds(response, now=now) == 42.0
    assert retry_after_seconds(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(503)) is None
    past = httpx.Response(503, headers={"Retry-After": "Fri, 10 Jul 2026 11:00:00 GMT"})
    assert retry_after_seconds(past, now=now) == 0.0


def test_500_then_success_uses_exponential_backoff():
    script = Script(httpx.Response(500), httpx.Response(200, content=b"{}"))
    page = get(client_for(script), URL)
    assert page.status == 200
    assert page.retries == [Retry("HTTP 500", None)]
    assert len(script.requests) == 2


def test_timeout_then_success():
    script = Script(httpx.ReadTimeout("slow board"), httpx.Response(200, content=b"{}"))
    page = get(client_for(script), URL)
    assert page.status == 200
    assert page.retries == [Retry("ReadTimeout", None)]


def test_connection_errors_exhaust_attempts_then_fail_clearly():
    script = Script(*[httpx.ConnectError("refused")] * 3)
    with pytest.raises(FetchError, match=r"remotive: https://remotive.com/api/remote-jobs failed after 3 attempts: ConnectError"):
        get(client_for(script), URL, source="remotive")
    assert len(script.requests) == 3


def test_404_is_not_retried():
    script = Script(httpx.Response(404), httpx.Response(200))
    with pytest.raises(FetchError) as caught:
        get(client_for(script), URL, source="remotive")
    assert caught.value.status == 404 and caught.value.url == URL
    assert str(caught.value) == f"remotive: {URL} answered HTTP 404; not retried"
    assert len(script.requests) == 1


def test_5xx_every_time_gives_up_after_three_attempts():
    script = Script(httpx.Response(502), httpx.Response(503), httpx.Response(500))
    with pytest.raises(FetchError, match="answered HTTP 500 after 3 attempts") as caught:
        get(client_for(script), URL)
    assert caught.value.status == 500
    assert len(script.requests) == 3


def test_retry_after_beyond_the_cap_stops_at_once():
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200))
    with pytest.raises(FetchError, match="asking to wait 3600 s") as caught:
        get(client_for(script), URL)
    assert caught.value.retry_after == 3600.0
    assert len(script.requests) == 1


def test_validators_are_sent_and_304_means_not_modified():
    sent = {"etag": 'W/"abc"', "last_modified": "Fri, 10 Jul 2026 20:00:05 GMT"}
    script = Script(httpx.Response(304))
    page = get(client_for(script), URL, validators=sent)
    request = script.requests[0]
    assert request.headers["If-None-Match"] == 'W/"abc"'
    assert request.headers["If-Modified-Since"] == "Fri, 10 Jul 2026 20:00:05 GMT"
    assert page.not_modified and page.body == b""
    assert page.validators == sent


def test_new_validators_come_from_the_response():
    script = Script(httpx.Response(200, content=b"[]", headers={"ETag": '"v2"', "Last-Modified": "Sat, 11 Jul 2026 08:00:00 GMT"}))
    page = get(client_for(script), URL)
    assert "If-None-Match" not in script.requests[0].headers
    assert page.validators == {"etag": '"v2"', "last_modified": "Sat, 11 Jul 2026 08:00:00 GMT"}


def test_malformed_json_body_names_source_and_url():
    script = Script(httpx.Response(200, content=b"<html><body>Rate limited</body></html>"))
    page = get(client_for(script), URL, source="remotive")
    with pytest.raises(PayloadError, match=r"^remotive: payload is not JSON .* \(from https://remotive.com/api/remote-jobs\)$"):
        page.json()


def test_fetch_one_passes_stored_validators_and_reports_not_modified():
    source = get_source("remotive")
    script = Script(httpx.Response(304, headers={"ETag": '"same"'}))
    result = fetch_one(source, client_for(script), URL, validators={URL: {"etag": '"same"'}})
    assert script.requests[0].headers["If-None-Match"] == '"same"'
    assert result.not_modified is True
    assert result.result.listings == []
    assert result.validators == {URL: {"etag": '"same"'}}


def test_fetch_one_wraps_unreadable_payloads_with_the_url():
    source = get_source("remotive")
    script = Script(httpx.Response(200, content=b"Service Unavailable"))
    with pytest.raises(PayloadError, match=r"\(from https://remotive.com/api/remote-jobs\)"):
        fetch_one(source, client_for(script), URL)
