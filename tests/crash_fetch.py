"""A fetch of a few thousand listings from recorded payloads, with no network: run it, kill it, check the database.

    python tests/crash_fetch.py DB_PATH TOTAL GENERATION

Real recorded items (Remote OK, Remotive, a Greenhouse board, a Lever site) are
replicated with distinct ids and distinct titles and served through
httpx.MockTransport to the real fetch path (parse, upsert, search index, flags,
fetch_runs). Every description carries a `jobsift-generation:N` marker, so a run
with a new GENERATION rewrites every stored listing and a checker can tell which
run's batch a source's listings came from. Prints `started` once the database is
open and `done` with one line per source at the end.

The payload builders are importable (`payloads`, `mock_client`, `expected_counts`)
for tests that run the same fetch in-process.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Run name -> (URL fragment the source requests, listings.source of its items).
SOURCES = {
    "remoteok": ("remoteok.com/api", "remoteok"),
    "remotive": ("remotive.com/api", "remotive"),
    "greenhouse:gitlab": ("boards/gitlab/jobs", "greenhouse"),
    "lever:hinge": ("postings/hinge", "lever"),
}
GENERATION_RE = re.compile(r"jobsift-generation:(\d+)")


def _marker(generation: int) -> str:
    return f"<p>jobsift-generation:{generation}</p>"


def _remoteok(n: int, generation: int) -> bytes:
    data = json.loads((FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes())
    # Only items the parser accepts, so the run stores exactly the number asked for.
    notice, jobs = data[0], [item for item in data[1:] if item.get("position")]
    out = [notice]
    for k in range(n):
        item = dict(jobs[k % len(jobs)])
        item["id"] = f"{item['id']}-{k}"
        item["slug"] = f"{item.get('slug', 'job')}-{k}"
        item["position"] = f"{item['position']} {k}"
        item["description"] = (item.get("description") or "") + _marker(generation)
        out.append(item)
    return json.dumps(out).encode()


def _remotive(n: int, generation: int) -> bytes:
    data = json.loads((FIXTURES / "remotive" / "remotive_all_2026-07.json").read_bytes().decode("utf-8-sig"))
    jobs = data["jobs"]
    data["jobs"] = [
        {**jobs[k % len(jobs)], "id": 10_000_000 + k, "title": f"{jobs[k % len(jobs)]['title']} {k}",
         "description": (jobs[k % len(jobs)].get("description") or "") + _marker(generation)}
        for k in range(n)
    ]
    return json.dumps(data).encode()


def _greenhouse(n: int, generation: int) -> bytes:
    data = json.loads((FIXTURES / "greenhouse" / "greenhouse_gitlab_content_trimmed3.json").read_bytes())
    jobs = data["jobs"]
    out = []
    for k in range(n):
        job = jobs[k % len(jobs)]
        # Greenhouse sends its content entity-escaped; so does this marker.
        content = (job.get("content") or "") + _marker(generation).replace("<", "&lt;").replace(">", "&gt;")
        out.append({**job, "id": 70_000_000 + k, "title": f"{job['title']} {k}", "content": content})
    return json.dumps({"jobs": out}).encode()


def _lever(n: int, generation: int) -> bytes:
    jobs = json.loads((FIXTURES / "lever" / "lever_hinge_trimmed.json").read_bytes())
    out = []
    for k in range(n):
        job = jobs[k % len(jobs)]
        out.append({**job, "id": f"{job['id']}-{k}", "text": f"{job['text']} {k}",
                    "description": (job.get("description") or "") + _marker(generation)})
    return json.dumps(out).encode()


def expected_counts(total: int) -> dict[str, int]:
    """How many listings each run name serves for `total` (a quarter each, the rest to Remote OK)."""
    share = total // 4
    return {"remoteok": total - 3 * share, "remotive": share, "greenhouse:gitlab": share, "lever:hinge": share}


def payloads(total: int, generation: int = 0) -> dict[str, bytes]:
    """URL fragment -> payload body, `total` listings across the four sources."""
    counts = expected_counts(total)
    builders = {"remoteok": _remoteok, "remotive": _remotive, "greenhouse:gitlab": _greenhouse, "lever:hinge": _lever}
    return {SOURCES[name][0]: builders[name](counts[name], generation) for name in SOURCES}


def mock_client(served: dict[str, bytes]) -> httpx.Client:
    """The project's HTTP client over a transport that answers from `served` (404 for anything else)."""
    from scraper.http import make_client

    def handler(request: httpx.Request) -> httpx.Response:
        for fragment, body in served.items():
            if fragment in str(request.url):
                return httpx.Response(200, content=body)
        return httpx.Response(404)

    return make_client(transport=httpx.MockTransport(handler))


def fetch_config():
    """Settings that fetch exactly the four served sources."""
    import config as config_mod

    return replace(config_mod.Config(), sources=("remoteok", "remotive"), greenhouse_boards=("gitlab",),
                   lever_sites=("hinge",))


def main(argv: list[str]) -> int:
    """Open the database and fetch every source once, forced past the sources' minimum intervals."""
    import db as storage
    import fetcher

    db_path, total, generation = argv[0], int(argv[1]), int(argv[2])
    served = payloads(total, generation)
    db = storage.connect(db_path)
    print("started", flush=True)
    with mock_client(served) as client:
        outcomes = fetcher.run_fetch(db, fetch_config(), client, force=True)
    db.conn.close()
    print("done", flush=True)
    for outcome in outcomes:
        print(outcome.summary(), flush=True)
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
