"""Learning commands: `flask --app app bench-models` and `flask --app app export-training`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def init_app(app: Flask) -> None:
    """Register the bench and export commands."""
    app.cli.add_command(bench_models)
    app.cli.add_command(export_training)


def _profile(settings: dict):
    from scoring import service

    try:
        return service.active_profile(current_app.instance_path, settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("bench-models")
@click.option("--models", "model_args", multiple=True, metavar="PATH_OR_URL",
              help="A GGUF file or an OpenAI-compatible server URL (add '#model-id' to pick its model); "
                   "repeat for several. Default: [scoring] models, else the configured engine.")
@click.option("--strategies", default="fewshot,facts", show_default=True,
              help="Comma-separated model strategies to run with each model.")
@click.option("--limit", type=click.IntRange(min=1), help="Score at most N labeled listings (spread over the scale).")
@with_appcontext
def bench_models(model_args, strategies, limit) -> None:
    """Score the labeled listings with each local model and strategy; rank them by quality and speed."""
    from app import get_db
    from scoring import modelbench

    settings = dict(current_app.config["JOBSIFT"].scoring)
    try:
        specs = [modelbench.spec_from_arg(m) for m in model_args] or None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--models") from exc
    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    prof = _profile(settings)
    bar = {}

    def progress(label, i, n):
        if label not in bar:
            for other in bar.values():
                other.__exit__(None, None, None)
            bar.clear()
            bar[label] = click.progressbar(length=n, label=label, file=sys.stderr)
            bar[label].__enter__()
        bar[label].update(1)

    try:
        out = modelbench.run(get_db(), prof, settings, specs, names, limit, progress)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        for b in bar.values():
            b.__exit__(None, None, None)
    for err in out["errors"]:
        click.echo(f"error: {err}", err=True)
    click.echo(f"run {out['run_id']}: {out['n']} listings labeled by {out['label_source']}")
    click.echo(f"{'#':>2} {'model':<34} {'strategy':<8} {'rank':>6} {'n':>4} {'MAE':>6} {'rho':>6} {'band':>5} "
               f"{'valid':>5} {'grnd':>5} {'s/lst':>6} {'p tok/s':>8} {'g tok/s':>8}")
    for i, r in enumerate(out["rows"], 1):
        click.echo(
            f"{i:>2} {r['model'][:34]:<34} {r['strategy']:<8} {r['rank_score']:>6.3f} {r['n']:>4} "
            f"{_num(r['mae'], '.1f'):>6} {_num(r['spearman'], '.2f'):>6} {_num(r['band_agreement'], '.0%'):>5} "
            f"{r['valid_rate']:>5.0%} {r['grounded_rate']:>5.0%} {_num(r['median_s'], '.2f'):>6} "
            f"{_num(r['prompt_tps'], '.0f'):>8} {_num(r['gen_tps'], '.1f'):>8}"
        )
    if not out["rows"]:
        raise click.ClickException("no model could be benched (see the errors above)")


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


@click.command("export-training")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Training JSONL to write; the validation split goes beside it as NAME.val.jsonl.")
@click.option("--val-out", "val_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Validation JSONL to write (default: NAME.val.jsonl beside --out; MLX-LM wants valid.jsonl).")
@click.option("--val", type=float, default=0.2, show_default=True, help="Share of listings for validation (0 for none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Changes which listings go to validation.")
@with_appcontext
def export_training(out: Path, val_out: Path | None, val: float, seed: int) -> None:
    """Write Claude- and person-labeled listings as chat-format JSONL with the few-shot prompts."""
    from app import get_db
    from scoring import learning, training

    settings = dict(current_app.config["JOBSIFT"].scoring)
    prof = _profile(settings)
    cap = learning.settings_from(settings).example_cap
    try:
        result = training.export(get_db(), prof, out, val=val, seed=seed, example_cap=cap, val_out=val_out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc}") from exc
    click.echo(f"wrote {result.train} training examples to {result.train_path}"
               + (f" and {result.val} validation examples to {result.val_path}" if result.val_path else "")
               + f" ({result.human} labeled by you, {result.claude} by Claude)")
