"""Calibration: Claude reads a CV once, derives a scoring profile, and scores a diverse sample of stored listings.

The scored sample becomes the profile's examples (they teach the local model and
any weight fit) and measures how well the derived rules agree with Claude. Work in
progress is saved under instance/calibration/, so an interrupted run, or a batch
still processing, continues where it stopped when run again with the same CV.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import db as storage
from scoring import metrics
from scoring import profile as profile_mod
from scoring.claude import ClaudeClient, ClaudeError, InvalidOutput, OverBudget, Transient
from scoring.ledger import over_budget
from scoring.metrics import band
from scoring.profile import Example, Profile
from scoring.strategies import RulesStrategy, ScoreResult
from scoring.text import listing_text

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = 40
EXCERPT_CHARS = 400
# Consecutive failed polls of a batch before giving up for now (the batch id is kept).
MAX_POLL_FAILURES = 5
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class CalibrationError(ValueError):
    """Calibration cannot start or continue; the message says why and what to do."""


@dataclass
class CalibrationState:
    """Progress of a calibration, polled by the UI."""

    running: bool = False
    phase: str = ""  # deriving | scoring | batch | saving | done | error
    done: int = 0
    total: int = 0
    message: str = ""
    error: str = ""
    result: dict = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Called with a snapshot after every change (the CLI prints progress with it).
    on_change: Callable[[dict], None] | None = field(default=None, repr=False)

    def update(self, **changes) -> None:
        """Change fields under the lock, then tell the listener."""
        with self.lock:
            for k, v in changes.items():
                setattr(self, k, v)
        if self.on_change is not None:
            self.on_change(self.snapshot())

    def snapshot(self) -> dict:
        """A copy safe to render while calibration runs."""
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k not in ("lock", "on_change")}


STATE = CalibrationState()
_RUN_LOCK = threading.Lock()


def sample(db: storage.Database, n: int = DEFAULT_SAMPLE, seed: int = 0) -> list[int]:
    """A diverse sample of stored listings: spread over sources, location and focus flags and rules-score bands.

    Greedy: each pick is the listing whose source, flags and band have been picked
    least so far, ties broken by a seeded shuffle, so the same seed gives the same sample.
    """
    rows = db.conn.execute(
        """
        SELECT l.id, l.source, coalesce(fo.label, fl.label, 'loc:unknown'), coalesce(ffo.label, ff.label, 'focus:tech'),
               (SELECT s.score FROM scores s WHERE s.listing_id = l.id AND s.strategy = 'rules'
                ORDER BY s.id DESC LIMIT 1)
        FROM listings l
        LEFT JOIN flags fl ON fl.listing_id = l.id AND fl.kind = 'location'
        LEFT JOIN flags ff ON ff.listing_id = l.id AND ff.kind = 'focus'
        LEFT JOIN flag_overrides fo ON fo.listing_id = l.id AND fo.kind = 'location'
        LEFT JOIN flag_overrides ffo ON ffo.listing_id = l.id AND ffo.kind = 'focus'
        WHERE l.stale = 0
        ORDER BY l.id
        """
    ).fetchall()
    rng = random.Random(seed)
    candidates = [
        (lid, (("source", src), ("loc", loc), ("focus", focus),
               ("band", band(score) if score is not None else "unscored")))
        for lid, src, loc, focus, score in rows
    ]
    rng.shuffle(candidates)
    picked: list[int] = []
    seen: Counter = Counter()
    remaining = candidates
    while remaining and len(picked) < n:
        best_i = min(range(len(remaining)), key=lambda i: sum(seen[a] for a in remaining[i][1]))
        lid, attrs = remaining.pop(best_i)
        picked.append(lid)
        seen.update(attrs)
    return picked


def _state_path(instance_path: str | Path, cv_name: str) -> Path:
    return Path(instance_path) / "calibration" / f"{cv_name}.json"


def _write_state(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def _load_state(path: Path, cv_sha: str) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("calibration: %s is unreadable; starting over", path)
        return None
    if data.get("cv_sha") != cv_sha:
        log.info("calibration: the CV changed since the saved run; starting over")
        return None
    return data


def _result_dict(r: ScoreResult) -> dict:
    return {"score": r.score, "reasoning": r.reasoning, "evidence": r.evidence, "grounded": r.grounded,
            "model": r.model, "latency_ms": r.latency_ms, "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens, "detail": r.detail}


def run(db: storage.Database, client: ClaudeClient, cv_text: str, cv_name: str, instance_path: str | Path,
        sample_n: int = DEFAULT_SAMPLE, batch: bool = False, seed: int = 0, poll_s: float = 30.0,
        ignore_budget: bool = False, state: CalibrationState | None = None, sleep=time.sleep) -> dict:
    """Derive a profile from the CV, score a diverse sample with Claude, save the profile and its agreement report."""
    state = state if state is not None else STATE
    if not _NAME_RE.fullmatch(cv_name or ""):
        raise CalibrationError("the CV name may use letters, digits, '.', '_' and '-' only (it names a file)")
    if not (cv_text or "").strip():
        raise CalibrationError("the CV is empty")
    if sample_n < 1:
        raise CalibrationError("the sample needs at least one listing")
    if not _RUN_LOCK.acquire(blocking=False):
        raise CalibrationError("a calibration is already running")
    started_iso = storage.now_iso()
    state.update(running=True, phase="deriving", done=0, total=0, message="", error="", result={},
                 started_at=time.time(), finished_at=0.0)
    try:
        result = _run(db, client, cv_text, cv_name, Path(instance_path), sample_n, batch, seed, poll_s,
                      ignore_budget, state, sleep, started_iso)
        state.update(phase="done", result=result, message=f"saved profile {cv_name}")
        return result
    except (ClaudeError, CalibrationError) as exc:
        state.update(phase="error", error=str(exc))
        raise
    finally:
        state.update(running=False, finished_at=time.time())
        _RUN_LOCK.release()


def _run(db, client, cv_text, cv_name, instance, sample_n, batch, seed, poll_s, ignore_budget, state, sleep,
         started_iso) -> dict:
    from scoring.queue import listing_views, record_evaluation

    settings = client.settings
    if not ignore_budget and over_budget(db, settings.monthly_budget_usd):
        raise OverBudget("this month's Claude budget is reached; raise monthly_budget_usd or confirm to go past it")
    cv_sha = hashlib.sha256(cv_text.strip().encode()).hexdigest()
    spath = _state_path(instance, cv_name)
    saved = _load_state(spath, cv_sha)
    if saved:
        profile = Profile.model_validate(saved["profile"])
        ids = saved["listing_ids"]
        state.update(message=f"continuing the saved calibration ({len(saved.get('scored', {}))}/{len(ids)} scored)")
    else:
        profile = client.derive_profile(cv_text, cv_name)
        ids = sample(db, sample_n, seed)
        if not ids:
            raise CalibrationError("no listings are stored yet: fetch some first, then calibrate")
        saved = {"cv_sha": cv_sha, "profile": profile.model_dump(mode="json"), "listing_ids": ids, "scored": {}}
        _write_state(spath, saved)
    views = listing_views(db, ids)
    ids = [lid for lid in ids if lid in views]
    scored: dict[str, dict] = saved.setdefault("scored", {})
    invalid = 0
    todo = [lid for lid in ids if str(lid) not in scored]
    state.update(phase="batch" if batch else "scoring", done=len(ids) - len(todo), total=len(ids))
    if batch and todo:
        invalid = _score_batch(client, profile, views, todo, saved, spath, poll_s, state, sleep)
    else:
        for lid in todo:
            try:
                r = client.score(views[lid], profile, purpose="calibrate", listing_id=lid)
            except InvalidOutput:
                invalid += 1
                continue
            except Transient as exc:
                raise CalibrationError(
                    f"{exc}; {len(scored)} listings are scored and saved: run again to continue") from None
            scored[str(lid)] = _result_dict(r)
            _write_state(spath, saved)
            state.update(done=len(scored))
    if not scored:
        raise CalibrationError("Claude scored none of the sampled listings; see the spend page for the errors")

    state.update(phase="saving")
    pdir = instance / "scoring_profiles"
    existing = pdir / f"{cv_name}.json"
    kept = []
    if existing.exists():
        try:
            # The person's own verdicts stay; Claude's examples are replaced by the new sample.
            kept = [e for e in profile_mod.load(existing).examples if e.source == "human"]
        except ValueError as exc:
            log.warning("calibration: %s", exc)
    at = storage.now_iso()
    examples = list(kept)
    for lid in ids:
        s = scored.get(str(lid))
        if s is None:
            continue
        v = views[lid]
        examples.append(Example(title=v["title"], company=v["company"], location=v["location"], score=s["score"],
                                reasoning=s["reasoning"], source="claude", listing_id=lid,
                                excerpt=listing_text(v["description_html"], EXCERPT_CHARS), created_at=at))
    profile = profile.model_copy(update={"examples": examples})
    path = profile_mod.save(profile, pdir)

    rules = RulesStrategy(profile)
    preds, labels, grounded = [], [], 0
    for lid in ids:
        s = scored.get(str(lid))
        if s is None:
            continue
        rr = rules.score(views[lid])
        preds.append(rr.score)
        labels.append(s["score"])
        grounded += rr.grounded
        storage.save_score(
            db, lid, strategy="claude", provider="anthropic", model=s["model"], profile_version=profile.version,
            score=s["score"], reasoning=s["reasoning"], evidence=s["evidence"], grounded=int(s["grounded"]),
            latency_ms=s["latency_ms"], prompt_tokens=s["prompt_tokens"], completion_tokens=s["completion_tokens"],
            detail=s["detail"],
        )
    summary = metrics.summary(preds, labels)
    summary["valid_rate"] = round(len(scored) / len(ids), 3)
    summary["grounded_rate"] = round(grounded / len(preds), 3)
    record_evaluation(db, summary, "rules", f"rules@{profile.weights_version}", profile.version, "person")
    cost = db.conn.execute(
        "SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE purpose = 'calibrate' AND created_at >= ?",
        [started_iso],
    ).fetchone()[0]
    spath.unlink(missing_ok=True)
    return {
        "profile_path": str(path), "cv_name": cv_name, "profile_version": profile.version,
        "sampled": len(ids), "scored": len(scored), "invalid": invalid, "agreement": summary,
        "cost_usd": round(float(cost), 4), "batch": batch,
    }


def _score_batch(client, profile, views, todo, saved, spath, poll_s, state, sleep) -> int:
    """Score `todo` through the Message Batches API (half price); the batch id is saved before polling."""
    batch_id = saved.get("batch_id")
    if not batch_id:
        requests = [client.batch_request(f"listing-{lid}", views[lid], profile) for lid in todo]
        batch_id = client.create_batch(requests)
        saved["batch_id"] = batch_id
        _write_state(spath, saved)
        log.info("calibration: batch %s submitted with %d requests", batch_id, len(todo))
    failures = 0
    while True:
        try:
            p = client.batch_progress(batch_id)
            failures = 0
        except Transient as exc:
            failures += 1
            if failures >= MAX_POLL_FAILURES:
                raise CalibrationError(f"{exc}; batch {batch_id} is saved: run again to continue") from None
            sleep(poll_s)
            continue
        finished = p["succeeded"] + p["errored"] + p["canceled"] + p["expired"]
        state.update(done=len(saved["scored"]) + finished, message=f"batch {batch_id}: {p['status']}")
        if p["status"] == "ended":
            break
        sleep(poll_s)
    by_custom = {f"listing-{lid}": (lid, views[lid]) for lid in todo}
    results = client.batch_scores(batch_id, by_custom, profile)
    invalid = 0
    for custom_id, r in results.items():
        lid = by_custom[custom_id][0]
        if isinstance(r, ScoreResult):
            saved["scored"][str(lid)] = _result_dict(r)
        else:
            invalid += isinstance(r, InvalidOutput)
    # The batch is spent: a re-run scores whatever it left out with a new request.
    saved.pop("batch_id", None)
    _write_state(spath, saved)
    state.update(done=len(saved["scored"]))
    return invalid
