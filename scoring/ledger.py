"""The cost ledger: every Claude call is a row in `llm_calls`, priced, so spend is known and capped.

Token columns follow the Messages API usage block: `prompt_tokens` is the uncached
input (`input_tokens`), `cache_write_tokens` and `cache_read_tokens` are the prefix
tokens written to and read from the prompt cache, `completion_tokens` the output.
Each kind has its own price, so the cost of a call is their weighted sum.
Months and days are UTC, like every timestamp in the database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import db as storage

log = logging.getLogger(__name__)

# Anthropic list prices in $ per million tokens (5-minute cache writes), checked
# 2026-11-25. The person's [scoring.prices."<model>"] table overrides them; they
# change, so check them. Sonnet 4.5 stays priced for configs that still name it.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write": 1.25, "cache_read": 0.10},
    "claude-sonnet-4-6": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30},
    "claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30},
}
# The Message Batches API bills every token kind at half price.
DEFAULT_BATCH_DISCOUNT = 0.5
PRICE_KINDS = ("input", "output", "cache_write", "cache_read")

_warned_unpriced: set[str] = set()
_warn_lock = threading.Lock()


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed, by kind."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_prompt(self) -> int:
        """All input tokens, cached or not."""
        return self.prompt_tokens + self.cache_read_tokens + self.cache_write_tokens


def price_for(model: str, prices: dict[str, dict[str, float]]) -> dict[str, float]:
    """The price row of a model: exact id, else the longest known id it starts with (dated ids), else the dearest."""
    if model in prices:
        return prices[model]
    candidates = sorted((m for m in prices if model.startswith(m)), key=len, reverse=True)
    if candidates:
        return prices[candidates[0]]
    # An unknown model must never look free to the budget: assume the dearest known price.
    with _warn_lock:
        if model not in _warned_unpriced:
            _warned_unpriced.add(model)
            log.warning("no price known for model %s: costing it at the dearest known price; "
                        "add [scoring.prices.\"%s\"] to config.toml", model, model)
    return max(prices.values(), key=lambda p: p["output"]) if prices else dict.fromkeys(PRICE_KINDS, 0.0)


def cost(model: str, usage: Usage, prices: dict[str, dict[str, float]], batch: bool = False,
         batch_discount: float = DEFAULT_BATCH_DISCOUNT) -> float:
    """Dollar cost of one call."""
    p = price_for(model, prices)
    dollars = (
        usage.prompt_tokens * p["input"]
        + usage.completion_tokens * p["output"]
        + usage.cache_write_tokens * p["cache_write"]
        + usage.cache_read_tokens * p["cache_read"]
    ) / 1_000_000
    if batch:
        dollars *= 1.0 - batch_discount
    return round(dollars, 8)


@dataclass
class CallRecord:
    """One Claude call as the ledger stores it."""

    model: str
    purpose: str  # calibrate | escalate | rescore
    status: str  # ok | invalid | rate_limited | timeout | error
    listing_id: int | None = None
    error: str = ""
    usage: Usage = Usage()
    cost_usd: float = 0.0
    latency_ms: int | None = None


def record(db: storage.Database, call: CallRecord) -> int:
    """Append one call to llm_calls; returns its id."""
    with storage.write(db):
        cur = db.conn.execute(
            "INSERT INTO llm_calls (provider, model, purpose, listing_id, status, error, prompt_tokens,"
            " completion_tokens, cache_read_tokens, cache_write_tokens, cost_usd, latency_ms, created_at)"
            " VALUES ('anthropic',?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                call.model, call.purpose, call.listing_id, call.status, call.error or None,
                call.usage.prompt_tokens, call.usage.completion_tokens, call.usage.cache_read_tokens,
                call.usage.cache_write_tokens, call.cost_usd, call.latency_ms, storage.now_iso(),
            ),
        )
        return cur.lastrowid


class Recorder:
    """Writes call records from any thread, each thread on its own connection."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = str(db_path)
        self._local = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()

    def __call__(self, call: CallRecord) -> int:
        """Record one call."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = storage.connect(self.db_path, migrate_now=False)
            self._local.db = db
            with self._lock:
                self._opened.append(db)
        return record(db, call)

    def close(self) -> None:
        """Close every connection this recorder opened."""
        with self._lock:
            for db in self._opened:
                db.conn.close()
            self._opened.clear()
        self._local = threading.local()


def _month_start(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y-%m-01")


def _day_start(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%d")


def month_spend(db: storage.Database, now: datetime | None = None) -> float:
    """Dollars spent on Claude this calendar month (UTC)."""
    row = db.conn.execute(
        "SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE provider = 'anthropic' AND created_at >= ?",
        [_month_start(now)],
    ).fetchone()
    return float(row[0])


def over_budget(db: storage.Database, monthly_budget_usd: float, now: datetime | None = None) -> bool:
    """True once this month's spend has reached the budget."""
    return month_spend(db, now) >= monthly_budget_usd


def _usage_rows(db: storage.Database, since: str) -> list[dict]:
    rows = db.query(
        "SELECT model, count(*) AS calls, sum(status = 'ok') AS ok_calls,"
        " coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
        " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
        " coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,"
        " coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,"
        " coalesce(sum(cost_usd), 0) AS cost_usd"
        " FROM llm_calls WHERE provider = 'anthropic' AND created_at >= ? GROUP BY model ORDER BY model",
        [since],
    )
    out = []
    for r in rows:
        prompt_all = r["prompt_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]
        r["cache_hit_share"] = round(r["cache_read_tokens"] / prompt_all, 3) if prompt_all else 0.0
        r["cost_usd"] = round(r["cost_usd"], 4)
        out.append(r)
    return out


def _totals(rows: list[dict]) -> dict:
    keys = ("calls", "ok_calls", "prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens")
    t = {k: sum(r[k] or 0 for r in rows) for k in keys}
    t["cost_usd"] = round(sum(r["cost_usd"] for r in rows), 4)
    prompt_all = t["prompt_tokens"] + t["cache_read_tokens"] + t["cache_write_tokens"]
    t["cache_hit_share"] = round(t["cache_read_tokens"] / prompt_all, 3) if prompt_all else 0.0
    return t


def summary(db: storage.Database, monthly_budget_usd: float, now: datetime | None = None) -> dict:
    """Spend today and this month per model, the budget, and the saving against scoring everything with Claude."""
    today = _usage_rows(db, _day_start(now))
    month = _usage_rows(db, _month_start(now))
    month_total = _totals(month)
    # What one listing costs when Claude scores it, over all successful listing calls so far.
    per_listing = db.conn.execute(
        "SELECT avg(cost_usd), count(*) FROM llm_calls WHERE provider = 'anthropic' AND status = 'ok'"
        " AND listing_id IS NOT NULL"
    ).fetchone()
    local_scored = db.conn.execute(
        "SELECT count(*) FROM current_scores WHERE strategy NOT IN ('claude', 'human')"
    ).fetchone()[0]
    avg_cost = float(per_listing[0]) if per_listing[1] else None
    return {
        "today": today,
        "today_total": _totals(today),
        "month": month,
        "month_total": month_total,
        "budget_usd": monthly_budget_usd,
        "budget_left_usd": round(max(0.0, monthly_budget_usd - month_total["cost_usd"]), 4),
        "over_budget": month_total["cost_usd"] >= monthly_budget_usd,
        "listings_scored_locally": local_scored,
        "avg_claude_cost_per_listing": round(avg_cost, 6) if avg_cost is not None else None,
        "estimated_saving_usd": round(local_scored * avg_cost, 4) if avg_cost is not None else None,
    }
