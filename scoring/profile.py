"""Scoring profiles: what one CV wants, its scored examples, and the weights fitted to labels.

A profile lives in `instance/scoring_profiles/<cv_name>.json`. Its version is a hash
of its content, and every score records the version that produced it, so a change
to the profile (a new example, refitted weights) marks older scores stale.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LOCATION_LABELS = (
    "loc:home", "loc:remote", "loc:unknown", "loc:country-other", "loc:remote-restricted", "loc:overseas-onsite",
)
FOCUS_LABELS = ("focus:priority", "focus:tech", "focus:non-tech")

# How much each location and focus label moves a score before any fit to labels:
# an impossible location or a non-engineering role sinks a listing whatever it says.
DEFAULT_LOCATION_WEIGHTS = {
    "loc:home": 15.0, "loc:remote": 15.0, "loc:unknown": 0.0, "loc:country-other": -10.0,
    "loc:remote-restricted": -40.0, "loc:overseas-onsite": -40.0,
}
DEFAULT_FOCUS_WEIGHTS = {"focus:priority": 10.0, "focus:tech": 0.0, "focus:non-tech": -40.0}
# For the `facts` strategy: how much each extracted role family and seniority moves
# a score. Neutral for engineering families, strongly negative for the rest; a
# profile states its own.
DEFAULT_FAMILY_WEIGHTS = {
    "backend": 0.0, "ml_ai": 0.0, "data": 0.0, "platform_devops": 0.0, "fullstack": 0.0, "frontend": 0.0, "mobile": 0.0,
    "qa": 0.0, "security": 0.0, "research": -10.0, "management": -10.0, "sales_marketing": -40.0, "support": -40.0,
    "design": -40.0, "other_nontech": -40.0,
}
DEFAULT_SENIORITY_WEIGHTS = {
    "intern": 0.0, "junior": 0.0, "mid": 0.0, "senior": 0.0, "staff_principal": 0.0, "lead_manager": 0.0, "unspecified": 0.0,
}


class Criterion(BaseModel):
    """Something the person wants (positive weight) or a red flag (negative weight)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    terms: list[str] = Field(min_length=1)
    weight: float

    @field_validator("terms")
    @classmethod
    def _strip_terms(cls, v: list[str]) -> list[str]:
        terms = [t.strip() for t in v if t and t.strip()]
        if not terms:
            raise ValueError("a criterion needs at least one match term")
        return terms


class Example(BaseModel):
    """A scored listing that teaches the local model and the weights."""

    model_config = ConfigDict(extra="ignore")
    title: str
    company: str = ""
    location: str = ""
    score: int = Field(ge=0, le=100)
    reasoning: str = ""
    source: Literal["claude", "human", "dataset"] = "claude"
    listing_id: int | None = None
    # A short excerpt of the listing, so examples can be re-scored by other strategies.
    excerpt: str = ""
    created_at: str = ""


class Weights(BaseModel):
    """A linear model over rule features, fitted to labels; absent means the profile's own weights."""

    model_config = ConfigDict(extra="forbid")
    intercept: float
    coef: dict[str, float]
    n_labels: int
    fitted_at: str = ""


class Profile(BaseModel):
    """One CV's scoring profile."""

    model_config = ConfigDict(extra="ignore")
    cv_name: str
    cv_summary: str = ""
    criteria: list[Criterion] = Field(default_factory=list)
    red_flags: list[Criterion] = Field(default_factory=list)
    location_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_LOCATION_WEIGHTS))
    focus_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FOCUS_WEIGHTS))
    family_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FAMILY_WEIGHTS))
    seniority_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SENIORITY_WEIGHTS))
    examples: list[Example] = Field(default_factory=list)
    weights: Weights | None = None

    @field_validator("cv_name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", v or ""):
            raise ValueError("cv_name: letters, digits, '.', '_' and '-' only (it names a file)")
        return v

    @property
    def version(self) -> str:
        """A short content hash; changes whenever anything that affects a score changes."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def weights_version(self) -> str:
        """Hash of the rule weights alone (criteria, label weights and any fitted model)."""
        blob = json.dumps(
            {
                "criteria": [c.model_dump() for c in self.criteria],
                "red_flags": [c.model_dump() for c in self.red_flags],
                "location": self.location_weights,
                "focus": self.focus_weights,
                "family": self.family_weights,
                "seniority": self.seniority_weights,
                "fit": self.weights.model_dump() if self.weights else None,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load(path: str | Path) -> Profile:
    """Read and validate a profile file; errors name the file and the bad field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read profile: {exc}") from exc
    try:
        return Profile.model_validate(data)
    except Exception as exc:
        raise ValueError(f"{path}: invalid profile: {exc}") from exc


def save(profile: Profile, directory: str | Path) -> Path:
    """Write the profile as `<directory>/<cv_name>.json` atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{profile.cv_name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(profile.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


BUNDLED = Path(__file__).resolve().parent.parent / "data" / "profiles"


def active(profiles_dir: str | Path, name: str | None = None) -> Profile:
    """The profile to score with: the named one, else the newest in the person's folder, else the bundled example."""
    profiles_dir = Path(profiles_dir)
    if name:
        for d in (profiles_dir, BUNDLED):
            if (d / f"{name}.json").exists():
                return load(d / f"{name}.json")
        raise ValueError(f"no scoring profile named {name!r} in {profiles_dir}")
    mine = sorted(profiles_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if profiles_dir.exists() else []
    if mine:
        return load(mine[0])
    return load(BUNDLED / "example.json")
