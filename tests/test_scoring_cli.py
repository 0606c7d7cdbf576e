"""`flask score` and `flask evaluate`."""

import db as storage
from scraper.base import Listing


def test_score_command_scores_everything_with_rules(runner, db):
    ids = storage.upsert_listings(db, [
        Listing(source="t", source_id=str(i), title=t, location="Remote (Europe)", description_html="<p>Python</p>")
        for i, t in enumerate(["Senior Backend Engineer", "Sales Manager", "Data Engineer"])
    ])["new"]
    result = runner.invoke(args=["score"])
    assert result.exit_code == 0, result.output
    assert "strategy: rules" in result.output
    assert "rules scores for new listings: 3" in result.output
    assert {r[0] for r in db.conn.execute("SELECT listing_id FROM current_scores")} == set(ids)
    # A second pass has nothing left to do.
    again = runner.invoke(args=["score"])
    assert "rules scores for new listings: 0" in again.output and "scored: 0" in again.output


def test_evaluate_records_agreement_for_auto(runner, db):
    result = runner.invoke(args=["evaluate", "--strategy", "rules"])
    assert result.exit_code == 0, result.output
    assert "rules: rank agreement" in result.output
    row = db.conn.execute("SELECT strategy, label_set, n, spearman FROM strategy_evals").fetchone()
    assert row[:3] == ("rules", "dev", 57) and row[3] > 0.7
