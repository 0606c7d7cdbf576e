"""The person's settings: where they live and may work, what they want, how to score.

Read from `instance/config.toml`; every key has a default so a missing or partial
file still gives a working app. The file is the person's, so we never rewrite it
except to create the commented starting copy.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Person:
    """Where the person lives and where they may work."""

    home_city: str = "Berlin"
    # Other names for the home metro (districts, suburbs, native spellings).
    home_aliases: tuple[str, ...] = ()
    # ISO 3166-1 alpha-2 code of the country the person may work in without a visa.
    home_country: str = "DE"
    # Regions a remote job may be restricted to and still include the person.
    # Empty means "derive from home_country" (e.g. DE -> EU, Europe, EMEA, DACH).
    remote_regions: tuple[str, ...] = ()
    # The person's UTC offset in hours, for 'Remote (UTC-1 to UTC+3)' style limits.
    utc_offset: float = 1.0


@dataclass(frozen=True)
class Focus:
    """Keyword tiers that decide focus:priority / focus:tech / focus:non-tech."""

    priority: tuple[str, ...] = (
        "python", "golang", "ml platform", "mlops", "machine learning", "llm",
        "data platform", "backend", "back-end", "platform engineer", "infrastructure",
    )
    tech: tuple[str, ...] = (
        "software", "developer", "engineer", "engineering", "devops", "sre",
        "programmer", "data scientist", "data engineer", "architect", "frontend",
        "front-end", "full stack", "fullstack", "full-stack", "mobile", "ios",
        "android", "qa", "security", "cloud", "kubernetes", "api",
    )
    non_tech: tuple[str, ...] = (
        "sales", "account executive", "marketing", "recruiter", "accountant",
        "nurse", "customer support", "customer success", "assistant", "designer",
        "copywriter", "legal", "finance", "hr ", "human resources", "office manager",
        "electrical engineer", "mechanical engineer", "civil engineer",
        "business development", "business developer", "virtual assistant", "driver", "warehouse",
    )


@dataclass(frozen=True)
class Config:
    """All of the person's settings."""

    person: Person = field(default_factory=Person)
    focus: Focus = field(default_factory=Focus)
    fetch_interval_minutes: int = 180
    sources: tuple[str, ...] = ("remoteok", "remotive", "hn", "wwr", "arbeitnow", "himalayas")
    greenhouse_boards: tuple[str, ...] = ()
    lever_sites: tuple[str, ...] = ()
    ashby_orgs: tuple[str, ...] = ()
    stale_after_days: int = 14
    scoring: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def flags_version(self) -> str:
        """A short hash of the settings flags depend on, so flags recompute when they change."""
        blob = json.dumps({"person": asdict(self.person), "focus": asdict(self.focus)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _tuple(value, default):
    if value is None:
        return default
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def from_dict(data: dict) -> Config:
    """Build a Config from parsed TOML, ignoring unknown keys and keeping defaults."""
    p = data.get("person", {}) or {}
    dp = Person()
    person = Person(
        home_city=str(p.get("home_city", dp.home_city)),
        home_aliases=_tuple(p.get("home_aliases"), dp.home_aliases),
        home_country=str(p.get("home_country", dp.home_country)).upper(),
        remote_regions=_tuple(p.get("remote_regions"), dp.remote_regions),
        utc_offset=float(p.get("utc_offset", dp.utc_offset)),
    )
    f = data.get("focus", {}) or {}
    df = Focus()
    focus = Focus(
        priority=_tuple(f.get("priority"), df.priority),
        tech=_tuple(f.get("tech"), df.tech),
        non_tech=_tuple(f.get("non_tech"), df.non_tech),
    )
    fe = data.get("fetch", {}) or {}
    dc = Config()
    return Config(
        person=person,
        focus=focus,
        fetch_interval_minutes=int(fe.get("interval_minutes", dc.fetch_interval_minutes)),
        sources=_tuple(fe.get("sources"), dc.sources),
        greenhouse_boards=_tuple(fe.get("greenhouse_boards"), ()),
        lever_sites=_tuple(fe.get("lever_sites"), ()),
        ashby_orgs=_tuple(fe.get("ashby_orgs"), ()),
        stale_after_days=int(fe.get("stale_after_days", dc.stale_after_days)),
        scoring=dict(data.get("scoring", {}) or {}),
        raw=data,
    )


def load(path: str | Path) -> Config:
    """Read the person's config.toml; a missing file gives the defaults."""
    path = Path(path)
    if not path.exists():
        return Config()
    with path.open("rb") as fh:
        return from_dict(tomllib.load(fh))


STARTER = """\
# jobsift settings. Every key is optional; delete a line to get the default.

[person]
# The city you live in, and other names for its metro area.
home_city = "Berlin"
home_aliases = ["Potsdam"]
# The country (ISO code) you may work in without a visa.
home_country = "DE"
# Extra regions a remote job may be limited to and still include you.
# Left empty, they follow from home_country (DE: EU, Europe, EMEA, DACH, CET...).
remote_regions = []
# Your UTC offset in hours, for 'Remote (UTC-1 to UTC+3)' style limits.
utc_offset = 1

[focus]
# Words that make a listing a priority for you (matched on whole words).
# priority = ["python", "ml platform", "backend"]

[fetch]
interval_minutes = 180
sources = ["remoteok", "remotive", "hn", "wwr", "arbeitnow", "himalayas"]
# Company boards: the token in boards.greenhouse.io/<token>, jobs.lever.co/<site>,
# jobs.ashbyhq.com/<org>.
greenhouse_boards = []
lever_sites = []
ashby_orgs = []
# A listing not seen for this many days is marked stale (never deleted).
stale_after_days = 14

[backup]
# Backups to keep in instance/backups (flask --app app backup; one a day while the app runs).
keep = 7

[scoring]
# Which strategy scores listings: "auto" uses the one that agrees best with labels
# (yours once you have 15+, else the shipped development set).
# strategy = "auto"          # auto | rules | fewshot | facts
# profile = "example"        # a file in instance/scoring_profiles/ (default: the newest)
#
# The local model. With nothing set, a tiny demo model is used (not a real judge).
# local_provider = "llamacpp"            # in-process llama.cpp, or "openai" for a server
# model_path = "/path/to/model.gguf"     # for llamacpp
# base_url = "http://localhost:8080/v1"  # for openai: llama.cpp server, Ollama (/v1), vLLM, LM Studio
# model = "qwen2.5-coder:1.5b"           # for openai; default: the server's first model
#
# Claude (needs ANTHROPIC_API_KEY in the environment or in .env next to app.py).
# mode = "hybrid"                        # local | hybrid: Claude re-scores what the local model is unsure of
# uncertainty_band = [65, 85]
# claude_model = "claude-haiku-4-5"
# claude_rescore_model = "claude-sonnet-4-6"
# claude_timeout_s = 60
# monthly_budget_usd = 5.0
#
# [scoring.prices."claude-haiku-4-5"]    # $ per million tokens
# input = 1.0
# output = 5.0
# cache_write = 1.25
# cache_read = 0.10
"""


def ensure_instance(instance_path: str | Path, example_db: str | Path | None = None) -> None:
    """Create instance/ with a starter config.toml and (when absent) jobs.db from the example."""
    import shutil

    instance = Path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "scoring_profiles").mkdir(exist_ok=True)
    (instance / "backups").mkdir(exist_ok=True)
    cfg = instance / "config.toml"
    if not cfg.exists():
        cfg.write_text(STARTER)
    db = instance / "jobs.db"
    if example_db and not db.exists() and Path(example_db).exists():
        shutil.copyfile(example_db, db)
