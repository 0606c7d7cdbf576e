"""One polite GET: retries with backoff, Retry-After honored, conditional requests.

Sources never build their own HTTP client: whoever runs a fetch builds one with
`make_client()` (tests pass an httpx.MockTransport) and hands it to `Source.fetch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import stamina

from scraper.base import FetchResult, ParseResult, PayloadError, Source
from scraper.normalize import load_json

USER_AGENT = "jobsift/0.1 (+local job triage; one person, few requests)"

ATTEMPTS = 3
# The longest wait between attempts we accept; a board asking for more is left alone until next time.
MAX_WAIT_S = 60.0
# Exponential backoff for 5xx and network errors without Retry-After.
WAIT_INITIAL_S = 2.0
WAIT_JITTER_S = 1.0
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

_RETRY_AFTER_STATUSES = (429, 503)


class FetchError(Exception):
    """A request that failed for good: a 4xx other than 429, or every attempt failed."""

    def __init__(self, message: str, *, url: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        # Seconds the board asked us to wait, when it said so.
        self.retry_after = retry_after


@dataclass
class Retry:
    """One failed attempt that was tried again, and the wait asked for before the next one."""

    reason: str  # "HTTP 429", "ReadTimeout", ...
    wait_s: float | None  # from Retry-After; None when exponential backoff decided


@dataclass
class Page:
    """A response body with what the caller needs to be polite next time."""

    url: str
    status: int
    body: bytes = b""
    # ETag / Last-Modified to send next time: {"etag": ..., "last_modified": ...}.
    validators: dict = field(default_factory=dict)
    retries: list[Retry] = field(default_factory=list)
    source: str = ""

    @property
    def not_modified(self) -> bool:
        """True when the server answered 304: what we have is current."""
        return self.status == 304

    def json(self) -> Any:
        """The body decoded as JSON, or PayloadError naming the source and URL."""
        try:
            return load_json(self.body, self.source or "response")
        except PayloadError as exc:
            raise PayloadError(f"{exc} (from {self.url})") from exc


class _Transient(Exception):
    """A status worth trying again (429, 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status = response.status_code
        self.retry_after = retry_after_seconds(response) if response.status_code in _RETRY_AFTER_STATUSES else None


_NETWORK_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def make_client(transport: httpx.BaseTransport | None = None, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> httpx.Client:
    """The one httpx client for fetching: descriptive User-Agent, explicit timeouts, redirects followed."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=timeout,
        follow_redirects=True,
        transport=transport,
    )


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header given as seconds or as an HTTP date; None when absent or unreadable."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _backoff(exc: Exception) -> bool | float:
    """Stamina's hook: whether to try again, and after how long when the board said so."""
    if isinstance(exc, _Transient):
        if exc.retry_after is None:
            return True
        # Asked to wait longer than we are willing to block a fetch: stop and try next run.
        return exc.retry_after if exc.retry_after <= MAX_WAIT_S else False
    return isinstance(exc, _NETWORK_ERRORS)


def conditional_headers(validators: dict | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from the validators a previous response gave."""
    headers = {}
    if isinstance(validators, dict):
        if isinstance(validators.get("etag"), str) and validators["etag"]:
            headers["If-None-Match"] = validators["etag"]
        if isinstance(validators.get("last_modified"), str) and validators["last_modified"]:
            headers["If-Modified-Since"] = validators["last_modified"]
    return headers


def _validators_of(response: httpx.Response, sent: dict | None) -> dict:
    found = {}
    if isinstance(sent, dict):
        found.update({k: v for k, v in sent.items() if k in ("etag", "last_modified") and isinstance(v, str) and v})
    if response.headers.get("ETag"):
        found["etag"] = response.headers["ETag"]
    if response.headers.get("Last-Modified"):
        found["last_modified"] = response.headers["Last-Modified"]
    return found


def get(
    client: httpx.Client,
    url: str,
    *,
    source: str = "",
    validators: dict | None = None,
    timeout: float | httpx.Timeout | None = None,
    params: dict | None = None,
) -> Page:
    """GET `url` politely; a Page (304 included) or FetchError after retries or on a non-retryable 4xx."""
    headers = conditional_headers(validators)
    label = f"{source}: " if source else ""
    log: list[Retry] = []
    attempts = 0
    request_timeout = timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT

    def hook(exc: Exception) -> bool | float:
        decision = _backoff(exc)
        if decision is not False:
            reason = str(exc) if isinstance(exc, _Transient) else type(exc).__name__
            log.append(Retry(reason, None if decision is True else float(decision)))
        return decision

    try:
        for attempt in stamina.retry_context(
            on=hook,
            attempts=ATTEMPTS,
            timeout=None,  # bounded by attempts, per-request timeouts and MAX_WAIT_S
            wait_initial=WAIT_INITIAL_S,
            wait_max=MAX_WAIT_S,
            wait_jitter=WAIT_JITTER_S,
        ):
            with attempt:
                attempts += 1
                response = client.get(url, params=params, headers=headers, timeout=request_timeout)
                status = response.status_code
                if status == 429 or status >= 500:
                    raise _Transient(response)
                if status >= 400:
                    raise FetchError(f"{label}{url} answered HTTP {status}; not retried", url=url, status=status)
    except _Transient as exc:
        if exc.retry_after is not None and exc.retry_after > MAX_WAIT_S:
            message = f"{label}{url} answered HTTP {exc.status} asking to wait {exc.retry_after:.0f} s; try again later"
        else:
            message = f"{label}{url} answered HTTP {exc.status} after {attempts} attempts"
        raise FetchError(message, url=url, status=exc.status, retry_after=exc.retry_after) from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{label}{url} failed after {attempts} attempts: {type(exc).__name__}: {exc}", url=url) from exc

    return Page(
        url=url,
        status=response.status_code,
        body=b"" if response.status_code == 304 else response.content,
        validators=_validators_of(response, validators),
        retries=log,
        source=source,
    )


def validators_for(validators: dict | None, url: str) -> dict | None:
    """The validators stored for `url` in a FetchResult.validators mapping."""
    if isinstance(validators, dict) and isinstance(validators.get(url), dict):
        return validators[url]
    return None


def parse_page(source: Source, page: Page) -> ParseResult:
    """Parse a page's body with the source, naming the URL when the payload is unreadable."""
    try:
        return source.parse(page.body)
    except PayloadError as exc:
        raise PayloadError(f"{exc} (from {page.url})") from exc


def fetch_one(source: Source, client: httpx.Client, url: str, validators: dict | None = None) -> FetchResult:
    """The whole fetch of a single-URL board: conditional GET, parse, validators for next time."""
    page = get(client, url, source=source.name, validators=validators_for(validators, url), timeout=source.timeout_s)
    kept = {url: page.validators} if page.validators else {}
    if page.not_modified:
        return FetchResult(ParseResult(), not_modified=True, validators=kept)
    return FetchResult(parse_page(source, page), not_modified=False, validators=kept)
