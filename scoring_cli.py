"""Scoring commands: `flask --app app score` and `flask --app app evaluate`."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def init_app(app: Flask) -> None:
    """Register the scoring commands."""
    app.cli.add_command(score_command)
    app.cli.add_command(evaluate_command)


@click.command("score")
@click.option("--limit", type=int, help="Score at most this many listings.")
@with_appcontext
def score_command(limit: int | None) -> None:
    """Score unscored and stale listings with the active strategy (rules first, then the model)."""
    from scoring import service

    cfg = current_app.config["JOBSIFT"]
    bar = None

    def progress(i, n, result):
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=n, label="scoring", file=sys.stderr)
            bar.__enter__()
        bar.update(1)

    try:
        out = service.run(current_app.config["DATABASE"], current_app.instance_path, dict(cfg.scoring),
                          limit=limit, progress=progress, env_file=current_app.config.get("CLAUDE_ENV_FILE"))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    ev = out.get("evaluation")
    chosen = f"{out['strategy']}" + (f" (rank agreement {ev['spearman']:.2f} on {ev['n']} labels)" if ev else "")
    click.echo(f"strategy: {chosen}")
    click.echo(f"rules scores for new listings: {out['rules_first']}")
    if out.get("started") is False:
        click.echo(out.get("reason", "scoring did not start"))
    else:
        click.echo(f"scored: {out.get('scored', 0)}, fell back to rules: {out.get('fallbacks', 0)}, "
                   f"unusable model answers: {out.get('errors', 0)}")
    from scoring.queue import STATE

    if STATE.last_error:
        click.echo(f"last engine error: {STATE.last_error}", err=True)


@click.command("evaluate")
@click.option("--strategy", "strategies", multiple=True, type=click.Choice(["rules", "fewshot", "facts"]),
              help="Strategies to measure (default: rules, plus fewshot and facts when a model is configured).")
@click.option("--limit", type=int, help="Use only the first N labeled listings (model strategies are slow).")
@with_appcontext
def evaluate_command(strategies, limit) -> None:
    """Measure strategies on the shipped development set and record the result, so `auto` can choose."""
    import config as config_mod
    from app import get_db
    from scoring import evaluate as ev
    from scoring import queue, service

    cfg = current_app.config["JOBSIFT"]
    settings = dict(cfg.scoring)
    # The development labels were written for the bundled example CV: measure with its profile.
    prof = service.dev_profile()
    labeled = ev.dev_set()
    if limit:
        labeled = labeled[:limit]
    strategies = strategies or ("rules",)
    eval_cfg = config_mod.Config(person=ev.DEV_PERSON)
    engine = None
    for name in strategies:
        if name != "rules" and engine is None:
            engine = service.engine_factory(settings)()
        strategy = queue.build_strategy(name, prof, engine)
        with click.progressbar(length=len(labeled), label=name, file=sys.stderr) as bar:
            e = ev.evaluate(strategy, labeled, eval_cfg, progress=lambda i, n: bar.update(1))
        queue.record_evaluation(get_db(), e.summary, name, e.model, prof.version, "dev")
        s = e.summary
        click.echo(f"{name}: rank agreement {s.get('spearman')} MAE {s.get('mae')} top10 {s.get('top10')} "
                   f"valid {s.get('valid_rate')} grounded {s.get('grounded_rate')} on {s.get('n')} labels")
