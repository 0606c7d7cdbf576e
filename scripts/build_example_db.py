"""Build jobs.db.example from the real recorded payloads in tests/fixtures.

    python -m scripts.build_example_db [--out jobs.db.example]

Every listing goes through the same path as a fetch: parser, upsert, flags, and an
instant rules score with the bundled example profile, so `make run` opens on real
listings with no network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config as config_mod  # noqa: E402
import db as storage  # noqa: E402
import ingest  # noqa: E402
from scoring import profile as profile_mod  # noqa: E402
from scoring import queue  # noqa: E402
from scraper import get_source  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"

# (source, payload file, options): one real recorded response per board.
PAYLOADS = [
    ("remoteok", "remoteok/remoteok_api_2025-08-28.json", {}),
    ("remotive", "remotive/remotive_all_2026-07.json", {}),
    ("hn", "hn/hn_algolia_items_48747976_trimmed4.json", {}),
    ("hn", "hn/hn_algolia_hits_trimmed_2026-07.json", {}),
    ("wwr", "wwr/wwr_remote-jobs_2026-07.rss.xml", {}),
    ("wwr", "wwr/wwr_remote-programming-jobs_2022-11.rss", {}),
    ("greenhouse", "greenhouse/greenhouse_catawiki_content_true_wrapped.json", {"board": "catawiki"}),
    ("greenhouse", "greenhouse/greenhouse_gitlab_content_trimmed3.json", {"board": "gitlab", "company": "GitLab"}),
    ("greenhouse", "greenhouse/greenhouse_helsing_trimmed.json", {"board": "helsing", "company": "Helsing"}),
    ("lever", "lever/lever_palantir_2postings.json", {"board": "palantir", "company": "Palantir"}),
    ("lever", "lever/lever_hinge_trimmed.json", {"board": "hinge", "company": "Hinge"}),
    ("ashby", "ashby/ashby_notion_trimmed3.json", {"board": "notion", "company": "Notion"}),
    ("ashby", "ashby/ashby_openai_2jobs_apiVersion.json", {"board": "openai", "company": "OpenAI"}),
    ("arbeitnow", "arbeitnow/arbeitnow_job-board-api_trimmed3.json", {}),
    ("himalayas", "himalayas/himalayas_jobs_limit5.json", {}),
]


def build(out: Path) -> dict:
    """Write a fresh example database to `out`; returns counts."""
    tmp = out.with_suffix(".tmp")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    db = storage.connect(tmp)
    cfg = config_mod.Config()
    total = 0
    for name, rel, options in PAYLOADS:
        parsed = get_source(name, **options).parse((FIXTURES / rel).read_bytes())
        result = ingest.ingest(db, parsed.listings, cfg)
        total += len(result["new"])
    ids = [r[0] for r in db.conn.execute("SELECT id FROM listings")]
    prof = profile_mod.load(profile_mod.BUNDLED / "example.json")
    queue.score_with_rules(db, ids, prof)
    # So the dashboard shows how well the rules agree with labels from the start.
    from scoring import service

    service.ensure_rules_evaluation(db)
    # One self-contained file: fold the WAL back in before copying.
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.execute("PRAGMA journal_mode=DELETE")
    db.conn.execute("VACUUM")
    db.conn.close()
    tmp.replace(out)
    return {"listings": total}


def main(argv=None) -> None:
    """Build the example database."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "jobs.db.example"))
    args = ap.parse_args(argv)
    counts = build(Path(args.out))
    print(f"wrote {args.out}: {counts['listings']} listings")


if __name__ == "__main__":
    main()
