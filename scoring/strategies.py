"""Scoring strategies: rules, fewshot (the model imitates scored examples), facts (the model extracts, code scores).

Each returns a ScoreResult with score, one-line reasoning, evidence quotes (checked
against the listing text) and provenance. Model output is untrusted: it is
validated, clamped, retried once, and otherwise reported as an error, never stored
as a score.
"""

from __future__ import annotations

import abc
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scoring import prompts, rules
from scoring.profile import Profile
from scoring.text import find_terms, html_to_text, is_grounded, listing_text


@dataclass
class ScoreResult:
    """One strategy's verdict on one listing, with its provenance."""

    score: int
    reasoning: str
    evidence: list[str]
    grounded: bool
    strategy: str
    provider: str
    model: str
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: dict = field(default_factory=dict)


class OutputError(ValueError):
    """The model's answer could not be used (not JSON, wrong shape, out of range)."""


def view(listing: dict, flags: dict[str, tuple[str, str]]) -> dict:
    """The listing fields and effective flags the strategies read."""
    loc = flags.get("location", ("loc:unknown", ""))
    focus = flags.get("focus", ("focus:tech", ""))
    return {
        "title": listing.get("title") or "",
        "company": listing.get("company") or "",
        "location": listing.get("location") or "",
        "description_html": listing.get("description_html") or "",
        "location_flag": loc[0].removeprefix("loc:"),
        "flags": {"location": loc, "focus": focus},
    }


def _texts(v: dict) -> tuple[str, ...]:
    return (v["title"], v["company"], v["location"], html_to_text(v["description_html"]))


_JSON_OBJ_RE = re.compile(r"\{.*\}", re.S)


def parse_json(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate a model's JSON answer; tolerate prose around a single object."""
    text = (text or "").strip()
    try:
        data = json.loads(text, strict=False)
    except RecursionError:
        raise OutputError("not JSON: nested too deeply") from None
    except json.JSONDecodeError:
        m = _JSON_OBJ_RE.search(text)
        if not m:
            raise OutputError(f"not JSON: {text[:80]!r}") from None
        try:
            data = json.loads(m.group(0), strict=False)
        except RecursionError:
            raise OutputError("not JSON: nested too deeply") from None
        except json.JSONDecodeError as exc:
            raise OutputError(f"not JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise OutputError(f"wrong shape: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None


class FewshotAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Out-of-range numbers are clamped rather than rejected: the rest of the answer is usable.
    score: float
    reasoning: str = ""
    evidence: str = ""


class FactsAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role_family: str
    role_quote: str = ""
    seniority: str = "unspecified"
    seniority_quote: str = ""
    work_mode: str = "unspecified"
    work_mode_quote: str = ""
    allowed_regions: str = ""
    stack: list[str] = Field(default_factory=list)


class Strategy(abc.ABC):
    """A way to score a listing."""

    name: ClassVar[str] = ""
    uses_model: ClassVar[bool] = False

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    @abc.abstractmethod
    def score(self, v: dict) -> ScoreResult:
        """Score one listing view (see `view`)."""


class RulesStrategy(Strategy):
    """Profile criteria and red flags with the location and focus flags: instant and deterministic."""

    name = "rules"

    def score(self, v: dict) -> ScoreResult:
        """Score with the profile's weights (fitted ones when present)."""
        t0 = time.perf_counter()
        facts = rules.ListingFacts(
            title=v["title"],
            description=listing_text(v["description_html"]),
            location_label=v["flags"]["location"][0],
            location_evidence=v["flags"]["location"][1] or "",
            focus_label=v["flags"]["focus"][0],
            focus_evidence=v["flags"]["focus"][1] or "",
        )
        r = rules.score(self.profile, facts)
        return ScoreResult(
            score=r.score,
            reasoning=r.reasoning,
            evidence=r.evidence,
            grounded=all(is_grounded(q.strip("…"), *_texts(v)) for q in r.evidence) if r.evidence else True,
            strategy=self.name,
            provider="rules",
            model=f"rules@{self.profile.weights_version}",
            latency_ms=int((time.perf_counter() - t0) * 1000),
            detail={"contributions": {k: round(c, 1) for k, c in r.contributions.items()}},
        )


class _ModelStrategy(Strategy):
    uses_model = True
    # Enough for the longest answer the schema allows (bounded strings), so JSON is never cut off.
    max_tokens: ClassVar[int] = 200

    def __init__(self, profile: Profile, engine) -> None:
        super().__init__(profile)
        self.engine = engine

    def _ask(self, messages, schema, answer_model, top_logprobs: int = 0):
        """Ask once, retry once on unusable output; returns (answer, completion, tokens used)."""
        used = [0, 0, 0]
        last_error = None
        for attempt in range(2):
            # The retry samples a little: at temperature 0 it would repeat the same answer.
            c = self.engine.complete(messages, json_schema=schema, max_tokens=self.max_tokens,
                                     temperature=0.0 if attempt == 0 else 0.4, top_logprobs=top_logprobs)
            used[0] += c.prompt_tokens
            used[1] += c.completion_tokens
            used[2] += c.latency_ms
            try:
                return parse_json(c.text, answer_model), c, used
            except OutputError as exc:
                last_error = exc
        raise OutputError(f"{self.engine.model}: {last_error}")


class FewshotStrategy(_ModelStrategy):
    """The local model reads the profile and scored examples and answers a score with reasoning."""

    name = "fewshot"

    def __init__(self, profile: Profile, engine, digit_scale: bool = False, use_logprobs: bool = False,
                 example_cap: int = 8) -> None:
        super().__init__(profile, engine)
        self.digit_scale = digit_scale or use_logprobs
        self.use_logprobs = use_logprobs
        self.examples = prompts.select_examples(profile.examples, example_cap)

    def score(self, v: dict) -> ScoreResult:
        """Score by imitation of the examples; with logprobs, the expected value over score digits."""
        messages = prompts.fewshot_messages(self.profile, v, self.examples, self.digit_scale)
        schema = prompts.fewshot_schema(self.digit_scale)
        answer, c, used = self._ask(messages, schema, FewshotAnswer, top_logprobs=5 if self.use_logprobs else 0)
        detail: dict = {}
        value = float(answer.score)
        if self.digit_scale:
            value = max(0.0, min(9.0, value)) * 100 / 9
        if self.use_logprobs and c.top_logprobs:
            dist = digit_distribution(c.top_logprobs)
            if dist:
                mean = sum(d * p for d, p in dist.items())
                spread = math.sqrt(sum(p * (d - mean) ** 2 for d, p in dist.items()))
                value = mean * 100 / 9
                detail["digit_distribution"] = {str(d): round(p, 3) for d, p in sorted(dist.items())}
                detail["spread"] = round(spread * 100 / 9, 1)
        quotes = [answer.evidence] if answer.evidence.strip() else []
        return ScoreResult(
            score=int(round(max(0.0, min(100.0, value)))),
            reasoning=answer.reasoning.strip()[:300],
            evidence=quotes,
            grounded=bool(quotes) and all(is_grounded(q, *_texts(v)) for q in quotes),
            strategy=self.name,
            provider=self.engine.provider,
            model=self.engine.model,
            latency_ms=used[2],
            prompt_tokens=used[0],
            completion_tokens=used[1],
            detail=detail,
        )


def digit_distribution(top_logprobs: list[dict[str, float]]) -> dict[int, float] | None:
    """Probabilities of the digits 0-9 at the first generated digit token, renormalized."""
    for alternatives in top_logprobs:
        if any(tok.strip().isdigit() for tok in alternatives):
            probs: dict[int, float] = {}
            for tok, lp in alternatives.items():
                t = tok.strip()
                if len(t) == 1 and t.isdigit():
                    probs[int(t)] = probs.get(int(t), 0.0) + math.exp(lp)
            total = sum(probs.values())
            return {d: p / total for d, p in probs.items()} if total > 0 else None
    return None


class FactsStrategy(_ModelStrategy):
    """The local model extracts facts; the score is computed from them, the flags and the profile's weights."""

    name = "facts"
    max_tokens = 360

    def score(self, v: dict) -> ScoreResult:
        """Extract role family, seniority, work mode, regions and stack; score them with the profile."""
        answer, c, used = self._ask(prompts.facts_messages(v), prompts.facts_schema(), FactsAnswer)
        p = self.profile
        loc_label = v["flags"]["location"][0]
        contributions = {
            loc_label: p.location_weights.get(loc_label, 0.0),
            f"family:{answer.role_family}": p.family_weights.get(answer.role_family, 0.0),
            f"seniority:{answer.seniority}": p.seniority_weights.get(answer.seniority, 0.0),
        }
        stack_text = ", ".join(answer.stack[:5])
        for crit in p.criteria + p.red_flags:
            if find_terms(stack_text, crit.terms, "stack"):
                contributions[f"stack:{crit.name}"] = crit.weight * rules.DESC_FACTOR
        raw = rules.BASE_SCORE + sum(contributions.values())
        quotes = [q for q in (answer.role_quote, answer.seniority_quote, answer.work_mode_quote) if q.strip()]
        grounded = bool(quotes) and all(is_grounded(q, *_texts(v)) for q in quotes)
        reasoning = (
            f"{answer.role_family.replace('_', '/')} role, {answer.seniority.replace('_', '/')}, "
            f"{answer.work_mode}; location {loc_label.removeprefix('loc:')}"
            + (f"; stack {stack_text}" if stack_text else "")
        )
        return ScoreResult(
            score=int(round(max(0.0, min(100.0, raw)))),
            reasoning=reasoning,
            evidence=quotes,
            grounded=grounded,
            strategy=self.name,
            provider=self.engine.provider,
            model=self.engine.model,
            latency_ms=used[2],
            prompt_tokens=used[0],
            completion_tokens=used[1],
            detail={"facts": answer.model_dump(), "contributions": contributions},
        )


STRATEGIES: dict[str, type[Strategy]] = {
    "rules": RulesStrategy,
    "fewshot": FewshotStrategy,
    "facts": FactsStrategy,
}
