"""Measure strategies against labeled listings (the shipped development set or the person's labels)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import config as config_mod
from scoring import metrics
from scoring.flags import compute_flags
from scoring.strategies import OutputError, ScoreResult, Strategy, view

DEV_SET = Path(__file__).resolve().parent.parent / "data" / "eval" / "listings_labeled.json"
# The development set's labels were given for a person in Berlin (EU citizen, CET).
DEV_PERSON = config_mod.Person(home_city="Berlin", home_country="DE", utc_offset=1.0)


@dataclass
class Labeled:
    """A listing with a reference score."""

    listing: dict
    label: int
    key: str = ""


@dataclass
class Evaluation:
    """One strategy's results over a labeled set."""

    strategy: str
    model: str
    summary: dict
    results: list[tuple[Labeled, ScoreResult | None, str | None]] = field(default_factory=list)
    latencies_ms: list[int] = field(default_factory=list)


def _fill_missing(item: dict) -> dict:
    # Some boards (HN) publish no title/location fields: read them from the text
    # the way the source parser does.
    if item.get("title") and item.get("location") is not None:
        return item
    try:
        from scraper.hn import parse_first_line
    except ImportError:  # parser not available: fall back to the text alone
        return {**item, "title": item.get("title") or "", "location": item.get("location") or ""}
    parsed = parse_first_line(item.get("description") or "")
    return {
        **item,
        "title": item.get("title") or parsed.title,
        "company": item.get("company") or parsed.company,
        "location": item.get("location") if item.get("location") is not None else parsed.location,
    }


def dev_set(path: str | Path = DEV_SET) -> list[Labeled]:
    """The shipped labeled listings, as listing dicts with description_html."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for item in data:
        item = _fill_missing(item)
        listing = {
            "title": item.get("title") or "",
            "company": item.get("company") or "",
            "location": item.get("location") or "",
            "description_html": item.get("description") or "",
        }
        out.append(Labeled(listing=listing, label=int(round(item["label"])), key=item["id"]))
    return out


def listing_view(listing: dict, cfg: config_mod.Config) -> dict:
    """The strategy view of a listing dict, with flags computed for `cfg`'s person."""
    from types import SimpleNamespace

    flags = {f.kind: (f.label, f.evidence) for f in compute_flags(SimpleNamespace(**listing), cfg)}
    return view(listing, flags)


def evaluate(strategy: Strategy, labeled: list[Labeled], cfg: config_mod.Config | None = None,
             progress=None) -> Evaluation:
    """Score every labeled listing and summarize agreement; failures count as unscored."""
    cfg = cfg or config_mod.Config(person=DEV_PERSON)
    results, preds, labels, lat = [], [], [], []
    valid = grounded = 0
    for i, item in enumerate(labeled):
        v = listing_view(item.listing, cfg)
        t0 = time.perf_counter()
        try:
            r = strategy.score(v)
            err = None
        except OutputError as exc:
            r, err = None, str(exc)
        lat.append(int((time.perf_counter() - t0) * 1000))
        results.append((item, r, err))
        if r is not None:
            valid += 1
            grounded += r.grounded
            preds.append(r.score)
            labels.append(item.label)
        if progress:
            progress(i + 1, len(labeled))
    summary = metrics.summary(preds, labels) if preds else {"n": 0}
    summary["valid_rate"] = round(valid / len(labeled), 3) if labeled else 0.0
    summary["grounded_rate"] = round(grounded / valid, 3) if valid else 0.0
    summary["median_s"] = round(median(lat) / 1000, 3) if lat else None
    model = results[0][1].model if results and results[0][1] else getattr(getattr(strategy, "engine", None), "model", strategy.name)
    return Evaluation(strategy=strategy.name, model=model, summary=summary, results=results, latencies_ms=lat)
