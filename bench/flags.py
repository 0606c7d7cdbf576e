"""Benchmark: location-flag agreement with the labeled strings, and what flagging costs.

    python -m bench.flags [--listings 10000]

Prints agreement per persona (BER: Berlin, AKL: Auckland) and per label with a
confusion matrix, the first-call cost of building the gazetteer, the median time
to classify one location string (uncached), and the time to flag real recorded
listings (Remote OK, Remotive, Greenhouse) replicated to --listings.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
LABELED = ROOT / "tests" / "data" / "locations_labeled.tsv"
FIXTURES = ROOT / "tests" / "fixtures"


def _personas():
    import config as config_mod

    return {
        "BER": config_mod.Person(home_city="Berlin", home_country="DE", utc_offset=1.0),
        "AKL": config_mod.Person(home_city="Auckland", home_country="NZ", utc_offset=12.0),
    }


def _labeled() -> list[dict]:
    with LABELED.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _confusion(pairs: list[tuple[str, str]], labels: tuple[str, ...]) -> str:
    """A confusion matrix: rows are the labels, columns what the classifier said."""
    short = [label.removeprefix("loc:") for label in labels]
    width = max(len(s) for s in short) + 2
    counts = Counter(pairs)
    lines = ["label \\ predicted".ljust(width + 4) + "".join(s[:10].rjust(11) for s in short) + "   agree"]
    for label, name in zip(labels, short):
        row = [counts[(label, p)] for p in labels]
        total = sum(row)
        if not total:
            continue
        agree = counts[(label, label)] / total
        lines.append(name.ljust(width + 4) + "".join(str(n).rjust(11) for n in row) + f"   {agree:6.1%} of {total}")
    return "\n".join(lines)


def _listings(n: int) -> list[SimpleNamespace]:
    """Real recorded listings, replicated to n."""
    items = []
    remoteok = json.loads((FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_text(encoding="utf-8"))
    for it in remoteok[1:]:
        items.append((it.get("position") or "", it.get("location") or "", it.get("description") or ""))
    remotive = json.loads((FIXTURES / "remotive" / "remotive_all_2026-07.json").read_text(encoding="utf-8-sig"))
    for it in remotive["jobs"]:
        items.append((it["title"], it["candidate_required_location"], it["description"]))
    for name in ("greenhouse_catawiki_content_true_wrapped.json", "greenhouse_gitlab_content_trimmed3.json"):
        data = json.loads((FIXTURES / "greenhouse" / name).read_text(encoding="utf-8"))
        from html import unescape

        for it in data["jobs"]:
            items.append((it["title"], it["location"]["name"], unescape(it.get("content") or "")))
    return [SimpleNamespace(title=t, location=loc, description_html=d) for t, loc, d in (items * (n // len(items) + 1))[:n]]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    args = parser.parse_args()

    from scoring import flags, geo

    start = time.perf_counter()
    geo.gazetteer()
    build = time.perf_counter() - start
    personas = _personas()
    start = time.perf_counter()
    flags.classify_location("Berlin", personas["BER"])
    first_rest = time.perf_counter() - start
    print(f"gazetteer first call: {build:.2f} s to build ({len(geo.gazetteer().city_keys):,} city names),"
          f" then {first_rest * 1000:.0f} ms for the first classification")

    rows = _labeled()
    labels = flags.LOCATION_LABELS
    all_pairs = []
    for name, person in personas.items():
        pairs = [("loc:" + row[name], flags.classify_location(row["location"], person).label) for row in rows]
        all_pairs += pairs
        agree = sum(1 for want, got in pairs if want == got)
        print(f"\n{name}: {agree}/{len(pairs)} agree ({agree / len(pairs):.1%})")
        print(_confusion(pairs, labels))
        for row, (want, got) in zip(rows, pairs):
            if want != got:
                print(f"  disagree: {row['location']!r}: labeled {want}, classified {got}")
    agree = sum(1 for want, got in all_pairs if want == got)
    print(f"\nboth personas: {agree}/{len(all_pairs)} ({agree / len(all_pairs):.1%})")

    times = []
    for _ in range(3):
        for row in rows:
            flags.clear_cache()
            t = time.perf_counter()
            flags.classify_location(row["location"], personas["BER"])
            times.append(time.perf_counter() - t)
    print(f"\nper location string, uncached: median {statistics.median(times) * 1e6:.0f} µs,"
          f" p95 {sorted(times)[int(len(times) * 0.95)] * 1e6:.0f} µs, max {max(times) * 1e6:.0f} µs")

    from config import Config

    items = _listings(args.listings)
    config = Config(person=personas["BER"])
    flags.clear_cache()
    t = time.perf_counter()
    for item in items:
        flags.compute_flags(item, config)
    elapsed = time.perf_counter() - t
    distinct = len({item.location for item in items})
    print(f"compute_flags over {len(items):,} recorded listings ({distinct} distinct locations):"
          f" {elapsed:.2f} s, {elapsed / len(items) * 1e6:.0f} µs per listing")


if __name__ == "__main__":
    main()
