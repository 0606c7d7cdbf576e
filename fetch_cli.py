"""`flask --app app fetch`: fetch the sources from a terminal, with a progress bar."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

import fetcher


def init_app(app: Flask) -> None:
    """Register the `fetch` command on the app."""
    app.cli.add_command(fetch_command)


@click.command("fetch")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help="Fetch only this source (repeatable): remoteok, greenhouse (every board) or greenhouse:gitlab.",
)
@click.option("--force", is_flag=True, help="Fetch even when a source's minimum interval has not passed.")
@with_appcontext
def fetch_command(sources: tuple[str, ...], force: bool) -> None:
    """Fetch the configured job sources and store their listings."""
    import scraper
    from app import get_db, jobsift_config

    for name in sources:
        if name.split(":", 1)[0] not in scraper.SOURCES:
            known = ", ".join(sorted(scraper.SOURCES))
            raise click.UsageError(f"unknown source {name!r}; known: {known}")

    factory = current_app.config.get("HTTP_CLIENT_FACTORY")
    if factory is None:
        from scraper.http import make_client

        factory = make_client

    bar = None

    def progress(name: str, i: int, n: int, status: str) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=n, label="Fetching", show_pos=True)
            bar.__enter__()
        if status == "running":
            bar.label = f"Fetching {name}"
            bar.render_progress()
        else:
            bar.update(1)

    client = factory()
    try:
        outcomes = fetcher.run_fetch(
            get_db(), jobsift_config(), client, sources=list(sources) or None, progress=progress, force=force
        )
    finally:
        client.close()
        if bar is not None:
            bar.__exit__(None, None, None)

    if not outcomes:
        click.echo("No sources configured: add some under [fetch] in config.toml.")
        return
    for outcome in outcomes:
        click.echo(outcome.summary(), err=outcome.status == "error")
    failed = [o for o in outcomes if o.status == "error"]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} sources failed")
