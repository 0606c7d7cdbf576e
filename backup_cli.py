"""`flask --app app backup` and `flask --app app check`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

import backup as backup_mod


def init_app(app: Flask) -> None:
    """Register the backup and check commands on the app."""
    app.cli.add_command(backup_command)
    app.cli.add_command(check_command)


@click.command("backup")
@with_appcontext
@click.option("--keep", type=click.IntRange(min=1), help="Backups to keep (default: [backup] keep, else 7).")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Folder for backups (default: instance/backups).")
def backup_command(keep: int | None, directory: Path | None) -> None:
    """Copy the database (while the app runs) into the backups folder and drop the oldest."""
    app = current_app
    target = directory or backup_mod.backup_dir(app)
    keep = keep or backup_mod.keep_setting(app.config["JOBSIFT"])
    try:
        result = backup_mod.make_backup(app.config["DATABASE"], target, keep)
    except backup_mod.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backup written: {result.path} ({_size(result.size_bytes)})")
    for path in result.removed:
        click.echo(f"removed old backup: {path.name}")
    click.echo(f"{result.kept} backup{'s' if result.kept != 1 else ''} kept in {target} (keep = {keep})")


@click.command("check")
@with_appcontext
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def check_command(path: Path | None) -> None:
    """Check the database (or a backup at PATH): integrity, foreign keys, search index, rows per table."""
    target = path or Path(current_app.config["DATABASE"])
    report = backup_mod.check(target)
    click.echo(f"checking {report.path}")
    if report.integrity:
        click.echo(f"integrity_check: {report.integrity[0] if report.integrity == ['ok'] else 'FAILED'}")
    width = max((len(name) for name in report.counts), default=0)
    for name, n in report.counts.items():
        click.echo(f"  {name:<{width}}  {n:>9,}")
    if report.ok:
        click.echo("no problems found")
        return
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    raise click.ClickException(f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''} found")


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    return f"{n / 1000:.0f} kB"
