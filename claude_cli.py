"""Claude commands: `flask --app app calibrate | escalate | spend`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from scoring import calibration, claude, escalation, ledger
from scoring import profile as profile_mod
from scoring.queue import profiles_dir


def init_app(app: Flask) -> None:
    """Register the Claude commands on the app."""
    for command in (calibrate, escalate, spend):
        app.cli.add_command(command)


def _settings() -> claude.ClaudeSettings:
    s = claude.settings_from(current_app.config["JOBSIFT"].scoring)
    for problem in s.problems:
        click.echo(f"warning: {problem}", err=True)
    return s


def _client(settings: claude.ClaudeSettings) -> claude.ClaudeClient:
    try:
        return claude.client_for(settings, current_app.config["DATABASE"], current_app.config.get("CLAUDE_ENV_FILE"))
    except claude.NoKey as exc:
        raise click.ClickException(str(exc)) from None


@click.command("calibrate")
@click.option("--cv", "cv_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your CV as Markdown or plain text.")
@click.option("--sample", "sample_n", default=calibration.DEFAULT_SAMPLE, show_default=True,
              type=click.IntRange(1, 500), help="How many stored listings Claude scores.")
@click.option("--batch", is_flag=True, help="Use the Message Batches API: half price, may take a while; resumable.")
@click.option("--name", "cv_name", help="Profile name (default: the CV file name).")
@click.option("--seed", default=0, show_default=True, help="Seed of the sample choice.")
@click.option("--poll-interval", default=30.0, show_default=True, help="Seconds between batch status checks.")
@click.option("--ignore-budget", is_flag=True, help="Go on even when this month's budget is reached.")
@with_appcontext
def calibrate(cv_path: Path, sample_n: int, batch: bool, cv_name: str | None, seed: int, poll_interval: float,
              ignore_budget: bool) -> None:
    """Derive a scoring profile from your CV with Claude and score a varied sample of stored listings."""
    from app import get_db

    try:
        cv_text = cv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{cv_path} is not UTF-8 text; save it as Markdown or plain text") from None
    settings = _settings()
    client = _client(settings)
    last = {}

    def show(snap: dict) -> None:
        line = (snap["phase"], snap["done"], snap["total"], snap["message"])
        if line != last.get("line") and snap["phase"] in ("scoring", "batch"):
            note = f" ({snap['message']})" if snap["message"] else ""
            click.echo(f"{snap['phase']}: {snap['done']}/{snap['total']}{note}", err=True)
        last["line"] = line

    state = calibration.CalibrationState(on_change=show)
    try:
        result = calibration.run(get_db(), client, cv_text, cv_name or cv_path.stem, current_app.instance_path,
                                 sample_n=sample_n, batch=batch, seed=seed, poll_s=poll_interval,
                                 ignore_budget=ignore_budget, state=state)
    except (claude.ClaudeError, calibration.CalibrationError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()
    a = result["agreement"]
    click.echo(f"profile saved: {result['profile_path']}")
    click.echo(f"Claude scored {result['scored']} of {result['sampled']} sampled listings"
               f" ({result['invalid']} unusable answers) for ${result['cost_usd']:.4f}")
    click.echo(f"derived rules vs Claude: spearman {a['spearman']}, MAE {a['mae']}, top10 {a['top10']},"
               f" band agreement {a['band_agreement']}")


@click.command("escalate")
@click.option("--limit", type=click.IntRange(1), help="At most this many queued escalations.")
@click.option("--workers", type=click.IntRange(1, 8), help="Concurrent Claude calls (default from config).")
@with_appcontext
def escalate(limit: int | None, workers: int | None) -> None:
    """Send queued escalations (uncertain local scores) to Claude, within the monthly budget."""
    from app import get_db

    settings = _settings()
    client = _client(settings)
    try:
        prof = profile_mod.active(profiles_dir(current_app.instance_path),
                                  current_app.config["JOBSIFT"].scoring.get("profile") or None)
        result = escalation.run_escalations(get_db(), client, settings, workers or settings.escalation_workers,
                                            profile=prof, limit=limit)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()
    if not result.get("started"):
        raise click.ClickException(result.get("reason", "escalations did not start"))
    click.echo(f"{result['done']} scored by Claude, {result['failed']} failed, {result['requeued']} left queued"
               f" of {result['total']}")
    if result["paused"]:
        click.echo(f"paused: {result['paused']}", err=True)


@click.command("spend")
@with_appcontext
def spend() -> None:
    """Print Claude spend today and this month per model."""
    from app import get_db

    settings = _settings()
    s = ledger.summary(get_db(), settings.monthly_budget_usd)
    for title, rows, total in (("today", s["today"], s["today_total"]), ("this month", s["month"], s["month_total"])):
        click.echo(f"{title}: {total['calls']} calls, ${total['cost_usd']:.4f},"
                   f" cache hit share {total['cache_hit_share']:.0%}")
        for r in rows:
            click.echo(f"  {r['model']}: {r['calls']} calls, {r['prompt_tokens']} in,"
                       f" {r['cache_read_tokens']} cache read,"
                       f" {r['cache_write_tokens']} cache write, {r['completion_tokens']} out, ${r['cost_usd']:.4f}")
    click.echo(f"budget: ${s['budget_usd']:.2f}, left ${s['budget_left_usd']:.4f}"
               + (" (reached: escalations paused)" if s["over_budget"] else ""))
    if s["estimated_saving_usd"] is not None:
        click.echo(f"estimated saving: ${s['estimated_saving_usd']:.2f} ({s['listings_scored_locally']} listings scored"
                   f" locally at ${s['avg_claude_cost_per_listing']:.5f} each with Claude)")
