"""A local stand-in for the Anthropic API, spoken to by the real SDK through base_url.

It answers POST /v1/messages with a forced tool call and a usage block (the prompt
cache behaves like the real one: the first request with a cache_control prefix at
least the model's minimum long writes it, later ones read it), and the Message
Batches endpoints. Every request is recorded for assertions, and a test scripts
failures per request: a status with headers (429 + retry-after, 500), a delay past
the client's timeout, or malformed tool input.

Tokens are counted as one per four characters, close enough to English for
accounting tests and the cost benchmark.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
import zlib
from collections import deque
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The real minimum prefix each model caches.
REAL_MIN_CACHE_TOKENS = {"claude-haiku-4-5": 4096, "claude-sonnet-4-6": 1024, "claude-sonnet-4-5": 1024}
CACHE_TTL_S = 300

DEFAULT_PROFILE = {
    "cv_summary": "Senior Python and Go engineer in Berlin with ML platform experience; wants remote-in-EU or "
                  "Berlin backend, ML/AI platform or data platform roles; not sales, marketing or frontend-only.",
    "criteria": [
        {"name": "ML / AI engineering", "terms": ["ai engineer", "machine learning", "research engineer", "ml"],
         "weight": 20},
        {"name": "Systems / backend", "terms": ["software engineer", "backend", "infrastructure", "system software"],
         "weight": 15},
    ],
    "red_flags": [
        {"name": "Sales / marketing", "terms": ["account executive", "marketing", "sales", "vertrieb"], "weight": -35},
        {"name": "Internship", "terms": ["praktikant", "intern", "student"], "weight": 30},
    ],
    "location_weights": {"loc:home": 15, "loc:remote": 15, "loc:overseas-onsite": -40, "loc:unknown": 0,
                         "loc:bogus": 99},
    "family_weights": {"sales_marketing": -40, "backend": 0},
    "seniority_weights": {"junior": -15, "senior": 5},
}


def tokens(text: str) -> int:
    """The fake's token count of a text."""
    return int(math.ceil(len(text) / 4)) if text else 0


def _title_of(user: str) -> str:
    m = re.search(r"^Title: (.*)$", user, re.M)
    return m.group(1).strip() if m else ""


class FakeAnthropic:
    """A threaded HTTP server speaking enough of the Messages and Batches API for the SDK."""

    def __init__(self, min_cache_tokens: dict[str, int] | None = None, batch_polls: int = 2) -> None:
        self.min_cache_tokens = dict(REAL_MIN_CACHE_TOKENS if min_cache_tokens is None else min_cache_tokens)
        self.batch_polls = batch_polls
        self.requests: list[dict] = []
        # Behaviours for the next /v1/messages requests, consumed one per request.
        self.script: deque[dict] = deque()
        # Listing title substring -> score Claude gives.
        self.scores: dict[str, int] = {}
        self.default_score = lambda title: 20 + zlib.crc32(title.encode()) % 70
        self.profile_input = json.loads(json.dumps(DEFAULT_PROFILE))
        # custom_id -> error type, for batch results.
        self.batch_errors: dict[str, str] = {}
        # Token counts to report instead of counting characters: {"prefix", "user", "output"}
        # (the cost benchmark sets realistic sizes this way).
        self.fixed_tokens: dict[str, int] | None = None
        # Seconds every /v1/messages answer waits (scripted steps may set their own).
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._cache: dict[str, float] = {}
        self._batches: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> "FakeAnthropic":
        """Listen on a free port of 127.0.0.1 in a background thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_GET(self) -> None:
                fake._handle(self, "GET")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        """The URL to give the SDK."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what tests read

    def message_requests(self) -> list[dict]:
        """Bodies of the POST /v1/messages requests received so far."""
        with self._lock:
            return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/messages"]

    # -- handling

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        path = h.path.split("?", 1)[0]
        with self._lock:
            headers = {k.lower(): v for k, v in h.headers.items()}
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body,
                                  "at": time.monotonic()})
        try:
            if method == "POST" and path == "/v1/messages":
                self._messages(h, body)
            elif method == "POST" and path == "/v1/messages/batches":
                self._batch_create(h, body)
            elif method == "GET" and path.startswith("/v1/messages/batches/") and path.endswith("/results"):
                self._batch_results(h, path.split("/")[4])
            elif method == "GET" and path.startswith("/v1/messages/batches/"):
                self._batch_retrieve(h, path.split("/")[4])
            else:
                self._send(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer

    def _send(self, h, status: int, payload, headers: dict | None = None, content_type="application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        h.send_header("request-id", f"req_fake_{next(self._ids)}")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _messages(self, h, body: dict) -> None:
        with self._lock:
            step = self.script.popleft() if self.script else {}
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = step.get("delay", self.delay)
            if delay:
                time.sleep(delay)
            if step.get("status"):
                kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
                        401: "authentication_error", 400: "invalid_request_error"}.get(step["status"], "api_error")
                message = step.get("message", f"fake {kind}")
                self._send(h, step["status"], {"type": "error", "error": {"type": kind, "message": message}},
                           headers=step.get("headers"))
                return
            self._send(h, 200, self.message_for(body, step))
        finally:
            with self._lock:
                self.in_flight -= 1

    def message_for(self, body: dict, step: dict | None = None) -> dict:
        """The Message the fake answers to a request body (used for batches too)."""
        step = step or {}
        tool = body["tools"][0]["name"] if body.get("tools") else ""
        user = body["messages"][-1]["content"]
        if isinstance(user, list):
            user = "".join(b.get("text", "") for b in user)
        title = _title_of(user)
        if "tool_input" in step:
            tool_input = step["tool_input"]
        elif tool == "record_profile":
            tool_input = self.profile_input
        else:
            score = next((s for k, s in self.scores.items() if k.lower() in user.lower()), None)
            if score is None:
                score = self.default_score(title)
            tool_input = {"score": score, "reasoning": f"{title or 'listing'}: judged against the candidate",
                          "evidence": [title] if title else []}
            if tool == "record_assessment":
                tool_input.update(strengths=["Relevant engineering background"], gaps=["Location needs checking"],
                                  recommendations=["Mention the platform work first"])
        usage = self._usage(body, tool_input)
        return {
            "id": f"msg_fake_{next(self._ids)}", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "tool_use", "id": f"toolu_fake_{next(self._ids)}", "name": tool, "input": tool_input}],
            "stop_reason": step.get("stop_reason", "tool_use"), "stop_sequence": None, "usage": usage,
        }

    def _usage(self, body: dict, tool_input) -> dict:
        # Cache order is tools, then system, then messages; the prefix ends at the last cache_control block.
        tools_text = json.dumps(body.get("tools") or [])
        system = body.get("system") or []
        if isinstance(system, str):
            system = [{"type": "text", "text": system}]
        last = max((i for i, b in enumerate(system) if b.get("cache_control")), default=None)
        user_text = json.dumps(body.get("messages"))
        fixed = self.fixed_tokens
        total = tokens(tools_text) + sum(tokens(b["text"]) for b in system) + tokens(user_text)
        if fixed:
            total = fixed["prefix"] + fixed["user"]
        cached = write = read = 0
        if last is not None:
            prefix_text = tools_text + "".join(b["text"] for b in system[: last + 1])
            prefix = tokens(tools_text) + sum(tokens(b["text"]) for b in system[: last + 1])
            if fixed:
                prefix = fixed["prefix"]
            minimum = next((v for k, v in self.min_cache_tokens.items() if body["model"].startswith(k)), 0)
            if prefix >= minimum:
                key = body["model"] + "|" + prefix_text
                now = time.monotonic()
                with self._lock:
                    hit = self._cache.get(key, 0) > now
                    self._cache[key] = now + CACHE_TTL_S
                cached = prefix
                read, write = (prefix, 0) if hit else (0, prefix)
        output = fixed["output"] if fixed else tokens(json.dumps(tool_input))
        return {"input_tokens": total - cached, "output_tokens": output,
                "cache_creation_input_tokens": write, "cache_read_input_tokens": read}

    # -- batches

    def _batch_json(self, b: dict) -> dict:
        ended = b["polls"] >= self.batch_polls
        n = len(b["requests"])
        errored = sum(1 for r in b["requests"] if r["custom_id"] in self.batch_errors) if ended else 0
        return {
            "id": b["id"], "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": {"processing": 0 if ended else n, "succeeded": n - errored if ended else 0,
                               "errored": errored, "canceled": 0, "expired": 0},
            "created_at": b["created_at"], "expires_at": b["expires_at"],
            "ended_at": b["created_at"] if ended else None, "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{b['id']}/results" if ended else None,
        }

    def _batch_create(self, h, body: dict) -> None:
        now = datetime.now(timezone.utc)
        b = {"id": f"msgbatch_fake_{next(self._ids)}", "requests": body["requests"], "polls": 0,
             "created_at": now.isoformat(), "expires_at": (now + timedelta(hours=24)).isoformat()}
        with self._lock:
            self._batches[b["id"]] = b
        self._send(h, 200, self._batch_json(b))

    def _batch_retrieve(self, h, batch_id: str) -> None:
        with self._lock:
            b = self._batches.get(batch_id)
            if b is not None:
                b["polls"] += 1
        if b is None:
            self._send(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}})
            return
        self._send(h, 200, self._batch_json(b))

    def _batch_results(self, h, batch_id: str) -> None:
        b = self._batches.get(batch_id)
        if b is None:
            self._send(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}})
            return
        lines = []
        for r in b["requests"]:
            if r["custom_id"] in self.batch_errors:
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": self.batch_errors[r["custom_id"]], "message": "fake batch error"}}}
            else:
                result = {"type": "succeeded", "message": self.message_for(r["params"])}
            lines.append(json.dumps({"custom_id": r["custom_id"], "result": result}))
        self._send(h, 200, ("\n".join(lines) + "\n").encode(), content_type="application/binary")


# ---------------------------------------------------------------- recorded listings

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def recorded_listings():
    """Real listings from recorded board payloads (tests/fixtures), as scraper.base.Listing objects."""
    from scraper.base import Listing

    out = []
    him = json.loads((FIXTURES / "himalayas" / "himalayas_jobs_limit5.json").read_text(encoding="utf-8"))
    for j in him["jobs"]:
        out.append(Listing(source="himalayas", source_id=j["guid"], title=j["title"], company=j["companyName"],
                           location=", ".join(j.get("locationRestrictions") or []), url=j["applicationLink"],
                           description_html=j.get("description") or "", raw=j))
    arb = json.loads((FIXTURES / "arbeitnow" / "arbeitnow_job-board-api_trimmed3.json").read_text(encoding="utf-8"))
    for j in arb["data"]:
        out.append(Listing(source="arbeitnow", source_id=j["slug"], title=j["title"], company=j["company_name"],
                           location=j.get("location") or "", url=j["url"], description_html=j.get("description") or "",
                           raw=j))
    for name in ("greenhouse_gitlab_content_trimmed3.json", "greenhouse_helsing_trimmed.json"):
        gh = json.loads((FIXTURES / "greenhouse" / name).read_text(encoding="utf-8"))
        for j in gh["jobs"]:
            out.append(Listing(source="greenhouse", source_id=str(j["id"]), title=j["title"],
                               company=j.get("company_name") or "", location=(j.get("location") or {}).get("name", ""),
                               url=j["absolute_url"], description_html=j.get("content") or "", raw=j))
    ashby = json.loads((FIXTURES / "ashby" / "ashby_openai_2jobs_apiVersion.json").read_text(encoding="utf-8"))
    for j in ashby["jobs"]:
        out.append(Listing(source="ashby", source_id=j["id"], title=j["title"], company="OpenAI",
                           location=j.get("location") or "", url=j["jobUrl"],
                           description_html=j.get("descriptionHtml") or "", raw=j))
    lever = json.loads((FIXTURES / "lever" / "lever_hinge_trimmed.json").read_text(encoding="utf-8"))
    for j in lever:
        out.append(Listing(source="lever", source_id=j["id"], title=j["text"], company="Hinge",
                           location=(j.get("categories") or {}).get("location", ""), url=j["hostedUrl"],
                           description_html=j.get("description") or "", raw=j))
    return out


# Location and focus flags of the recorded listings for a person in Berlin, read by hand
# from each listing's location and title (the flag classifier has its own tests).
RECORDED_FLAGS = {
    "Content & Marcom Specialist": ("loc:remote-restricted", "focus:non-tech"),
    "Product Manager - Web3/ DeFi": ("loc:remote-restricted", "focus:tech"),
    "Portfolio Manager - Freelance AI Trainer": ("loc:remote-restricted", "focus:non-tech"),
    "Senior System Software Engineer, NvSci": ("loc:remote-restricted", "focus:priority"),
    "Praktikant Marketing/Event (m/w/d) - Student: in": ("loc:country-other", "focus:non-tech"),
    "Quereinsteiger: Redaktion, Marketing, Vertrieb (m/w/d)": ("loc:home", "focus:non-tech"),
    "Senior Account Executive, Enterprise": ("loc:remote", "focus:non-tech"),
    "Account Executive - Italy": ("loc:remote-restricted", "focus:non-tech"),
    "AI Engineer": ("loc:remote-restricted", "focus:priority"),
    "AI Transformation Owner, CRO": ("loc:remote-restricted", "focus:tech"),
    "Accounts Payable Lead": ("loc:country-other", "focus:non-tech"),
    "AI Research Engineer -  3D Computer Vision": ("loc:home", "focus:priority"),
    "Technical Program Manager, Compute Infrastructure": ("loc:overseas-onsite", "focus:priority"),
    "Research Engineer": ("loc:overseas-onsite", "focus:tech"),
    "Android Engineer III": ("loc:overseas-onsite", "focus:tech"),
    "APAC Sr. Localization Program Manager (Tinder Korea)": ("loc:overseas-onsite", "focus:non-tech"),
}


class _Flag:
    def __init__(self, kind: str, label: str, evidence: str) -> None:
        self.kind, self.label, self.evidence = kind, label, evidence


def store_recorded_listings(db) -> dict[str, int]:
    """Upsert the recorded listings with their flags; returns {title: listing id}."""
    import db as storage

    listings = recorded_listings()
    storage.upsert_listings(db, listings)
    ids = {}
    for item in listings:
        lid = db.conn.execute("SELECT id FROM listings WHERE source = ? AND source_id = ?",
                              (item.source, item.source_id)).fetchone()[0]
        loc, focus = RECORDED_FLAGS[item.title]
        storage.save_flags(db, lid, [_Flag("location", loc, item.location), _Flag("focus", focus, item.title)], "test")
        ids[item.title] = lid
    return ids
