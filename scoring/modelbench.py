"""The model bench: every configured local model with every model strategy, scored on labeled listings.

Labels are Claude's and the person's from the database (the person's win), or the
shipped development set while there are fewer than five. Each model x strategy gets
agreement (MAE, Spearman, band agreement), the share of answers that were usable
JSON and whose evidence is in the listing, its median seconds per listing and its
token throughput, and a rank score that weighs quality against speed. Rows go to
`model_benchmarks`; `local_model = "auto"` then runs the best-ranked model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Callable

import config as config_mod
import db as storage
from scoring import evaluate, learning, metrics, prompts, queue
from scoring.profile import Profile
from scoring.providers import PROVIDERS, EngineError, make_engine
from scoring.strategies import STRATEGIES, OutputError

MODEL_STRATEGIES = ("fewshot", "facts")
MIN_DB_LABELS = 5
DEFAULT_QUALITY_WEIGHT = 0.8
DEFAULT_SPEED_WEIGHT = 0.2


# ---------------------------------------------------------------- which models


@dataclass(frozen=True)
class ModelSpec:
    """One local model to bench: a GGUF file (llamacpp) or a server URL and model id (openai)."""

    provider: str
    model_path: str | None = None
    base_url: str | None = None
    model: str | None = None

    @property
    def ref(self) -> str:
        """What make_engine needs, as one string: a path, 'URL#model', or '#model'."""
        if self.base_url:
            return self.base_url + (f"#{self.model}" if self.model else "")
        if self.model_path:
            return self.model_path
        return f"#{self.model}" if self.model else ""

    @classmethod
    def from_ref(cls, provider: str, ref: str) -> "ModelSpec":
        """The spec a stored `model_ref` names."""
        if ref.startswith(("http://", "https://")):
            url, _, model = ref.partition("#")
            return cls(provider, base_url=url, model=model or None)
        if ref.startswith("#"):
            return cls(provider, model=ref[1:] or None)
        return cls(provider, model_path=ref or None)

    def settings(self, base: dict | None) -> dict:
        """The [scoring] settings with this model as the local engine."""
        out = {k: v for k, v in (base or {}).items() if k not in ("model_path", "base_url", "model")}
        out["local_provider"] = self.provider
        for key in ("model_path", "base_url", "model"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def spec_from_entry(entry) -> ModelSpec:
    """A model from one [scoring] models entry: {provider, model_path} or {provider, base_url, model}."""
    if not isinstance(entry, dict):
        raise ValueError(f"each [scoring] models entry must be a table like {{provider = \"llamacpp\", "
                         f"model_path = \"...\"}}, got {entry!r:.60}")
    provider = str(entry.get("provider") or "llamacpp").strip().lower()
    if provider not in PROVIDERS:
        raise ValueError(f"[scoring] models: unknown provider {provider!r}; choose one of: {', '.join(sorted(PROVIDERS))}")
    path, url, model = entry.get("model_path"), entry.get("base_url"), entry.get("model")
    if path is not None and url is not None:
        raise ValueError(f"[scoring] models: give model_path or base_url, not both ({entry!r:.80})")
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ValueError(f"[scoring] models: base_url must start with http:// or https://, got {url!r}")
    return ModelSpec(provider, model_path=str(path) if path else None, base_url=str(url).rstrip("/") if url else None,
                     model=str(model) if model else None)


def spec_from_arg(text: str) -> ModelSpec:
    """A model named on the command line: a GGUF path, or a server URL with an optional '#model-id'."""
    text = (text or "").strip()
    if not text:
        raise ValueError("an empty --models value; give a GGUF path or a server URL such as http://localhost:8080/v1")
    if text.startswith(("http://", "https://")):
        url, _, model = text.partition("#")
        return ModelSpec("openai", base_url=url.rstrip("/"), model=model or None)
    return ModelSpec("llamacpp", model_path=str(Path(text).expanduser()))


def configured_spec(settings: dict | None) -> ModelSpec:
    """The single local engine the [scoring] settings describe (the demo model when nothing is set)."""
    s = settings or {}
    provider = str(s.get("local_provider") or "llamacpp").strip().lower()
    return ModelSpec(provider, model_path=s.get("model_path") or None, base_url=s.get("base_url") or None,
                     model=s.get("model") or None)


def configured_models(settings: dict | None) -> tuple[list[ModelSpec], list[str]]:
    """The models listed in [scoring] models (or the one configured engine), and problems with the list."""
    entries = (settings or {}).get("models")
    if not entries:
        return [configured_spec(settings)], []
    if not isinstance(entries, list):
        return [configured_spec(settings)], ["[scoring] models must be a list of tables; benching the configured engine"]
    specs, problems = [], []
    for entry in entries:
        try:
            specs.append(spec_from_entry(entry))
        except ValueError as exc:
            problems.append(str(exc))
    return specs, problems


def weights_from(settings: dict | None) -> tuple[float, float]:
    """The quality and speed weights of the rank score ([scoring] bench_quality_weight, bench_speed_weight)."""
    s = settings or {}
    out = []
    for key, default in (("bench_quality_weight", DEFAULT_QUALITY_WEIGHT), ("bench_speed_weight", DEFAULT_SPEED_WEIGHT)):
        value = s.get(key, default)
        try:
            value = float(value)
            if value < 0 or isinstance(s.get(key), bool):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"[scoring] {key} must be a number >= 0, got {s.get(key)!r}") from None
        out.append(value)
    if out[0] + out[1] <= 0:
        raise ValueError("[scoring] bench_quality_weight and bench_speed_weight cannot both be 0")
    return out[0], out[1]


# ---------------------------------------------------------------- which listings


@dataclass
class BenchItem:
    """A labeled listing as the strategies see it."""

    key: str
    view: dict
    label: int
    listing_id: int | None = None


def bench_items(db: storage.Database, prof: Profile, example_cap: int = 8,
                min_labels: int = MIN_DB_LABELS) -> tuple[list[BenchItem], str]:
    """The labeled listings to score and where their labels come from (claude | human | claude+human | dev)."""
    labels = learning.combined_labels(db, prof)
    # A listing shown as a few-shot example would be scored by copying it.
    shown = {e.listing_id for e in prompts.select_examples(prof.examples, example_cap) if e.listing_id}
    if len([lid for lid in labels if lid not in shown]) >= min_labels:
        labels = {lid: lab for lid, lab in labels.items() if lid not in shown}
    views = queue.listing_views(db, list(labels))
    items = [BenchItem(f"listing-{lid}", views[lid], labels[lid].score, lid) for lid in labels if lid in views]
    if len(items) >= min_labels:
        sources = sorted({labels[i.listing_id].source for i in items})
        return items, "+".join(sources)
    cfg = config_mod.Config(person=evaluate.DEV_PERSON)
    return [BenchItem(item.key, evaluate.listing_view(item.listing, cfg), item.label)
            for item in evaluate.dev_set()], "dev"


def spread(items: list[BenchItem], n: int | None) -> list[BenchItem]:
    """At most n items spread evenly over the label scale, so a short bench still sees good and bad listings."""
    if not n or n >= len(items):
        return list(items)
    if n <= 0:
        return []
    ordered = sorted(items, key=lambda i: (i.label, i.key))
    step = len(ordered) / n
    return [ordered[int(i * step + step / 2)] for i in range(n)]


# ---------------------------------------------------------------- measuring


class MeteredEngine:
    """An engine wrapper that keeps every completion's token counts and latency (failed answers included)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.calls: list = []

    @property
    def provider(self) -> str:
        """The wrapped engine's provider."""
        return self.engine.provider

    @property
    def model(self) -> str:
        """The wrapped engine's model id."""
        return self.engine.model

    def complete(self, messages, **kw):
        """Complete through the wrapped engine and keep the completion."""
        c = self.engine.complete(messages, **kw)
        self.calls.append(c)
        return c


def measure(engine, prof: Profile, strategy_name: str, items: list[BenchItem], example_cap: int = 8,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Score the items with one engine and strategy; agreement, valid and grounded rates, speed and throughput."""
    metered = MeteredEngine(engine)
    cls = STRATEGIES[strategy_name]
    strategy = cls(prof, metered, example_cap=example_cap) if strategy_name == "fewshot" else cls(prof, metered)
    preds, labels, seconds = [], [], []
    grounded = 0
    for i, item in enumerate(items):
        before = len(metered.calls)
        try:
            r = strategy.score(item.view)
        except OutputError:
            r = None
        seconds.append(sum(c.latency_ms for c in metered.calls[before:]) / 1000)
        if r is not None:
            preds.append(r.score)
            labels.append(item.label)
            grounded += r.grounded
        if progress:
            progress(i + 1, len(items))
    total_s = sum(c.latency_ms for c in metered.calls) / 1000
    return {
        "n": len(preds),
        "mae": round(metrics.mae(preds, labels), 1) if preds else None,
        "spearman": round(metrics.spearman(preds, labels), 3) if preds else None,
        "band_agreement": round(metrics.band_agreement(preds, labels), 3) if preds else None,
        "valid_rate": round(len(preds) / len(items), 3) if items else 0.0,
        "grounded_rate": round(grounded / len(preds), 3) if preds else 0.0,
        "median_s": round(median(seconds), 3) if seconds else None,
        # Wall-clock throughput: a completion's latency covers reading the prompt and writing the answer.
        "prompt_tps": round(sum(c.prompt_tokens for c in metered.calls) / total_s, 1) if total_s else None,
        "gen_tps": round(sum(c.completion_tokens for c in metered.calls) / total_s, 1) if total_s else None,
    }


def quality(row: dict) -> float:
    """0-1: rank agreement (half), closeness and band agreement (a quarter each), times the usable-answer rate."""
    if not row.get("n"):
        return 0.0
    rho = max(0.0, row.get("spearman") or 0.0)
    closeness = max(0.0, 1 - (row.get("mae") or 0.0) / 100)
    return row.get("valid_rate", 0.0) * (0.5 * rho + 0.25 * closeness + 0.25 * (row.get("band_agreement") or 0.0))


def rank(rows: list[dict], quality_weight: float = DEFAULT_QUALITY_WEIGHT,
         speed_weight: float = DEFAULT_SPEED_WEIGHT) -> list[dict]:
    """Set each row's rank_score (weighted quality and speed, 0-1) and return the rows best first.

    Speed is relative: the fastest median seconds per listing scores 1, one twice as
    slow 0.5; a row without a usable answer scores 0 on both.
    """
    times = [r["median_s"] for r in rows if r.get("n") and r.get("median_s") is not None]
    fastest = min(times) if times else None
    total = quality_weight + speed_weight
    for r in rows:
        if not r.get("n") or r.get("median_s") is None:
            speed = 0.0
        elif r["median_s"] <= 0 or not fastest:
            speed = 1.0
        else:
            speed = fastest / r["median_s"]
        r["quality"] = round(quality(r), 4)
        r["speed"] = round(speed, 4)
        r["rank_score"] = round((quality_weight * quality(r) + speed_weight * speed) / total, 4)
    return sorted(rows, key=lambda r: (-r["rank_score"], r.get("model", ""), r.get("strategy", "")))


# ---------------------------------------------------------------- a bench run


def run(db: storage.Database, prof: Profile, settings: dict | None, models: list[ModelSpec] | None = None,
        strategies: tuple[str, ...] = MODEL_STRATEGIES, limit: int | None = None,
        progress: Callable[[str, int, int], None] | None = None, engine_factory=make_engine) -> dict:
    """Bench every model with every strategy on the labeled listings; store and return the ranked rows."""
    unknown = [s for s in strategies if s not in MODEL_STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy {unknown[0]!r}; the bench runs model strategies: "
                         f"{', '.join(MODEL_STRATEGIES)}")
    if not strategies:
        raise ValueError("no strategies to bench")
    ls = learning.settings_from(settings)
    qw, sw = weights_from(settings)
    problems: list[str] = []
    if models is None:
        models, problems = configured_models(settings)
    items, label_source = bench_items(db, prof, ls.example_cap)
    items = spread(items, limit)
    if not items:
        raise ValueError("no labeled listings to bench on")
    run_id = f"{storage.now_iso()}-{uuid.uuid4().hex[:6]}"
    rows, errors = [], list(problems)
    for spec in models:
        try:
            engine = engine_factory(spec.settings(settings))
            name = engine.model
        except (EngineError, ValueError, OSError) as exc:
            errors.append(f"{spec.ref or spec.provider}: {exc}")
            continue
        ref = spec.ref or ""
        if spec.provider == "llamacpp" and getattr(engine, "model_path", None):
            ref = engine.model_path  # the demo model has no configured path: keep the resolved one
        for strategy_name in strategies:
            label = f"{name} {strategy_name}"
            try:
                row = measure(engine, prof, strategy_name, items, ls.example_cap,
                              (lambda i, n, label=label: progress(label, i, n)) if progress else None)
            except (EngineError, ValueError) as exc:
                errors.append(f"{name} ({strategy_name}): {exc}")
                break  # an engine that fails once fails the next strategy too
            rows.append({"provider": spec.provider, "model": name, "model_ref": ref, "strategy": strategy_name,
                         "label_source": label_source, **row})
        close = getattr(engine, "close", None)
        if callable(close):
            close()
    ranked = rank(rows, qw, sw)
    at = storage.now_iso()
    with storage.write(db):
        for r in ranked:
            db["model_benchmarks"].insert({
                "run_id": run_id, "created_at": at,
                **{k: r.get(k) for k in ("provider", "model", "model_ref", "strategy", "label_source", "n", "mae",
                                         "spearman", "band_agreement", "valid_rate", "grounded_rate", "median_s",
                                         "prompt_tps", "gen_tps", "rank_score")},
            })
    _record_evaluations(db, ranked, settings, prof, label_source)
    return {"run_id": run_id, "rows": ranked, "errors": errors, "label_source": label_source, "n": len(items)}


def _record_evaluations(db: storage.Database, rows: list[dict], settings: dict | None, prof: Profile,
                        label_source: str) -> None:
    """Let `auto` choose among strategies with the measurements of the model the scorer will use."""
    in_use = in_use_ref(db, settings)
    label_set = "dev" if label_source == "dev" else "person"
    for r in rows:
        if r["model_ref"] == in_use and r["n"]:
            summary = {k: r.get(k) for k in ("n", "spearman", "mae", "band_agreement", "valid_rate", "grounded_rate",
                                             "median_s")}
            queue.record_evaluation(db, summary, r["strategy"], r["model"], prof.version, label_set)


def in_use_ref(db: storage.Database, settings: dict | None) -> str:
    """The model_ref of the engine the scorer uses: the best-ranked one for local_model = "auto", else the configured one."""
    s = best_model_settings(db, settings)
    spec = configured_spec(s)
    if spec.provider == "llamacpp" and not spec.model_path:
        from scoring.providers import demo_model_path

        return str(Path(demo_model_path()).resolve()) if demo_model_path() else ""
    if spec.provider == "llamacpp":
        return str(Path(spec.model_path).expanduser().resolve())
    return spec.ref


def latest_run(db: storage.Database) -> list[dict]:
    """Rows of the newest bench run, best first."""
    row = db.conn.execute("SELECT run_id FROM model_benchmarks ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return []
    return list(db.query("SELECT * FROM model_benchmarks WHERE run_id = ? ORDER BY rank_score DESC, id", [row[0]]))


def runs(db: storage.Database, limit: int = 10) -> list[dict]:
    """The newest bench runs with their size and best row, newest first."""
    out = []
    for run_id, at, n_rows in db.conn.execute(
        "SELECT run_id, max(created_at), count(*) FROM model_benchmarks GROUP BY run_id ORDER BY max(id) DESC LIMIT ?",
        [limit],
    ).fetchall():
        best = next(iter(db.query(
            "SELECT model, strategy, rank_score, label_source, n FROM model_benchmarks WHERE run_id = ?"
            " ORDER BY rank_score DESC, id LIMIT 1", [run_id])), None)
        out.append({"run_id": run_id, "created_at": at, "rows": n_rows, "best": best})
    return out


def best_model_settings(db: storage.Database, settings: dict | None) -> dict:
    """The [scoring] settings with the best-ranked benched model when local_model = "auto"; otherwise unchanged."""
    settings = dict(settings or {})
    if str(settings.get("local_model", "")).strip().lower() != "auto":
        return settings
    for r in latest_run(db):
        if r["n"] and r["provider"] in PROVIDERS:
            return ModelSpec.from_ref(r["provider"], r["model_ref"] or "").settings(settings)
    return settings
