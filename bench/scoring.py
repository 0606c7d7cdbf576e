"""Every scoring strategy against the labeled development set: agreement and speed.

    python -m bench.scoring                      # rules only (instant)
    python -m bench.scoring --model PATH.gguf    # + fewshot, fewshot-logprobs, facts on that model
    python -m bench.scoring --demo               # + the same on the bundled demo model
    python -m bench.scoring --base-url http://127.0.0.1:8080/v1   # through an OpenAI-compatible server

Prints, per strategy: Spearman and MAE against the labels, how many of the labels'
top 10 land in its top 10, band agreement, valid-JSON and grounded rates, median
seconds per listing, listings per minute, prompt tokens per listing, and for model
strategies the cold (prefix computed) vs warm (prefix cached) time of one call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config as config_mod  # noqa: E402
from scoring import evaluate as ev  # noqa: E402
from scoring import metrics, rules  # noqa: E402
from scoring.profile import BUNDLED, Example, load  # noqa: E402
from scoring.strategies import FactsStrategy, FewshotStrategy, RulesStrategy  # noqa: E402


def loo_rules(profile, labeled, cfg) -> dict:
    """Rules with weights refitted on all-but-one listing, scored on the one left out (no peeking)."""
    facts = []
    for item in labeled:
        v = ev.listing_view(item.listing, cfg)
        facts.append(rules.ListingFacts(
            title=v["title"], description=rules.listing_text(v["description_html"]),
            location_label=v["flags"]["location"][0], location_evidence=v["flags"]["location"][1],
            focus_label=v["flags"]["focus"][0], focus_evidence=v["flags"]["focus"][1]))
    preds = []
    for i in range(len(labeled)):
        train = [(f, it.label) for j, (f, it) in enumerate(zip(facts, labeled)) if j != i]
        p = profile.model_copy(deep=True)
        p.weights = rules.fit(profile, train)
        preds.append(rules.score(p, facts[i]).score)
    return metrics.summary(preds, [it.label for it in labeled])


def examples_from(labeled, k: int = 8) -> tuple[list[Example], set[str]]:
    """Scored examples for the few-shot prompt, taken from the labeled set (and then not evaluated on)."""
    chosen = sorted(labeled, key=lambda it: -it.label)
    step = max(1, len(chosen) // k)
    picked = chosen[::step][:k]
    return [Example(title=it.listing["title"] or "(no title)", company=it.listing["company"],
                    location=it.listing["location"], score=it.label, reasoning="", source="dataset")
            for it in picked], {it.key for it in picked}


def cold_warm(strategy, labeled, cfg) -> tuple[float, float]:
    """Seconds for the first call (prefix computed) and a following call on another listing (prefix cached)."""
    a = ev.listing_view(labeled[0].listing, cfg)
    b = ev.listing_view(labeled[1].listing, cfg)
    reset = getattr(strategy.engine, "reset_cache", None)
    if reset:
        reset()
    t0 = time.perf_counter()
    strategy.score(a)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    strategy.score(b)
    warm = time.perf_counter() - t0
    return cold, warm


def row(name: str, model: str, e) -> str:
    s = e.summary
    lat = [ms / 1000 for ms in e.latencies_ms] or [0]
    ptok = [r.prompt_tokens for _it, r, _err in e.results if r is not None]
    per_min = 60 / median(lat) if median(lat) > 0 else float("inf")
    return (f"{name:<18} {model[:28]:<28} {s.get('n', 0):>3} {s.get('spearman', 0):>6.2f} {s.get('mae', 0):>5.1f} "
            f"{s.get('top10', 0):>5} {s.get('band_agreement', 0):>5.2f} {s.get('valid_rate', 0):>5.2f} "
            f"{s.get('grounded_rate', 0):>5.2f} {median(lat):>7.2f} {per_min:>8.1f} "
            f"{(median(ptok) if ptok else 0):>6.0f}")


def main(argv=None) -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file for the in-process llama.cpp engine")
    ap.add_argument("--demo", action="store_true", help="use the bundled demo model")
    ap.add_argument("--base-url", help="OpenAI-compatible server instead of in-process")
    ap.add_argument("--limit", type=int, help="score only the first N labeled listings with model strategies")
    ap.add_argument("--strategies", default="fewshot,fewshot-logprobs,facts")
    args = ap.parse_args(argv)

    cfg = config_mod.Config(person=ev.DEV_PERSON)
    profile = load(BUNDLED / "example.json")
    labeled = ev.dev_set()
    header = (f"{'strategy':<18} {'model':<28} {'n':>3} {'rho':>6} {'MAE':>5} {'top10':>5} {'band':>5} "
              f"{'json':>5} {'grnd':>5} {'s/lst':>7} {'lst/min':>8} {'ptok':>6}")
    print(f"development set: {len(labeled)} labeled listings; profile {profile.cv_name}@{profile.version}")
    print(header)
    print("-" * len(header))
    e = ev.evaluate(RulesStrategy(profile), labeled, cfg)
    print(row("rules", "profile weights", e))
    loo = loo_rules(profile, labeled, cfg)
    print(f"{'rules-fit (LOO)':<18} {'refit on the other 56':<28} {loo['n']:>3} {loo['spearman']:>6.2f} "
          f"{loo['mae']:>5.1f} {loo['top10']:>5} {loo['band_agreement']:>5.2f}")

    engine = None
    if args.base_url:
        from scoring.providers import OpenAIEngine

        engine = OpenAIEngine(base_url=args.base_url)
    elif args.model or args.demo:
        from scoring.providers import LlamaCppEngine

        engine = LlamaCppEngine(model_path=args.model)
    if engine is None:
        return
    examples, example_keys = examples_from(labeled)
    profile.examples = examples
    # Listings shown as examples are not scored: that would measure memory, not judgment.
    test = [it for it in labeled if it.key not in example_keys]
    if args.limit:
        test = test[: args.limit]
    wanted = [s.strip() for s in args.strategies.split(",") if s.strip()]
    runs = {
        "fewshot": lambda: FewshotStrategy(profile, engine),
        "fewshot-logprobs": lambda: FewshotStrategy(profile, engine, use_logprobs=True),
        "facts": lambda: FactsStrategy(profile, engine),
    }
    print(f"model strategies on {len(test)} listings (the {len(example_keys)} used as examples left out)")
    base = ev.evaluate(RulesStrategy(load(BUNDLED / "example.json")), test, cfg)
    print(row("rules (same set)", "profile weights", base))
    for name in wanted:
        strategy = runs[name]()
        cold, warm = cold_warm(strategy, test, cfg)
        e = ev.evaluate(strategy, test, cfg)
        print(row(name, engine.model, e) + f"   cold {cold:.1f}s warm {warm:.1f}s ({cold / warm if warm else 0:.1f}x)")


if __name__ == "__main__":
    main()
