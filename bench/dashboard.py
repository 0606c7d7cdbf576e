"""Dashboard latency on a large database: `python -m bench.dashboard`.

Fills a temporary database with synthetic-but-realistic listings through the real
storage functions (upsert, flags, scores, verdicts, duplicate groups), then times
the main filter request (keyword + eligible + focus + sort by score) through the
Flask test client with varying keywords, and the default page, and prints p50/p95
in milliseconds: wall time, this process's CPU time, and the CPU time of the query
layer alone (search.search), which leaves out the templates and the other parts of
the page.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config as config_mod  # noqa: E402
import db as storage  # noqa: E402
import search  # noqa: E402
from scraper.base import Listing  # noqa: E402

SOURCES = ("remoteok", "remotive", "hn", "wwr", "arbeitnow", "himalayas", "greenhouse", "lever")
SENIORITY = ("", "Senior ", "Staff ", "Lead ", "Junior ", "Principal ")
ROLES = (
    ("Python Engineer", "focus:priority"), ("Backend Engineer", "focus:priority"),
    ("ML Platform Engineer", "focus:priority"), ("Data Platform Engineer", "focus:priority"),
    ("Golang Developer", "focus:priority"), ("MLOps Engineer", "focus:priority"),
    ("Frontend Developer", "focus:tech"), ("Full Stack Engineer", "focus:tech"),
    ("iOS Engineer", "focus:tech"), ("Android Developer", "focus:tech"), ("DevOps Engineer", "focus:tech"),
    ("Site Reliability Engineer", "focus:tech"), ("Rust Systems Engineer", "focus:tech"),
    ("QA Automation Engineer", "focus:tech"), ("Security Engineer", "focus:tech"),
    ("Data Scientist", "focus:tech"), ("Cloud Architect", "focus:tech"),
    ("Account Executive", "focus:non-tech"), ("Customer Success Manager", "focus:non-tech"),
    ("Marketing Manager", "focus:non-tech"), ("Recruiter", "focus:non-tech"),
    ("Product Designer", "focus:non-tech"), ("Sales Development Representative", "focus:non-tech"),
    ("Accountant", "focus:non-tech"), ("Virtual Assistant", "focus:non-tech"),
)
LOCATIONS = (
    ("Berlin, Germany", "loc:home", "Berlin"), ("Berlin (Hybrid)", "loc:home", "Berlin"),
    ("Remote", "loc:remote", "Remote"), ("Remote - Europe", "loc:remote", "Europe"),
    ("Remote (EMEA)", "loc:remote", "EMEA"), ("Worldwide", "loc:remote", "Worldwide"),
    ("Munich, Germany", "loc:country-other", "Munich"), ("Hamburg", "loc:country-other", "Hamburg"),
    ("Remote (US only)", "loc:remote-restricted", "US only"), ("USA", "loc:remote-restricted", "USA"),
    ("Remote - Canada", "loc:remote-restricted", "Canada"),
    ("New York, NY", "loc:overseas-onsite", "New York"), ("London, UK", "loc:overseas-onsite", "London"),
    ("Bangalore, India", "loc:overseas-onsite", "Bangalore"), ("San Francisco, CA", "loc:overseas-onsite", "San Francisco"),
    ("", "loc:unknown", ""), ("Multiple locations", "loc:unknown", "Multiple locations"),
)
# Skills appear in a few listings each (Zipf-like) and fit the role: real keyword
# searches match a few percent of listings, not nearly all of them.
TECH_SKILLS = (
    "python go golang rust kubernetes terraform aws gcp azure postgres postgresql redis kafka spark airflow "
    "django flask fastapi react typescript javascript node graphql docker linux observability grafana "
    "prometheus pytorch tensorflow llm inference microservices fintech gdpr soc2 swift kotlin java scala "
    "elixir ruby rails php laravel c++ embedded firmware dbt snowflake bigquery clickhouse elasticsearch "
    "rabbitmq grpc webassembly ansible jenkins datadog sentry"
).split()
BUSINESS_SKILLS = (
    "salesforce hubspot seo figma tableau looker excel powerpoint crm quota pipeline negotiation gdpr fintech "
    "saas b2b outbound inbound copywriting campaigns accounting payroll sourcing onboarding zendesk intercom"
).split()
SKILL_WEIGHTS = {
    "tech": [1 / (rank + 10) for rank in range(len(TECH_SKILLS))],
    "business": [1 / (rank + 5) for rank in range(len(BUSINESS_SKILLS))],
}
FILLER = (
    "we are looking for a an the to and of in with on for our your you team teams product products customers "
    "build building work working experience years strong skills ability communication written spoken english "
    "german collaborate across company mission values growth learning ownership impact scale scaling systems "
    "services platform quality reliable maintain improve design implement deliver features roadmap users "
    "engineering business stakeholders cross functional agile process processes support supporting lead "
    "mentor mentoring junior senior role responsibilities requirements nice have bonus benefits salary equity "
    "vacation flexible hours office hybrid remote home budget hardware conference health insurance pension "
    "parental leave diverse inclusive culture apply today join us help shape future industry market leading "
    "fast growing startup series funded investors revenue clients partners global international customers "
    "data analysis reporting metrics dashboards documentation testing automation deployment monitoring "
    "security compliance operations infrastructure architecture decisions trade offs problems solving"
).split()
KEYWORDS = (
    "python", "rust", "kubernetes", "react", "golang", "postgres", "kafka", "llm", "terraform", "django",
    "ml platform", "data platform", "backend", "fastapi", "airflow", "elixir", "swift", "salesforce",
    "observability", "pytorch", "graphql", "scala", "embedded", "gdpr", "fintech",
)


def build(path: Path, n: int, seed: int = 7) -> None:
    """Fill a database at `path` with `n` listings, their flags, some scores, verdicts and duplicates."""
    rng = random.Random(seed)
    db = storage.connect(path)
    companies = [f"{rng.choice(['Acme', 'Nimbus', 'Blue', 'Quantum', 'North', 'Bright', 'Delta', 'Pixel'])}"
                 f"{rng.choice(['soft', 'labs', 'works', 'data', 'ly', 'hub', 'io', 'stack'])} {i}"
                 for i in range(n // 15)]
    batch: list[tuple[Listing, str, str, str, str]] = []
    started = time.perf_counter()
    for i in range(n):
        if i and rng.random() < 0.12 and batch:
            # The same job on another board (or in another city): same company and title.
            prev = batch[rng.randrange(len(batch))][0]
            title, company, focus = prev.title, prev.company, None
        else:
            role, focus = rng.choice(ROLES)
            title, company = rng.choice(SENIORITY) + role, rng.choice(companies)
        location, loc_label, evidence = rng.choice(LOCATIONS)
        focus = focus or next((f for r, f in ROLES if r in title), "focus:tech")
        if focus == "focus:non-tech":
            skills = rng.choices(BUSINESS_SKILLS, weights=SKILL_WEIGHTS["business"], k=rng.randint(2, 6))
        else:
            skills = rng.choices(TECH_SKILLS, weights=SKILL_WEIGHTS["tech"], k=rng.randint(2, 6))
        words = " ".join(rng.choice(FILLER) for _ in range(rng.randint(120, 320)))
        words += " Skills: " + ", ".join(skills) + "."
        day = rng.randint(0, 120)
        listing = Listing(
            source=rng.choice(SOURCES), source_id=str(i), title=title, company=company, location=location,
            url=f"https://jobs.example.org/{i}", description_html=f"<p>{company} is hiring a {title}.</p><p>{words}</p>",
            posted_at=f"2026-{1 + (day % 11):02d}-{1 + day % 28:02d}T09:00:00+00:00",
            salary=rng.choice(["", "", "€70k - €90k", "$120,000 - $160,000"]), tags=skills[:3],
            raw={"id": i},
        )
        batch.append((listing, loc_label, evidence, focus, title))
        if len(batch) == 5000 or i == n - 1:
            _store(db, batch, rng)
            batch = []
    search.ensure_indexes(db)
    db.conn.close()
    print(f"filled {n} listings in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def _store(db, batch, rng) -> None:
    result = storage.upsert_listings(db, [b[0] for b in batch], seen_at=storage.now_iso())
    with storage.write(db):
        for lid, (listing, loc_label, evidence, focus, title) in zip(result["new"], batch):
            storage.save_flags(db, lid, [
                SimpleNamespace(kind="location", label=loc_label, evidence=evidence),
                SimpleNamespace(kind="focus", label=focus, evidence=title),
            ], "bench")
            if rng.random() < 0.6:
                storage.save_score(db, lid, score=rng.randint(0, 100), strategy="rules", provider="rules",
                                   model="rules", reasoning="synthetic", evidence=[title])
            if rng.random() < 0.03:
                storage.set_verdict(db, lid, status=rng.choice(["starred", "hidden", "applied"]))


def measure(path: Path, requests: int) -> dict[str, list[float]]:
    """Time the main filter request (and the default page) through the Flask test client."""
    from app import create_app

    app = create_app({
        "TESTING": True, "DATABASE": str(path), "CONFIG_PATH": str(path.parent / "config.toml"),
        "JOBSIFT": config_mod.Config(), "SECRET_KEY": "bench",
    })
    client = app.test_client()
    client.get("/")  # warm up: templates compiled, page cache filled
    main, default = "keyword+eligible+focus+sort=score", "default page (no filters)"
    timings: dict[str, list[float]] = {main: [], main + " [cpu]": [], default: [], default + " [cpu]": []}

    def timed(name: str, **query) -> None:
        # Wall time is what the person waits; CPU time is this process's own work,
        # which stays meaningful when other jobs share the two cores.
        wall, cpu = time.perf_counter(), time.process_time()
        resp = client.get("/", query_string=query)
        timings[name].append((time.perf_counter() - wall) * 1000)
        timings[name + " [cpu]"].append((time.process_time() - cpu) * 1000)
        assert resp.status_code == 200, resp.status_code

    for i in range(requests):
        timed(main, q=KEYWORDS[i % len(KEYWORDS)], eligible="1", focus=("focus:priority", "focus:tech")[i % 2],
              sort="score")
    for _ in range(max(20, requests // 10)):
        timed(default)
    timings.update(measure_search(path, requests))
    return timings


def measure_search(path: Path, requests: int) -> dict[str, list[float]]:
    """Time the query layer alone (search.search) for the same two requests: filters, counts and the page rows.

    The request timings above also include the page templates and whatever else the
    page renders; this separates the part the list's database work costs.
    """
    db = storage.connect(path, migrate_now=False)
    main, default = "search only: keyword+eligible+focus", "search only: default page"
    timings: dict[str, list[float]] = {main: [], default: []}

    def timed(name: str, filters: search.Filters) -> None:
        cpu = time.process_time()
        search.search(db, filters)
        timings[name].append((time.process_time() - cpu) * 1000)

    try:
        for i in range(requests):
            timed(main, search.Filters(q=KEYWORDS[i % len(KEYWORDS)], eligible=True,
                                       focus=("focus:priority", "focus:tech")[i % 2]))
        for _ in range(max(20, requests // 10)):
            timed(default, search.Filters())
    finally:
        db.conn.close()
    return {f"{name} [cpu]": values for name, values in timings.items()}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> None:
    """Build the database, time the requests, print p50/p95."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", type=Path, help="reuse (or create) this database instead of a temporary one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            build(path, args.listings)
        for name, values in measure(path, args.requests).items():
            print(f"{name}: n={len(values)} p50={statistics.median(values):.1f} ms "
                  f"p95={_pct(values, 0.95):.1f} ms max={max(values):.1f} ms")


if __name__ == "__main__":
    main()
