"""Command-line commands: `flask --app app <command>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

import config as config_mod
import ingest as ingest_mod


def init_app(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(import_payload)
    app.cli.add_command(classify_location)
    app.cli.add_command(reflag)

    import fetch_cli

    fetch_cli.init_app(app)

    import scoring_cli

    scoring_cli.init_app(app)

    import claude_cli

    claude_cli.init_app(app)

    import learning_cli

    learning_cli.init_app(app)

    import backup_cli

    backup_cli.init_app(app)


@click.command("import-payload")
@with_appcontext
@click.argument("source")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_payload(source: str, file: Path) -> None:
    """Ingest a saved API response of SOURCE from FILE."""
    from app import get_db, jobsift_config
    from scraper import SOURCES, PayloadError, get_source

    if source not in SOURCES:
        raise click.UsageError(f"unknown source {source!r}; known: {', '.join(sorted(SOURCES))}")
    try:
        parsed = get_source(source).parse(file.read_bytes())
    except PayloadError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    for reason in parsed.skipped:
        click.echo(f"skipped: {reason}", err=True)
    result = ingest_mod.ingest(get_db(), parsed.listings, jobsift_config())
    from scoring import service

    # Instant rules scores, so the new listings show a number with its reasoning at once.
    service.score_unscored(get_db(), service.active_profile(current_app.instance_path, dict(jobsift_config().scoring)))
    click.echo(
        f"{source}: {len(parsed.listings)} listings read, {len(result['new'])} new, "
        f"{len(result['updated'])} updated, {result['unchanged']} unchanged, {len(parsed.skipped)} skipped"
    )


@click.command("classify-location")
@with_appcontext
@click.argument("locations", nargs=-1, required=True)
@click.option("--home", help="Home city (default: from instance config).")
@click.option("--country", help="Home country, ISO code such as DE or NZ.")
@click.option("--remote-regions", help="Comma-separated regions a remote job may be limited to.")
@click.option("--utc-offset", type=float, help="Your UTC offset in hours.")
def classify_location(locations, home, country, remote_regions, utc_offset) -> None:
    """Print the location flag of each LOCATION string as one JSON object per line."""
    from dataclasses import replace

    from scoring.flags import classify_location as classify

    person = current_app.config["JOBSIFT"].person
    changes = {}
    if home:
        changes["home_city"] = home
        changes["home_aliases"] = ()
    if country:
        changes["home_country"] = country.upper()
    if remote_regions is not None:
        changes["remote_regions"] = tuple(r.strip() for r in remote_regions.split(",") if r.strip())
    if utc_offset is not None:
        changes["utc_offset"] = utc_offset
    person = replace(person, **changes)
    for loc in locations:
        flag = classify(loc, person)
        click.echo(json.dumps({"location": loc, "label": flag.label, "evidence": flag.evidence}, ensure_ascii=False))


@click.command("reflag")
@with_appcontext
@click.option("--all", "everything", is_flag=True, help="Recompute every listing, not only outdated ones.")
def reflag(everything: bool) -> None:
    """Recompute location and focus flags after a settings change."""
    from app import get_db, jobsift_config

    n = ingest_mod.recompute_flags(get_db(), jobsift_config(), only_outdated=not everything)
    click.echo(f"recomputed flags for {n} listings")
