"""Claude as the teacher: settings, API key, prompts with a cached prefix, forced tool output, and the ledger.

Every call goes through `ClaudeClient`, which prices it and hands a `CallRecord`
to its recorder (one `llm_calls` row per call, success or failure). Claude's
answer arrives as the input of a forced tool call; it is validated with pydantic
and its evidence quotes are checked against the listing, like the local strategies.
The API key is resolved from the environment or a git-ignored `.env`, and is
scrubbed from every error message this module produces.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import anthropic
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scoring import ledger, prompts
from scoring.ledger import CallRecord, Usage
from scoring.profile import (
    DEFAULT_FAMILY_WEIGHTS, DEFAULT_FOCUS_WEIGHTS, DEFAULT_LOCATION_WEIGHTS, DEFAULT_SENIORITY_WEIGHTS, LOCATION_LABELS,
    Profile,
)
from scoring.strategies import ScoreResult
from scoring.text import html_to_text, is_grounded

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"

# Model ids checked 2026-11-25; config.toml's [scoring] claude_model and
# claude_rescore_model override them. Sonnet 4.5 reaches end of life on 2026-11-30
# and Sonnet 5.5 refuses a forced tool choice, so re-scores default to Sonnet 4.6.
DEFAULT_MODEL = "claude-haiku-4-5"
DEFAULT_RESCORE_MODEL = "claude-sonnet-4-6"
# The shortest prefix each model caches; a shorter one is billed in full every call.
MIN_CACHE_TOKENS = {"claude-haiku-4-5": 4096, "claude-sonnet-4-6": 1024, "claude-sonnet-4-5": 1024}
# Models that answer a forced tool choice with HTTP 400: they are asked to use the
# tool instead (tool_choice "auto"), and an answer without the tool call is invalid.
NO_FORCED_TOOL = ("claude-sonnet-5-5", "claude-opus-5-5")
# A rough English average, for the prefix-size notice only (billing uses the API's counts).
CHARS_PER_TOKEN = 4.0
MAX_CV_CHARS = 40_000


@dataclass(frozen=True)
class ClaudeSettings:
    """The [scoring] settings that concern Claude, with their defaults."""

    mode: str = "local"  # "hybrid" escalates uncertain local scores to Claude
    model: str = DEFAULT_MODEL
    rescore_model: str = DEFAULT_RESCORE_MODEL
    timeout_s: float = 60.0
    max_retries: int = 2
    monthly_budget_usd: float = 5.0
    prices: dict = field(default_factory=lambda: {m: dict(p) for m, p in ledger.DEFAULT_PRICES.items()})
    batch_discount: float = ledger.DEFAULT_BATCH_DISCOUNT
    uncertainty_band: tuple[int, int] = (65, 85)
    disagreement_margin: float = 25.0
    spread_threshold: float = 20.0
    max_attempts: int = 3
    escalation_workers: int = 2
    # Settings that were unusable and fell back to defaults, to show the person.
    problems: tuple[str, ...] = ()


def _number(table: dict, key: str, default, cast, problems: list[str], lo=None, hi=None, where="[scoring]"):
    if key not in table:
        return default
    try:
        value = cast(table[key])
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError("out of range")
    except (TypeError, ValueError):
        problems.append(f"{where} {key} = {table[key]!r} is not usable; using {default!r}")
        return default
    return value


def settings_from(scoring: dict | None) -> ClaudeSettings:
    """ClaudeSettings from config's raw [scoring] table; bad values fall back to defaults, listed in `problems`."""
    t = dict(scoring or {})
    d = ClaudeSettings()
    problems: list[str] = []
    prices = {m: dict(p) for m, p in d.prices.items()}
    table = t.get("prices") or {}
    if not isinstance(table, dict):
        problems.append("[scoring.prices] must be a table of models")
        table = {}
    for model, row in table.items():
        if not isinstance(row, dict):
            problems.append(f"[scoring.prices.\"{model}\"] must be a table")
            continue
        known = prices.get(model)
        if known is None and not {"input", "output"} <= set(row):
            problems.append(f"[scoring.prices.\"{model}\"] needs at least input and output prices")
            continue
        before = len(problems)
        where = f'[scoring.prices."{model}"]'
        merged = dict(known or {})
        for kind in ("input", "output"):
            if kind in row:
                merged[kind] = _number(row, kind, merged.get(kind, 0.0), float, problems, lo=0.0, where=where)
        # Anthropic prices 5-minute cache writes at 1.25x input and cache reads at 0.1x.
        for kind, factor in (("cache_write", 1.25), ("cache_read", 0.10)):
            default = merged[kind] if known and "input" not in row else round(merged["input"] * factor, 6)
            merged[kind] = _number(row, kind, default, float, problems, lo=0.0, where=where)
        if known is None and len(problems) > before:
            continue  # a model must never look free: without usable prices it is costed at the dearest
        prices[model] = merged
    band = t.get("uncertainty_band", d.uncertainty_band)
    try:
        lo, hi = (int(band[0]), int(band[1]))
        if not 0 <= lo <= hi <= 100:
            raise ValueError
        band = (lo, hi)
    except (TypeError, ValueError, IndexError):
        problems.append(f"[scoring] uncertainty_band = {band!r} must be [low, high] within 0-100; using [65, 85]")
        band = d.uncertainty_band
    mode = str(t.get("mode", d.mode))
    model = str(t.get("claude_model") or d.model)
    rescore_model = str(t.get("claude_rescore_model") or d.rescore_model)
    s = ClaudeSettings(
        mode=mode,
        model=model,
        rescore_model=rescore_model,
        timeout_s=_number(t, "claude_timeout_s", d.timeout_s, float, problems, lo=0.1),
        max_retries=_number(t, "claude_max_retries", d.max_retries, int, problems, lo=0, hi=10),
        monthly_budget_usd=_number(t, "monthly_budget_usd", d.monthly_budget_usd, float, problems, lo=0.0),
        prices=prices,
        batch_discount=_number(t, "batch_discount", d.batch_discount, float, problems, lo=0.0, hi=1.0),
        uncertainty_band=band,
        disagreement_margin=_number(t, "disagreement_margin", d.disagreement_margin, float, problems, lo=0.0),
        spread_threshold=_number(t, "spread_threshold", d.spread_threshold, float, problems, lo=0.0),
        max_attempts=_number(t, "escalation_max_attempts", d.max_attempts, int, problems, lo=1),
        escalation_workers=_number(t, "escalation_workers", d.escalation_workers, int, problems, lo=1, hi=8),
        problems=tuple(problems),
    )
    return s


# ---------------------------------------------------------------- keys


def _env_file_values(env_file: str | Path | None) -> dict:
    path = Path(env_file) if env_file else ENV_FILE
    if not path.is_file():
        return {}
    try:
        return {k: v for k, v in dotenv_values(path).items() if v}
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s: %s", path, type(exc).__name__)
        return {}


def resolve_key(env_file: str | Path | None = None) -> str | None:
    """The Anthropic API key: ANTHROPIC_API_KEY from the environment, else from `.env`; None when absent."""
    key = (os.environ.get("ANTHROPIC_API_KEY") or "").strip()
    if key:
        return key
    key = (_env_file_values(env_file).get("ANTHROPIC_API_KEY") or "").strip()
    return key or None


def resolve_base_url(env_file: str | Path | None = None) -> str | None:
    """ANTHROPIC_BASE_URL from the environment, else from `.env`; None means the SDK's default."""
    url = (os.environ.get("ANTHROPIC_BASE_URL") or "").strip()
    return url or (_env_file_values(env_file).get("ANTHROPIC_BASE_URL") or "").strip() or None


NO_KEY_MESSAGE = (
    "No Anthropic API key: set ANTHROPIC_API_KEY in the environment or in a .env file in the project folder."
)


# ---------------------------------------------------------------- errors


class ClaudeError(Exception):
    """A Claude call that produced no usable answer; the message is safe to show."""

    kind = "error"


class NoKey(ClaudeError):
    """No API key is configured."""

    kind = "no_key"


class OverBudget(ClaudeError):
    """This month's spend has reached the budget."""

    kind = "budget"


class Transient(ClaudeError):
    """Rate limit, server error, timeout or network failure that outlasted the SDK's retries: try later."""

    kind = "transient"


class Rejected(ClaudeError):
    """The API refused the key (401/403): nothing will work until the key is fixed."""

    kind = "rejected"


class InvalidOutput(ClaudeError):
    """Claude answered, but the tool input did not validate."""

    kind = "invalid"


class Failed(ClaudeError):
    """The API refused the request itself (other 4xx)."""

    kind = "failed"


# ---------------------------------------------------------------- structured output


def _short_list(max_items: int, max_chars: int):
    def check(v: list[str]) -> list[str]:
        items = [str(x).strip() for x in v if str(x).strip()]
        if len(items) > max_items:
            raise ValueError(f"at most {max_items} items")
        if any(len(x) > max_chars for x in items):
            raise ValueError(f"items must be at most {max_chars} characters")
        return items

    return check


class ClaudeScore(BaseModel):
    """The record_score tool input."""

    model_config = ConfigDict(extra="ignore")
    score: int = Field(ge=0, le=100, strict=True)
    reasoning: str = Field(min_length=1, max_length=2000)
    evidence: list[str] = Field(default_factory=list)

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, v):
        return _short_list(5, 300)(v)


class ClaudeAssessment(ClaudeScore):
    """The record_assessment tool input (one-click re-score)."""

    strengths: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)

    @field_validator("strengths", "gaps", "recommendations")
    @classmethod
    def _lists(cls, v):
        return _short_list(8, 400)(v)


class DerivedCriterion(BaseModel):
    """A criterion or red flag Claude derived from a CV."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=60)
    terms: list[str] = Field(min_length=1, max_length=25)
    weight: float = Field(ge=-60, le=60)


class DerivedProfile(BaseModel):
    """The record_profile tool input."""

    model_config = ConfigDict(extra="ignore")
    cv_summary: str = Field(min_length=20, max_length=3000)
    criteria: list[DerivedCriterion] = Field(min_length=1, max_length=12)
    red_flags: list[DerivedCriterion] = Field(default_factory=list, max_length=12)
    location_weights: dict[str, float] = Field(default_factory=dict)
    family_weights: dict[str, float] = Field(default_factory=dict)
    seniority_weights: dict[str, float] = Field(default_factory=dict)


_EVIDENCE_SCHEMA = {
    "type": "array", "items": {"type": "string", "maxLength": 160}, "maxItems": 3,
    "description": "1-3 short phrases copied exactly from the listing that decided the score.",
}
SCORE_TOOL = {
    "name": "record_score",
    "description": "Record the fit score of the job listing for the candidate.",
    "input_schema": {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Fit 0-100 per the rubric."},
            "reasoning": {"type": "string", "description": "One line naming the decisive facts."},
            "evidence": _EVIDENCE_SCHEMA,
        },
        "required": ["score", "reasoning", "evidence"],
    },
}
_LIST_OF_LINES = {"type": "array", "items": {"type": "string"}, "maxItems": 5}
ASSESSMENT_TOOL = {
    "name": "record_assessment",
    "description": "Record a careful assessment of the job listing for the candidate.",
    "input_schema": {
        "type": "object",
        "properties": {
            **SCORE_TOOL["input_schema"]["properties"],
            "strengths": {**_LIST_OF_LINES, "description": "Where the candidate fits the listing."},
            "gaps": {**_LIST_OF_LINES, "description": "What the listing asks that the candidate lacks, or doubts."},
            "recommendations": {**_LIST_OF_LINES, "description": "Concrete next steps for the application."},
        },
        "required": ["score", "reasoning", "evidence", "strengths", "gaps", "recommendations"],
    },
}
_CRITERION_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Short name, e.g. 'Backend / platform'."},
        "terms": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 25,
                  "description": "Lower-case words or phrases that show it in a listing (matched as whole words)."},
        "weight": {"type": "number",
                   "description": "Points it moves a 0-100 score: +5..+25 wants, -10..-45 red flags."},
    },
    "required": ["name", "terms", "weight"],
}


def _weights_schema(keys, description: str) -> dict:
    return {"type": "object", "description": description,
            "properties": {k: {"type": "number", "minimum": -60, "maximum": 30} for k in keys}}


PROFILE_TOOL = {
    "name": "record_profile",
    "description": "Record what the candidate wants in a job, derived from their CV.",
    "input_schema": {
        "type": "object",
        "properties": {
            "cv_summary": {"type": "string", "description": "4-8 sentences: skills, years, level, where they live "
                           "and may work, what roles they want and do not want."},
            "criteria": {"type": "array", "items": _CRITERION_SCHEMA, "minItems": 1, "maxItems": 12},
            "red_flags": {"type": "array", "items": _CRITERION_SCHEMA, "maxItems": 12},
            "location_weights": _weights_schema(LOCATION_LABELS, "Points per location flag of a listing."),
            "family_weights": _weights_schema(prompts.ROLE_FAMILIES, "Points per role family."),
            "seniority_weights": _weights_schema(prompts.SENIORITY, "Points per seniority level."),
        },
        "required": ["cv_summary", "criteria", "red_flags", "location_weights", "family_weights",
                     "seniority_weights"],
    },
}

SCORER_INSTRUCTIONS = """You score job listings for one candidate, described below, with the record_score tool.
Use the rubric. Judge role family, seniority, stack and whether the candidate can take the job from where they live.
A 'Location check' line, when present, is a deterministic reading of the listing's location for this candidate:
home = their city, remote = remote they can take, remote-restricted = remote limited to regions they are not in,
country-other / overseas-onsite = on-site somewhere they do not live, unknown = not stated.
reasoning: one line naming the decisive facts. evidence: 1-3 short phrases copied exactly from the listing."""

ASSESSOR_INSTRUCTIONS = """You assess one job listing for one candidate, described below, with the record_assessment
tool. Use the rubric for the score. Be concrete: name the skills, seniority and location facts that decide it.
evidence: 1-3 short phrases copied exactly from the listing. strengths, gaps, recommendations: short lines."""

DERIVE_INSTRUCTIONS = """Read the candidate's CV and record, with the record_profile tool, what makes a job listing
fit them, so a simple keyword scorer can rank listings. criteria: what they want (role families, stack, domains),
each with lower-case match terms as they appear in listings and a positive weight. red_flags: what they do not want
(wrong role families, seniority, residency or language requirements), each with terms and a negative weight.
location_weights: points per location flag (home, remote, remote-restricted, country-other, overseas-onsite,
unknown) for where they live and may work. family_weights and seniority_weights: points per role family and
seniority (0 neutral, negative for what they do not want). Base everything on the CV only."""


def profile_text(profile: Profile, example_cap: int = 12) -> str:
    """The candidate block of the shared prefix: summary, wants, red flags and scored examples, in a fixed order."""
    lines = [f"Candidate: {profile.cv_summary.strip() or 'not described'}"]
    if profile.criteria:
        lines.append("Wants:")
        lines += [f"- {c.name} (+{abs(c.weight):g}): {', '.join(c.terms)}" for c in profile.criteria]
    if profile.red_flags:
        lines.append("Does not want:")
        lines += [f"- {c.name} (-{abs(c.weight):g}): {', '.join(c.terms)}" for c in profile.red_flags]
    examples = prompts.select_examples(profile.examples, example_cap)
    if examples:
        lines.append("Scored examples (the candidate's own verdicts are authoritative):")
        for e in examples:
            who = "candidate" if e.source == "human" else "reviewer"
            lines.append(f"- {e.title} | {e.company} | {e.location or 'location not stated'} -> {e.score} "
                         f"({who}): {e.reasoning}")
    return "\n".join(lines)


def system_blocks(instructions: str, profile: Profile) -> list[dict]:
    """The shared prefix as system blocks, cache_control on the last one; nothing per-listing in it."""
    return [
        {"type": "text", "text": f"{instructions}\n\n{prompts.RUBRIC}"},
        {"type": "text", "text": profile_text(profile), "cache_control": {"type": "ephemeral"}},
    ]


def tool_choice(model: str, name: str) -> dict:
    """Force the named tool, except on models that refuse a forced choice (they get 'auto')."""
    if model.startswith(NO_FORCED_TOOL):
        return {"type": "auto"}
    return {"type": "tool", "name": name}


def min_cache_tokens(model: str) -> int:
    """The shortest prefix `model` caches (longest matching id prefix; 1,024 when unknown)."""
    for known in sorted(MIN_CACHE_TOKENS, key=len, reverse=True):
        if model.startswith(known):
            return MIN_CACHE_TOKENS[known]
    return 1024


_noted_prefixes: set[tuple[str, str]] = set()
_note_lock = threading.Lock()


def note_prefix_size(model: str, blocks: list[dict], tools: list[dict]) -> int:
    """Estimate the cacheable prefix in tokens and log once per model and prefix when it is too short to cache."""
    import json

    text = json.dumps(tools) + "".join(b["text"] for b in blocks)
    estimate = int(math.ceil(len(text) / CHARS_PER_TOKEN))
    minimum = min_cache_tokens(model)
    if estimate < minimum:
        key = (model, hashlib.sha256(text.encode()).hexdigest()[:12])
        with _note_lock:
            if key not in _noted_prefixes:
                _noted_prefixes.add(key)
                log.info("prompt prefix is about %d tokens, below %s's %d-token caching minimum: "
                         "it is billed in full on every call", estimate, model, minimum)
    return estimate


# ---------------------------------------------------------------- the client


@dataclass
class Answer:
    """A validated tool input with the call's accounting."""

    data: BaseModel
    record: CallRecord


def _listing_texts(v: dict) -> tuple[str, ...]:
    return (v.get("title") or "", v.get("company") or "", v.get("location") or "",
            html_to_text(v.get("description_html") or ""))


class ClaudeClient:
    """Claude through the official SDK, with explicit timeout and retries, priced and recorded per call."""

    def __init__(self, settings: ClaudeSettings, api_key: str | None, base_url: str | None = None,
                 recorder: Callable[[CallRecord], object] | None = None) -> None:
        if not api_key:
            raise NoKey(NO_KEY_MESSAGE)
        self.settings = settings
        self._key = api_key
        self.recorder = recorder
        self._sdk = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=settings.timeout_s, max_retries=settings.max_retries,
        )

    def __repr__(self) -> str:
        return f"ClaudeClient(model={self.settings.model!r})"

    def close(self) -> None:
        """Release the HTTP connections and the recorder's database connections."""
        self._sdk.close()
        close = getattr(self.recorder, "close", None)
        if close is not None:
            close()

    # -- helpers

    def scrub(self, text: str) -> str:
        """`text` with the API key removed, for anything shown, logged or stored."""
        text = str(text)
        if self._key and self._key in text:
            text = text.replace(self._key, "[api key]")
        return text

    def _record(self, call: CallRecord) -> None:
        call.error = self.scrub(call.error)[:500] if call.error else ""
        if self.recorder is not None:
            self.recorder(call)

    def price(self, model: str, usage: Usage, batch: bool = False) -> float:
        """Dollar cost of a call under the configured prices."""
        return ledger.cost(model, usage, self.settings.prices, batch, self.settings.batch_discount)

    @staticmethod
    def usage_of(message) -> Usage:
        """Token counts of an SDK Message."""
        u = message.usage
        return Usage(
            prompt_tokens=int(u.input_tokens or 0),
            completion_tokens=int(u.output_tokens or 0),
            cache_read_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
            cache_write_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
        )

    def _raise_for(self, exc: Exception, call: CallRecord) -> ClaudeError:
        """Map an SDK exception to a recorded ClaudeError with a safe message."""
        if isinstance(exc, anthropic.APITimeoutError):
            call.status, msg, err = "timeout", f"Claude did not answer within {self.settings.timeout_s:g} s", Transient
        elif isinstance(exc, anthropic.APIConnectionError):
            call.status, msg, err = "error", "cannot reach the Anthropic API (network error)", Transient
        elif isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            detail = self.scrub(getattr(exc, "message", "") or "")[:200]
            if status == 429:
                call.status, msg, err = "rate_limited", "Claude is rate limiting requests (HTTP 429)", Transient
            elif status in (408, 409) or status >= 500:
                call.status, msg, err = "error", f"the Anthropic API failed (HTTP {status})", Transient
            elif status in (401, 403):
                call.status, msg, err = "error", f"the Anthropic API rejected the key (HTTP {status})", Rejected
            else:
                msg = f"the Anthropic API refused the request (HTTP {status}): {detail}"
                call.status, err = "error", Failed
        else:
            call.status, msg, err = "error", f"Claude call failed: {type(exc).__name__}", Failed
        call.error = msg
        self._record(call)
        return err(self.scrub(msg) + ("; retries exhausted, try again later" if err is Transient else ""))

    def _validate(self, message, tool_name: str, schema: type[BaseModel], call: CallRecord) -> BaseModel:
        block = next((b for b in message.content if getattr(b, "type", "") == "tool_use"
                      and getattr(b, "name", "") == tool_name), None)
        problem = None
        data = None
        if message.stop_reason == "max_tokens":
            problem = "answer cut off at max_tokens"
        elif block is None:
            problem = f"no {tool_name} tool call in the answer"
        else:
            try:
                data = schema.model_validate(block.input)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "input"
                problem = f"malformed {tool_name} input: {where}: {first['msg']}"
        if problem:
            call.status, call.error = "invalid", problem
            self._record(call)
            raise InvalidOutput(problem)
        call.status = "ok"
        self._record(call)
        return data

    def ask(self, *, model: str, purpose: str, listing_id: int | None, system: list[dict], user: str,
            tool: dict, schema: type[BaseModel], max_tokens: int) -> Answer:
        """One forced tool call; returns the validated input or raises a ClaudeError (every outcome recorded)."""
        if any(b.get("cache_control") for b in system):
            note_prefix_size(model, system, [tool])
        call = CallRecord(model=model, purpose=purpose, status="error", listing_id=listing_id)
        t0 = time.perf_counter()
        try:
            message = self._sdk.messages.create(
                model=model, max_tokens=max_tokens, system=system,
                messages=[{"role": "user", "content": user}],
                tools=[tool], tool_choice=tool_choice(model, tool["name"]),
            )
        except anthropic.APIError as exc:
            call.latency_ms = int((time.perf_counter() - t0) * 1000)
            raise self._raise_for(exc, call) from None
        call.latency_ms = int((time.perf_counter() - t0) * 1000)
        call.usage = self.usage_of(message)
        call.cost_usd = self.price(model, call.usage)
        return Answer(self._validate(message, tool["name"], schema, call), call)

    # -- what the app asks

    def score(self, v: dict, profile: Profile, purpose: str = "escalate", listing_id: int | None = None,
              model: str | None = None) -> ScoreResult:
        """Claude's score of one listing view, grounded like the local strategies."""
        model = model or self.settings.model
        a = self.ask(model=model, purpose=purpose, listing_id=listing_id,
                     system=system_blocks(SCORER_INSTRUCTIONS, profile), user=prompts.listing_block(v),
                     tool=SCORE_TOOL, schema=ClaudeScore, max_tokens=400)
        return to_result(a.data, v, a.record, profile)

    def assess(self, v: dict, profile: Profile, listing_id: int | None = None) -> ScoreResult:
        """The one-click re-score: score, reasoning, strengths, gaps and recommendations from the re-score model."""
        model = self.settings.rescore_model
        a = self.ask(model=model, purpose="rescore", listing_id=listing_id,
                     system=system_blocks(ASSESSOR_INSTRUCTIONS, profile), user=prompts.listing_block(v),
                     tool=ASSESSMENT_TOOL, schema=ClaudeAssessment, max_tokens=1200)
        return to_result(a.data, v, a.record, profile)

    def derive_profile(self, cv_text: str, cv_name: str) -> Profile:
        """Derive a profile (criteria, red flags, weights, summary) from a CV, in one call."""
        cv_text = (cv_text or "").strip()
        if not cv_text:
            raise Failed("the CV is empty")
        if len(cv_text) > MAX_CV_CHARS:
            raise Failed(f"the CV is {len(cv_text):,} characters; at most {MAX_CV_CHARS:,} are accepted")
        system = [{"type": "text", "text": f"{DERIVE_INSTRUCTIONS}\n\nRubric the scorer follows:\n{prompts.RUBRIC}"}]
        a = self.ask(model=self.settings.model, purpose="calibrate", listing_id=None, system=system,
                     user=f"CV:\n{cv_text}", tool=PROFILE_TOOL, schema=DerivedProfile, max_tokens=2500)
        return to_profile(a.data, cv_name)

    # -- batches

    def batch_request(self, custom_id: str, v: dict, profile: Profile) -> dict:
        """One Message Batches request scoring a listing with the same prefix as `score`."""
        system = system_blocks(SCORER_INSTRUCTIONS, profile)
        note_prefix_size(self.settings.model, system, [SCORE_TOOL])
        return {
            "custom_id": custom_id,
            "params": {
                "model": self.settings.model, "max_tokens": 400, "system": system,
                "messages": [{"role": "user", "content": prompts.listing_block(v)}],
                "tools": [SCORE_TOOL], "tool_choice": tool_choice(self.settings.model, SCORE_TOOL["name"]),
            },
        }

    def _batch_failure(self, exc: Exception, purpose: str) -> ClaudeError:
        return self._raise_for(exc, CallRecord(model=self.settings.model, purpose=purpose, status="error"))

    def create_batch(self, requests: list[dict]) -> str:
        """Submit a batch; returns its id."""
        try:
            return self._sdk.messages.batches.create(requests=requests).id
        except anthropic.APIError as exc:
            raise self._batch_failure(exc, "calibrate") from None

    def batch_progress(self, batch_id: str) -> dict:
        """A batch's processing status and request counts."""
        try:
            b = self._sdk.messages.batches.retrieve(batch_id)
        except anthropic.APIError as exc:
            raise self._batch_failure(exc, "calibrate") from None
        c = b.request_counts
        return {"status": b.processing_status, "processing": c.processing, "succeeded": c.succeeded,
                "errored": c.errored, "canceled": c.canceled, "expired": c.expired}

    def batch_scores(self, batch_id: str, views: dict[str, tuple[int, dict]], profile: Profile,
                     purpose: str = "calibrate") -> dict[str, ScoreResult | ClaudeError]:
        """Results of an ended batch by custom_id, each priced at the batch rate and recorded."""
        out: dict[str, ScoreResult | ClaudeError] = {}
        try:
            results = list(self._sdk.messages.batches.results(batch_id))
        except anthropic.APIError as exc:
            raise self._batch_failure(exc, purpose) from None
        for item in results:
            if item.custom_id not in views:
                continue
            lid, v = views[item.custom_id]
            call = CallRecord(model=self.settings.model, purpose=purpose, status="error", listing_id=lid)
            if item.result.type != "succeeded":
                call.error = f"batch request {item.result.type}"
                self._record(call)
                out[item.custom_id] = Failed(call.error)
                continue
            message = item.result.message
            call.usage = self.usage_of(message)
            call.cost_usd = self.price(message.model or self.settings.model, call.usage, batch=True)
            try:
                data = self._validate(message, SCORE_TOOL["name"], ClaudeScore, call)
            except InvalidOutput as exc:
                out[item.custom_id] = exc
                continue
            out[item.custom_id] = to_result(data, v, call, profile)
        return out


def to_result(data: ClaudeScore, v: dict, call: CallRecord, profile: Profile) -> ScoreResult:
    """A ScoreResult from Claude's validated answer, with evidence checked against the listing."""
    texts = _listing_texts(v)
    quotes = list(data.evidence)
    grounded_each = [is_grounded(q, *texts) for q in quotes]
    detail: dict = {
        "purpose": call.purpose, "cost_usd": call.cost_usd, "cache_read_tokens": call.usage.cache_read_tokens,
        "cache_write_tokens": call.usage.cache_write_tokens, "profile": profile.cv_name,
    }
    if quotes and not all(grounded_each):
        detail["ungrounded_quotes"] = [q for q, ok in zip(quotes, grounded_each) if not ok]
    if isinstance(data, ClaudeAssessment):
        detail.update(strengths=data.strengths, gaps=data.gaps, recommendations=data.recommendations)
    return ScoreResult(
        score=data.score,
        reasoning=data.reasoning.strip().splitlines()[0][:300],
        evidence=quotes,
        grounded=bool(quotes) and all(grounded_each),
        strategy="claude",
        provider="anthropic",
        model=call.model,
        latency_ms=call.latency_ms or 0,
        prompt_tokens=call.usage.total_prompt,
        completion_tokens=call.usage.completion_tokens,
        detail=detail,
    )


def to_profile(d: DerivedProfile, cv_name: str) -> Profile:
    """A Profile from derived criteria; wants weigh positive, red flags negative, unknown labels dropped."""
    def crit(c: DerivedCriterion, sign: int) -> dict:
        return {"name": c.name.strip(), "terms": [t.lower() for t in c.terms], "weight": sign * abs(c.weight)}

    def weights(given: dict[str, float], defaults: dict[str, float]) -> dict[str, float]:
        return {k: float(given.get(k, dv)) for k, dv in defaults.items()}

    try:
        return Profile(
            cv_name=cv_name,
            cv_summary=d.cv_summary.strip(),
            criteria=[crit(c, 1) for c in d.criteria],
            red_flags=[crit(c, -1) for c in d.red_flags],
            location_weights=weights(d.location_weights, DEFAULT_LOCATION_WEIGHTS),
            # Floats like a loaded profile's, so weights_version survives a save and load.
            focus_weights=weights({}, DEFAULT_FOCUS_WEIGHTS),
            family_weights=weights(d.family_weights, DEFAULT_FAMILY_WEIGHTS),
            seniority_weights=weights(d.seniority_weights, DEFAULT_SENIORITY_WEIGHTS),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidOutput(f"derived profile unusable: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def client_for(settings: ClaudeSettings, db_path: str | Path | None, env_file: str | Path | None = None
               ) -> ClaudeClient:
    """A client with the resolved key and base URL, recording calls into the database at `db_path`."""
    key = resolve_key(env_file)
    if not key:
        raise NoKey(NO_KEY_MESSAGE)
    recorder = ledger.Recorder(db_path) if db_path else None
    return ClaudeClient(settings, key, resolve_base_url(env_file), recorder)
