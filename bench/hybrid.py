"""What hybrid mode costs: `python -m bench.hybrid`; the triggers on labels: `python -m bench.hybrid --report`.

The simulation stores N synthetic listings, gives each a local score drawn from a
distribution (e.g. normal:55:20), lets the escalation hook queue the uncertain
ones, and runs the real escalation worker and Claude client against the local
fake API, which reports realistic token counts (a cached prefix, the listing, a
short answer). It prints the escalation rate, Claude's tokens and dollars per N
listings, and the same for sending every listing to Claude. Two cache scenarios
are shown: as the API behaves (a prefix shorter than the model's minimum is not
cached) and with the prefix cached.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import db as storage  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402
from scoring import claude, escalation, ledger, queue  # noqa: E402
from scoring import profile as profile_mod  # noqa: E402
from scoring.strategies import ScoreResult  # noqa: E402
from scraper.base import Listing  # noqa: E402

ROLES = ("Backend Engineer", "ML Platform Engineer", "Data Engineer", "Frontend Developer", "Account Executive",
         "Site Reliability Engineer", "Product Designer", "Python Developer", "Engineering Manager", "QA Engineer")
PLACES = ("Remote (EU)", "Berlin, Germany", "Remote (US only)", "London, UK", "San Francisco, CA", "Remote")
PARAGRAPH = ("We are looking for an engineer to build and run our services. You will design APIs, own deployments "
             "on Kubernetes, work with PostgreSQL and Kafka, and mentor colleagues. ")


def parse_dist(text: str):
    """A sampler from 'normal:MEAN:SD' or 'uniform:LOW:HIGH'."""
    kind, *args = text.split(":")
    try:
        a, b = (float(x) for x in args)
    except ValueError:
        raise SystemExit(f"--dist {text!r}: use normal:MEAN:SD or uniform:LOW:HIGH") from None
    if kind == "normal":
        return lambda rng: rng.gauss(a, b)
    if kind == "uniform":
        return lambda rng: rng.uniform(a, b)
    raise SystemExit(f"--dist {text!r}: use normal:MEAN:SD or uniform:LOW:HIGH")


def simulate(args, cache_minimum: bool) -> dict:
    """One run of N listings through hybrid mode; returns the figures."""
    rng = random.Random(args.seed)
    draw = parse_dist(args.dist)
    settings = claude.settings_from({
        "mode": "hybrid", "claude_model": args.model, "monthly_budget_usd": 1e9, "claude_max_retries": 0,
        "uncertainty_band": args.band,
    })
    fake = FakeAnthropic(min_cache_tokens=None if cache_minimum else {}).start()
    fake.fixed_tokens = {"prefix": args.prefix_tokens, "user": args.listing_tokens, "output": args.output_tokens}
    with tempfile.TemporaryDirectory() as tmp:
        db = storage.connect(Path(tmp) / "bench.db")
        listings = [
            Listing(source="bench", source_id=str(i),
                    title=f"{rng.choice(('', 'Senior ', 'Staff '))}{rng.choice(ROLES)}", company=f"Company {i % 97}",
                    location=rng.choice(PLACES), description_html=f"<p>{PARAGRAPH * 8}</p>")
            for i in range(args.n)
        ]
        storage.upsert_listings(db, listings)
        prof = profile_mod.load(profile_mod.BUNDLED / "example.json")
        lids = [r[0] for r in db.conn.execute("SELECT id FROM listings ORDER BY id")]
        for lid in lids:
            score = int(round(max(0.0, min(100.0, draw(rng)))))
            grounded = rng.random() >= args.ungrounded
            r = ScoreResult(score=score, reasoning="local", evidence=["services"] if grounded else ["not in it"],
                            grounded=grounded, strategy="fewshot", provider="llamacpp", model="local")
            queue.save(db, lid, r, prof)
            escalation.after_local_score(db, lid, r, [], settings)
        escalated = escalation.counts(db)["queued"]
        client = claude.ClaudeClient(settings, "sk-bench", fake.base_url, ledger.Recorder(Path(tmp) / "bench.db"))
        t0 = time.perf_counter()
        result = escalation.run_escalations(db, client, settings, settings.escalation_workers, profile=prof)
        wall = time.perf_counter() - t0
        client.close()
        rows = list(db.query("SELECT * FROM llm_calls"))
        db.conn.close()
    fake.stop()
    costs = [r["cost_usd"] for r in rows]
    # Every further listing would cost what a steady-state (cache already warm) call costs.
    steady = statistics.median(costs) if costs else 0.0
    spent = sum(costs)
    return {
        "escalated": escalated, "done": result["done"], "wall_s": wall,
        "input": sum(r["prompt_tokens"] for r in rows), "cache_read": sum(r["cache_read_tokens"] for r in rows),
        "cache_write": sum(r["cache_write_tokens"] for r in rows), "output": sum(r["completion_tokens"] for r in rows),
        "cost": spent, "all_claude": spent + (args.n - len(rows)) * steady,
    }


def main(argv=None) -> None:
    """Run the simulation or print the trigger report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", action="store_true", help="Escalation triggers on the shipped labeled listings.")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--dist", default="normal:55:20", help="Local score distribution: normal:MEAN:SD | uniform:LOW:HIGH")
    p.add_argument("--ungrounded", type=float, default=0.05, help="Share of local scores whose evidence is not found.")
    p.add_argument("--band", default="65,85", help="Uncertainty band, LOW,HIGH.")
    p.add_argument("--model", default=claude.DEFAULT_MODEL)
    p.add_argument("--prefix-tokens", type=int, default=1500)
    p.add_argument("--listing-tokens", type=int, default=400)
    p.add_argument("--output-tokens", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        args.band = [int(x) for x in args.band.split(",")]
    except ValueError:
        raise SystemExit("--band: LOW,HIGH such as 65,85") from None
    if args.report:
        settings = claude.settings_from({"uncertainty_band": args.band})
        print(escalation.format_report(escalation.dev_report(settings), settings))
        return

    minimum = claude.min_cache_tokens(args.model)
    print(f"{args.n} listings, local scores {args.dist}, {args.ungrounded:.0%} ungrounded, band {args.band}, "
          f"{args.model}; per call: prefix {args.prefix_tokens}, listing {args.listing_tokens}, "
          f"output {args.output_tokens} tokens")
    header = (f"{'cache':<34}{'escalated':>10}{'input':>9}{'c.read':>9}{'c.write':>9}{'output':>8}"
              f"{'$ hybrid':>10}{'$ all-Claude':>14}")
    print(header)
    for cache_minimum, label in ((True, f"as the API does (min {minimum})"), (False, "prefix cached")):
        r = simulate(args, cache_minimum)
        print(f"{label:<34}{r['escalated']:>5} {r['escalated'] / args.n:>4.0%}{r['input']:>9}{r['cache_read']:>9}"
              f"{r['cache_write']:>9}{r['output']:>8}{r['cost']:>10.4f}{r['all_claude']:>14.4f}")
    if args.prefix_tokens < minimum:
        print(f"note: a {args.prefix_tokens}-token prefix is below {args.model}'s {minimum}-token caching minimum, "
              "so the first row is what the API bills; the second shows a prefix that meets it.")


if __name__ == "__main__":
    main()
