"""Prompts for the local model: a stable prefix first, the listing last.

The prefix (rubric, profile, examples) is byte-identical for every listing of a
profile version, so the engine reuses its KV cache and only the listing's tokens
cost time. Nothing per-listing, no timestamps, no ids in the prefix.
"""

from __future__ import annotations

from scoring.metrics import band
from scoring.profile import Example, Profile
from scoring.text import listing_text

RUBRIC = """Score how worth reading a job listing is for the candidate, 0-100:
85-100 strong match: right role family and seniority, location works.
65-84 plausible: mostly right but one real doubt (seniority, stack, or unclear location).
40-64 weak: adjacent role, or location unclear/doubtful, or big stack mismatch.
0-39 no: wrong role family, or location clearly impossible for the candidate."""

ROLE_FAMILIES = (
    "backend", "ml_ai", "data", "platform_devops", "fullstack", "frontend", "mobile", "qa", "security",
    "research", "management", "sales_marketing", "support", "design", "other_nontech",
)
SENIORITY = ("intern", "junior", "mid", "senior", "staff_principal", "lead_manager", "unspecified")
WORK_MODES = ("remote", "hybrid", "onsite", "unspecified")

# Characters of description per listing: every token costs ~15 ms on a 2-core CPU
# with a 1.5B model, and the first ~1,400 characters carry the role and its stack.
DESCRIPTION_BUDGET = 1400


def select_examples(examples: list[Example], cap: int = 8) -> list[Example]:
    """At most `cap` examples: human ones first (newest first), then the rest spread across score bands.

    The order is deterministic for a given profile so the prompt prefix stays cacheable.
    """
    human = sorted((e for e in examples if e.source == "human"), key=lambda e: e.created_at, reverse=True)
    chosen = human[:cap]
    rest = [e for e in examples if e.source != "human"]
    by_band: dict[str, list[Example]] = {}
    for e in sorted(rest, key=lambda e: (-e.score, e.title)):
        by_band.setdefault(band(e.score), []).append(e)
    # Round-robin over bands so a small cap still shows the whole scale.
    while len(chosen) < cap and any(by_band.values()):
        for name in ("strong", "plausible", "weak", "no"):
            if by_band.get(name) and len(chosen) < cap:
                chosen.append(by_band[name].pop(0))
    # Stable order in the prompt: by score descending, then title.
    return sorted(chosen, key=lambda e: (-e.score, e.title, e.company))


def _profile_block(profile: Profile) -> str:
    wants = "; ".join(f"{c.name} ({', '.join(c.terms[:4])})" for c in profile.criteria)
    avoid = "; ".join(f"{c.name} ({', '.join(c.terms[:4])})" for c in profile.red_flags)
    return f"Candidate: {profile.cv_summary}\nWants: {wants}\nAvoid: {avoid}"


def fewshot_messages(profile: Profile, listing: dict, examples: list[Example], digit_scale: bool = False) -> list[dict]:
    """Messages asking for {"score", "reasoning", "evidence"} given scored examples."""
    scale = "a digit 0-9 (0 = no fit, 9 = perfect fit)" if digit_scale else "an integer 0-100"
    lines = [RUBRIC, "", _profile_block(profile), "", "Scored examples:"]
    for e in examples:
        s = round(e.score / 11.2) if digit_scale else e.score
        lines.append(f"- {e.title} | {e.company} | {e.location or 'location not stated'} -> {s}: {e.reasoning}")
    lines += [
        "",
        f"Answer with JSON: score ({scale}) first, then reasoning (one line naming the decisive facts), "
        "then evidence (a short phrase copied exactly from the listing).",
    ]
    return [
        {"role": "system", "content": "\n".join(lines)},
        {"role": "user", "content": listing_block(listing)},
    ]


def fewshot_schema(digit_scale: bool = False) -> dict:
    """JSON schema for the few-shot answer, score first so it is decided before the prose."""
    score = {"type": "integer", "enum": list(range(10))} if digit_scale else {"type": "integer", "minimum": 0, "maximum": 100}
    return {
        "type": "object",
        "properties": {
            "score": score,
            # Bounded strings keep a rambling model's answer short and its JSON complete.
            "reasoning": {"type": "string", "maxLength": 150},
            "evidence": {"type": "string", "maxLength": 100},
        },
        "required": ["score", "reasoning", "evidence"],
    }


def facts_messages(listing: dict) -> list[dict]:
    """Messages asking the model to extract facts, not to judge fit."""
    system = (
        "Extract facts from a job listing. Do not judge whether it is a good job. "
        f"role_family: one of {', '.join(ROLE_FAMILIES)}. seniority: one of {', '.join(SENIORITY)}. "
        f"work_mode: one of {', '.join(WORK_MODES)}. allowed_regions: where candidates may live, "
        "as written, or 'unspecified'. stack: up to 5 technologies named in the listing. "
        "For role_family, seniority and work_mode give a short quote copied exactly from the listing."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": listing_block(listing)}]


def facts_schema() -> dict:
    """JSON schema for extracted facts, with enums wherever the answer is a choice."""
    quote = {"type": "string", "maxLength": 80}
    return {
        "type": "object",
        "properties": {
            "role_family": {"type": "string", "enum": list(ROLE_FAMILIES)},
            "role_quote": quote,
            "seniority": {"type": "string", "enum": list(SENIORITY)},
            "seniority_quote": quote,
            "work_mode": {"type": "string", "enum": list(WORK_MODES)},
            "work_mode_quote": quote,
            "allowed_regions": {"type": "string", "maxLength": 60},
            "stack": {"type": "array", "items": {"type": "string", "maxLength": 24}, "maxItems": 5},
        },
        "required": ["role_family", "role_quote", "seniority", "seniority_quote", "work_mode", "work_mode_quote",
                     "allowed_regions", "stack"],
    }


def listing_block(listing: dict) -> str:
    """The per-listing part of a prompt: header fields, flags, trimmed description."""
    desc = listing_text(listing.get("description_html") or "", DESCRIPTION_BUDGET)
    parts = [
        f"Title: {listing.get('title') or 'not stated'}",
        f"Company: {listing.get('company') or 'not stated'}",
        f"Location: {listing.get('location') or 'not stated'}",
    ]
    if listing.get("location_flag"):
        parts.append(f"Location check for the candidate: {listing['location_flag']}")
    parts.append(f"Description: {desc}")
    return "\n".join(parts)
