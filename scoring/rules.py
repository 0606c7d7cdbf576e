"""The `rules` strategy: a deterministic score from the profile's criteria and the flags.

Every criterion and red flag is a named feature (matched in the title, or only in
the description); the location and focus labels are features too. The score is a
linear function of those features: the profile's own weights, or weights refitted
to labels with a ridge penalty that pulls them toward the profile's (so a handful
of labels nudges the weights instead of replacing them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from scoring.profile import FOCUS_LABELS, LOCATION_LABELS, Profile, Weights
from scoring.text import find_terms, listing_text, snippet

BASE_SCORE = 50.0
# A term seen only in the description counts for less than one in the title:
# titles name the role, descriptions mention everything the company uses.
DESC_FACTOR = 0.5
RED_FLAG_DESC_FACTOR = 0.35


@dataclass
class ListingFacts:
    """What the rules read from one listing."""

    title: str
    description: str
    location_label: str
    location_evidence: str
    focus_label: str
    focus_evidence: str


@dataclass
class RuleScore:
    """A score with the reasoning and the quotes behind it."""

    score: int
    reasoning: str
    evidence: list[str]
    features: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)


def _feature_names(profile: Profile) -> list[str]:
    names = []
    for c in profile.criteria + profile.red_flags:
        names += [f"{c.name}|title", f"{c.name}|description"]
    names += list(LOCATION_LABELS) + list(FOCUS_LABELS)
    return names


def prior_coef(profile: Profile) -> dict[str, float]:
    """The linear weights the profile states, before any fit."""
    coef = {}
    for c in profile.criteria:
        coef[f"{c.name}|title"] = c.weight
        coef[f"{c.name}|description"] = c.weight * DESC_FACTOR
    for c in profile.red_flags:
        coef[f"{c.name}|title"] = c.weight
        coef[f"{c.name}|description"] = c.weight * RED_FLAG_DESC_FACTOR
    for label in LOCATION_LABELS:
        coef[label] = profile.location_weights.get(label, 0.0)
    for label in FOCUS_LABELS:
        coef[label] = profile.focus_weights.get(label, 0.0)
    return coef


def features(profile: Profile, facts: ListingFacts) -> tuple[dict[str, float], dict[str, list]]:
    """Feature values for one listing and the matches behind each."""
    values: dict[str, float] = {}
    matches: dict[str, list] = {}
    for c in profile.criteria + profile.red_flags:
        in_title = find_terms(facts.title, c.terms, "title")
        in_desc = [] if in_title else find_terms(facts.description, c.terms, "description")
        values[f"{c.name}|title"] = 1.0 if in_title else 0.0
        values[f"{c.name}|description"] = 1.0 if in_desc else 0.0
        if in_title or in_desc:
            matches[c.name] = in_title or in_desc
    for label in LOCATION_LABELS:
        values[label] = 1.0 if facts.location_label == label else 0.0
    for label in FOCUS_LABELS:
        values[label] = 1.0 if facts.focus_label == label else 0.0
    return values, matches


def score(profile: Profile, facts: ListingFacts) -> RuleScore:
    """Score one listing with the profile's fitted weights if it has them, else its stated ones."""
    values, matches = features(profile, facts)
    if profile.weights is not None:
        intercept, coef = profile.weights.intercept, profile.weights.coef
    else:
        intercept, coef = BASE_SCORE, prior_coef(profile)
    contributions = {k: coef.get(k, 0.0) * v for k, v in values.items() if v}
    raw = intercept + sum(contributions.values())
    final = int(round(max(0.0, min(100.0, raw))))

    wants, flags_hit, evidence = [], [], []
    for c in profile.criteria:
        if c.name in matches:
            m = matches[c.name][0]
            wants.append(f"{c.name} ('{m.quote}' in {m.field})")
            evidence.append(m.quote if m.field == "title" else snippet(facts.description, m.start, len(m.quote), 30))
    for c in profile.red_flags:
        if c.name in matches:
            m = matches[c.name][0]
            flags_hit.append(f"{c.name} ('{m.quote}' in {m.field})")
            evidence.append(m.quote if m.field == "title" else snippet(facts.description, m.start, len(m.quote), 30))
    loc = facts.location_label.removeprefix("loc:")
    parts = [f"location {loc}" + (f" ('{facts.location_evidence}')" if facts.location_evidence else "")]
    parts.append(facts.focus_label.removeprefix("focus:") + " role")
    if wants:
        parts.append("matches " + ", ".join(wants[:4]))
    if flags_hit:
        parts.append("red flags " + ", ".join(flags_hit[:3]))
    if facts.location_evidence:
        evidence.append(facts.location_evidence)
    return RuleScore(
        score=final,
        reasoning="; ".join(parts),
        evidence=evidence,
        features=values,
        contributions=contributions,
    )


def fit(profile: Profile, labeled: list[tuple[ListingFacts, int]], strength: float = 4.0) -> Weights:
    """Refit the linear weights to labels, pulled toward the profile's stated weights.

    Minimizes |y - b0 - Xb|^2 + strength * |b - prior|^2 (intercept unpenalized),
    so with few labels the weights stay near what the profile says.
    """
    if not labeled:
        raise ValueError("no labeled listings to fit weights to")
    names = _feature_names(profile)
    prior = prior_coef(profile)
    p = np.array([prior.get(n, 0.0) for n in names])
    rows = [features(profile, f)[0] for f, _ in labeled]
    X = np.array([[r[n] for n in names] for r in rows])
    y = np.array([float(label) for _, label in labeled])
    # Solve with the prior subtracted so the penalty is |b'|^2 around zero.
    r = y - BASE_SCORE - X @ p
    Xc = X - X.mean(axis=0)
    rc = r - r.mean()
    A = Xc.T @ Xc + strength * np.eye(len(names))
    delta = np.linalg.solve(A, Xc.T @ rc)
    coef = p + delta
    intercept = float(BASE_SCORE + r.mean() - X.mean(axis=0) @ delta)
    return Weights(
        intercept=round(intercept, 4),
        coef={n: round(float(c), 4) for n, c in zip(names, coef)},
        n_labels=len(labeled),
        fitted_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    )


def facts_from_listing(item, flags: dict[str, tuple[str, str]]) -> ListingFacts:
    """ListingFacts from a listing (row or object) and its effective flags {kind: (label, evidence)}."""
    get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
    loc = flags.get("location", ("loc:unknown", ""))
    focus = flags.get("focus", ("focus:tech", ""))
    return ListingFacts(
        title=get("title") or "",
        description=listing_text(get("description_html") or ""),
        location_label=loc[0],
        location_evidence=loc[1] or "",
        focus_label=focus[0],
        focus_evidence=focus[1] or "",
    )
