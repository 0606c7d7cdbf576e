"""The agreement report: how each strategy's scores agree with Claude's labels and with the person's.

Per strategy found in `scores` (and `hybrid`, the current score the dashboard shows):
n, MAE, Spearman and band agreement against each label set, and the share of
scores whose evidence was not found in the listing. Overall: how often listings
escalate to Claude and get overridden, and what Claude cost against scoring
everything with it. The same agreement per profile version shows the trend, and
two small charts (local vs reference scatter, score histogram) are computed here as
SVG geometry so the template only draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import db as storage
from scoring import learning, metrics
from scoring.learning import Label
from scoring.profile import Profile

STRATEGY_ORDER = ("rules", "fewshot", "facts", "claude", "hybrid")
LOCAL_STRATEGIES = ("rules", "fewshot", "facts")
# Profile versions shown in the trend table, newest last.
MAX_VERSIONS = 12


@dataclass(frozen=True)
class Scored:
    """One strategy's latest score of a listing."""

    score: int
    grounded: bool


def strategy_scores(db: storage.Database, strategy: str, profile_version: str | None = None) -> dict[int, Scored]:
    """The latest score per listing of a strategy (of one profile version if given); `hybrid` is the current score."""
    if strategy == "hybrid":
        rows = db.conn.execute(
            "SELECT cs.listing_id, s.score, s.grounded FROM current_scores cs JOIN scores s ON s.id = cs.score_id"
            " WHERE s.strategy != 'human'"
        )
    else:
        sql = "SELECT max(id) FROM scores WHERE strategy = ?"
        args: list = [strategy]
        if profile_version is not None:
            sql += " AND profile_version = ?"
            args.append(profile_version)
        rows = db.conn.execute(
            f"SELECT listing_id, score, grounded FROM scores WHERE id IN ({sql} GROUP BY listing_id)", args
        )
    return {lid: Scored(int(score), grounded != 0) for lid, score, grounded in rows}


def agreement(pred: dict[int, Scored], labels: dict[int, Label]) -> dict:
    """n, MAE, Spearman and band agreement over the listings that have both a score and a label."""
    common = sorted(set(pred) & set(labels))
    if not common:
        return {"n": 0}
    p = [pred[lid].score for lid in common]
    y = [labels[lid].score for lid in common]
    return {
        "n": len(common),
        "mae": round(metrics.mae(p, y), 1),
        "spearman": round(metrics.spearman(p, y), 3),
        "band_agreement": round(metrics.band_agreement(p, y), 3),
    }


def strategies_present(db: storage.Database) -> list[str]:
    """Strategies with stored scores, in display order, with `hybrid` when anything has a current score."""
    found = {r[0] for r in db.conn.execute("SELECT DISTINCT strategy FROM scores")}
    if db.conn.execute("SELECT 1 FROM current_scores LIMIT 1").fetchone():
        found.add("hybrid")
    found.discard("human")
    return [s for s in STRATEGY_ORDER if s in found] + sorted(found - set(STRATEGY_ORDER))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def spend(db: storage.Database, scored_listings: int) -> dict:
    """Claude dollars spent so far, and what scoring every scored listing with Claude would have cost."""
    spent = db.conn.execute(
        "SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE provider = 'anthropic'"
    ).fetchone()[0]
    # The same per-listing price as the spend page: successful calls about one listing.
    avg, calls = db.conn.execute(
        "SELECT avg(cost_usd), count(*) FROM llm_calls WHERE provider = 'anthropic' AND status = 'ok'"
        " AND listing_id IS NOT NULL"
    ).fetchone()
    per_listing = float(avg) if calls else None
    return {
        "spent_usd": round(float(spent), 4),
        "per_listing_usd": round(per_listing, 6) if per_listing is not None else None,
        "all_claude_usd": round(per_listing * scored_listings, 4) if per_listing is not None else None,
    }


def over_time(db: storage.Database, claude: dict[int, Label], human: dict[int, Label],
              max_versions: int = MAX_VERSIONS) -> list[dict]:
    """Agreement per profile version (oldest first) and strategy, against today's labels."""
    versions = [r[0] for r in db.conn.execute(
        "SELECT profile_version, min(created_at) AS first FROM scores WHERE profile_version IS NOT NULL"
        " AND strategy != 'human' GROUP BY profile_version ORDER BY first, profile_version"
    )][-max_versions:]
    rows = []
    for version in versions:
        first = db.conn.execute(
            "SELECT min(created_at) FROM scores WHERE profile_version = ?", [version]
        ).fetchone()[0]
        present = [r[0] for r in db.conn.execute(
            "SELECT DISTINCT strategy FROM scores WHERE profile_version = ? AND strategy != 'human'", [version]
        )]
        for strategy in [s for s in STRATEGY_ORDER if s in present] + sorted(set(present) - set(STRATEGY_ORDER)):
            pred = strategy_scores(db, strategy, version)
            rows.append({
                "profile_version": version, "first_scored": first or "", "strategy": strategy, "scored": len(pred),
                "vs_claude": agreement(pred, claude) if strategy != "claude" else {"n": 0},
                "vs_person": agreement(pred, human),
            })
    return rows


def build(db: storage.Database, prof: Profile | None = None, settings: dict | None = None,
          chart_strategy: str | None = None) -> dict:
    """Everything the /calibration page shows."""
    ls = learning.settings_from(settings)
    claude = learning.claude_labels(db, prof)
    human = learning.human_labels(db)
    present = strategies_present(db)
    rows = []
    for strategy in present:
        pred = strategy_scores(db, strategy)
        ungrounded = sum(1 for s in pred.values() if not s.grounded)
        rows.append({
            "strategy": strategy,
            "scored": len(pred),
            "ungrounded_rate": _rate(ungrounded, len(pred)),
            # Claude against its own labels says nothing.
            "vs_claude": agreement(pred, claude) if strategy != "claude" else {"n": 0},
            "vs_person": agreement(pred, human),
        })
    scored_listings = db.conn.execute("SELECT count(*) FROM current_scores").fetchone()[0]
    escalations = db.conn.execute("SELECT count(*) FROM escalations").fetchone()[0]
    hybrid = next((r for r in rows if r["strategy"] == "hybrid"), None)
    vs_person = hybrid["vs_person"] if hybrid else {"n": 0}
    recalibrate = (vs_person["n"] >= ls.recalibrate_min_labels and vs_person["spearman"] < ls.recalibrate_below)
    local = [s for s in present if s in LOCAL_STRATEGIES]
    if chart_strategy not in present:
        chart_strategy = _newest_local(db) or (local[0] if local else (present[0] if present else None))
    reference = {**claude, **human}
    return {
        "rows": rows,
        "labels": {"claude": len(claude), "person": len(human)},
        "scored_listings": scored_listings,
        "escalations": escalations,
        "escalation_rate": _rate(escalations, scored_listings),
        "override_rate": _rate(len(human), scored_listings),
        "spend": spend(db, scored_listings),
        "over_time": over_time(db, claude, human),
        "recalibrate": recalibrate,
        "recalibrate_below": ls.recalibrate_below,
        "recalibrate_min_labels": ls.recalibrate_min_labels,
        "person_agreement": vs_person,
        "problems": list(ls.problems),
        "strategies": present,
        "chart_strategy": chart_strategy,
        "scatter": scatter(strategy_scores(db, chart_strategy) if chart_strategy else {}, reference),
        "histogram": histogram([s.score for s in strategy_scores(db, "hybrid").values()]),
    }


def _newest_local(db: storage.Database) -> str | None:
    marks = ",".join("?" * len(LOCAL_STRATEGIES))
    row = db.conn.execute(
        f"SELECT strategy FROM scores WHERE strategy IN ({marks}) ORDER BY id DESC LIMIT 1", LOCAL_STRATEGIES
    ).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- charts (SVG geometry)

CHART_SIZE = 300
CHART_PAD = 36
BAND_LINES = (40, 65, 85)
AXIS_TICKS = (0, 40, 65, 85, 100)


def _x(value: float, size: int = CHART_SIZE, pad: int = CHART_PAD) -> float:
    return round(pad + value / 100 * (size - 2 * pad), 1)


def _y(value: float, size: int = CHART_SIZE, pad: int = CHART_PAD) -> float:
    return round(size - pad - value / 100 * (size - 2 * pad), 1)


def scatter(pred: dict[int, Scored], reference: dict[int, Label]) -> dict:
    """Points of local score (y) against reference label (x), with axes, band lines and the diagonal."""
    points = []
    for lid in sorted(set(pred) & set(reference)):
        label, local = reference[lid], pred[lid].score
        points.append({
            "listing_id": lid, "x": label.score, "y": local, "source": label.source,
            "cx": _x(label.score), "cy": _y(local),
        })
    lo, hi = CHART_PAD, CHART_SIZE - CHART_PAD
    return {
        "size": CHART_SIZE, "lo": lo, "hi": hi, "points": points,
        "ticks": [{"value": t, "x": _x(t), "y": _y(t)} for t in AXIS_TICKS],
        "bands": [{"value": b, "x": _x(b), "y": _y(b)} for b in BAND_LINES],
    }


def histogram(scores: list[int], bins: int = 10) -> dict:
    """Counts of scores in equal bins over 0-100 (the last bin holds 100), as bars."""
    counts = [0] * bins
    width = 100 / bins
    for s in scores:
        counts[min(bins - 1, int(max(0, min(100, s)) // width))] += 1
    top = max(counts) if counts and max(counts) else 1
    inner = CHART_SIZE - 2 * CHART_PAD
    bar_w = inner / bins
    bars = []
    for i, n in enumerate(counts):
        h = round(n / top * inner, 1)
        bars.append({
            "lo": int(i * width), "hi": int((i + 1) * width) - (1 if i < bins - 1 else 0), "count": n,
            "x": round(CHART_PAD + i * bar_w + 1, 1), "y": round(CHART_SIZE - CHART_PAD - h, 1),
            "width": round(bar_w - 2, 1), "height": h,
            "band": metrics.band(i * width),
        })
    return {"size": CHART_SIZE, "lo": CHART_PAD, "hi": CHART_SIZE - CHART_PAD, "bars": bars, "max": top,
            "total": len(scores)}
