"""Benchmark: fetch-and-store 10,000 listings from recorded payloads into a fresh database.

    python -m bench.ingest [--listings 10000] [--runs 3]

Real recorded items (Remote OK, Remotive, two Greenhouse boards) are replicated
with distinct ids, served through httpx.MockTransport and stored by the real
fetch path: parse, upsert, full-text index, dashboard facets, flags, fetch_runs.
Prints each run's wall and CPU time (CPU time is this process's own work, which
stays meaningful when other jobs share the cores), the median and listings per
second. Target: under 3 s for 10,000 listings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

import config as config_mod
import db as storage
import fetcher
from scoring import geo
from scraper.http import make_client

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def _remoteok(n: int) -> bytes:
    data = json.loads((FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes())
    # Only items the parser accepts, so the run stores exactly the number asked for.
    notice, jobs = data[0], [item for item in data[1:] if item.get("position")]
    out = [notice]
    for k in range(n):
        item = dict(jobs[k % len(jobs)])
        item["id"] = f"{item['id']}-{k}"
        item["slug"] = f"{item.get('slug', 'job')}-{k}"
        out.append(item)
    return json.dumps(out).encode()


def _remotive(n: int) -> bytes:
    data = json.loads((FIXTURES / "remotive" / "remotive_all_2026-07.json").read_bytes().decode("utf-8-sig"))
    jobs = data["jobs"]
    data["jobs"] = [{**jobs[k % len(jobs)], "id": 10_000_000 + k} for k in range(n)]
    return json.dumps(data).encode()


def _greenhouse(name: str, n: int, offset: int) -> bytes:
    data = json.loads((FIXTURES / "greenhouse" / name).read_bytes())
    jobs = data["jobs"] if isinstance(data, dict) else data
    return json.dumps({"jobs": [{**jobs[k % len(jobs)], "id": offset + k} for k in range(n)]}).encode()


def payloads(total: int) -> dict[str, bytes]:
    """URL fragment -> payload, about a quarter of `total` listings each."""
    share = total // 4
    return {
        "remoteok.com/api": _remoteok(total - 3 * share),
        "remotive.com/api": _remotive(share),
        "boards/gitlab/jobs": _greenhouse("greenhouse_gitlab_content_trimmed3.json", share, 70_000_000),
        "boards/helsing/jobs": _greenhouse("greenhouse_helsing_trimmed.json", share, 80_000_000),
    }


def parse_seconds(served: dict[str, bytes]) -> float:
    """Seconds the parsers alone take over the payloads (the rest of a run is storage)."""
    import scraper

    sources = {
        "remoteok.com/api": scraper.get_source("remoteok"),
        "remotive.com/api": scraper.get_source("remotive"),
        "boards/gitlab/jobs": scraper.get_source("greenhouse", board="gitlab"),
        "boards/helsing/jobs": scraper.get_source("greenhouse", board="helsing"),
    }
    start = time.perf_counter()
    for fragment, body in served.items():
        sources[fragment].parse(body)
    return time.perf_counter() - start


def one_run(served: dict[str, bytes], workdir: Path, k: int) -> tuple[float, float, int]:
    """Wall and CPU seconds to fetch and store everything into a fresh database, and how many listings it stored."""

    def handler(request: httpx.Request) -> httpx.Response:
        for fragment, body in served.items():
            if fragment in str(request.url):
                return httpx.Response(200, content=body)
        return httpx.Response(404)

    config = replace(
        config_mod.Config(), sources=("remoteok", "remotive"), greenhouse_boards=("gitlab", "helsing")
    )
    db = storage.connect(workdir / f"bench-{k}.db")
    with make_client(transport=httpx.MockTransport(handler)) as client:
        start, cpu = time.perf_counter(), time.process_time()
        outcomes = fetcher.run_fetch(db, config, client)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    failed = [o.summary() for o in outcomes if o.status != "ok"]
    if failed:
        raise SystemExit("benchmark fetch failed: " + "; ".join(failed))
    stored = db.conn.execute("SELECT count(*) FROM listings").fetchone()[0]
    db.conn.close()
    return elapsed, cpu, stored


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    served = payloads(args.listings)
    # The place-name index is built once per process (the app builds it in a thread at
    # start); building it here keeps that one-time cost out of the fetch being timed.
    started = time.perf_counter()
    geo.gazetteer()
    print(f"gazetteer built before timing in {time.perf_counter() - started:.2f} s")
    times, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.runs):
            elapsed, cpu, stored = one_run(served, Path(tmp), k)
            times.append(elapsed)
            cpus.append(cpu)
            print(f"run {k + 1}: {stored} listings in {elapsed:.2f} s (cpu {cpu:.2f} s)")
    median = statistics.median(times)
    print(f"median of {args.runs}: {median:.2f} s, {stored / median:,.0f} listings/s (target: under 3 s);"
          f" cpu {statistics.median(cpus):.2f} s")
    print(f"of which parsing: {parse_seconds(served):.2f} s; the rest is upsert, search index, flags and run records")


if __name__ == "__main__":
    main()
