"""From parsed listings to stored rows: upsert and flag in one transaction."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Iterable

import db as storage
from scoring import flags as flags_mod


def ingest(db: storage.Database, listings: Iterable, config, seen_at: str | None = None, extra=None) -> dict:
    """Upsert listings and compute flags for the new and changed ones, atomically.

    `extra(db)` runs inside the same transaction (the fetcher records its
    fetch_runs row there, so a batch and its record commit together or not at all).
    """
    listings = list(listings)
    version = config.flags_version()
    with storage.write(db):
        # Listings and their flags are one batch: the dashboard's facets of the new
        # and changed listings are computed once, when both are stored.
        with storage.facets_batch(db):
            result = storage.upsert_listings(db, listings, seen_at=seen_at)
            by_key = {(item.source, str(item.source_id)): item for item in listings}
            changed = result["new"] + result["updated"]
            flagged = []
            for start in range(0, len(changed), 500):
                part = changed[start:start + 500]
                marks = ",".join("?" * len(part))
                rows = db.conn.execute(f"SELECT id, source, source_id FROM listings WHERE id IN ({marks})", part)
                flagged += [(lid, flags_mod.compute_flags(by_key[(source, source_id)], config))
                            for lid, source, source_id in rows]
            storage.save_flags_many(db, flagged, version)
        if extra is not None:
            extra(db)
    return result


def recompute_flags(db: storage.Database, config, only_outdated: bool = True) -> int:
    """Recompute flags for listings whose flags came from other settings; returns how many."""
    version = config.flags_version()
    sql = "SELECT id, title, company, location, description_html FROM listings"
    if only_outdated:
        sql += (
            " WHERE id NOT IN (SELECT listing_id FROM flags WHERE version = ?"
            " GROUP BY listing_id HAVING count(*) >= 2)"
        )
        rows = db.conn.execute(sql, [version]).fetchall()
    else:
        rows = db.conn.execute(sql).fetchall()
    with storage.facets_batch(db):
        flagged = []
        for lid, title, company, location, description_html in rows:
            item = SimpleNamespace(title=title, company=company, location=location, description_html=description_html)
            flagged.append((lid, flags_mod.compute_flags(item, config)))
        storage.save_flags_many(db, flagged, version)
    return len(rows)
