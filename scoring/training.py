"""Training export: labeled listings as chat-format JSONL, for fine-tuning a small local model.

Each line is {"messages": [system, user, assistant]} with exactly the prompts of
the `fewshot` strategy (system: rubric, profile, examples; user: the listing block)
and the answer it asks for as the assistant turn: {"score", "reasoning", "evidence"}.
Labels are Claude's and the person's (the person's win for the same job). A listing
goes to the validation file by a hash of its source and source id, so adding labels
later never moves an earlier listing between the files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import db as storage
from scoring import learning, prompts, queue
from scoring.learning import Label
from scoring.profile import Profile
from scoring.strategies import RulesStrategy

# A training answer must fit the schema the few-shot strategy enforces.
_ANSWER = prompts.fewshot_schema()["properties"]
MAX_REASONING = _ANSWER["reasoning"]["maxLength"]
MAX_EVIDENCE = _ANSWER["evidence"]["maxLength"]


@dataclass
class Exported:
    """What an export wrote."""

    train_path: Path
    val_path: Path | None
    train: int
    val: int
    human: int
    claude: int


def in_validation(source: str, source_id: str, val: float, seed: int = 0) -> bool:
    """Whether a listing belongs to the validation split: a stable hash of its identity, not of its row id."""
    if val <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{source}:{source_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val


def answer(label: Label, view: dict, rules_evidence: list[str]) -> dict:
    """The assistant's answer for a label: its score, its reasoning, and a quote from the listing."""
    quotes = [q for q in label.evidence if q.strip()] or [q.strip("…") for q in rules_evidence if q.strip("…").strip()]
    # The person gives a reason, not a quote: the title is always a quote from the listing.
    evidence = quotes[0] if quotes else view["title"]
    return {
        "score": int(label.score),
        "reasoning": " ".join((label.reasoning or "").split())[:MAX_REASONING],
        "evidence": evidence[:MAX_EVIDENCE],
    }


def raise_if_unusable(prof: Profile) -> None:
    """Refuse a profile that cannot give the few-shot prompt (it must describe the candidate)."""
    if not (prof.cv_summary or prof.criteria):
        raise ValueError(f"profile {prof.cv_name!r} has no CV summary or criteria: calibrate it first")


def rows(db: storage.Database, prof: Profile, example_cap: int = 8) -> list[dict]:
    """One chat record per labeled listing still stored, with its listing id, source and label source."""
    raise_if_unusable(prof)
    labels = learning.combined_labels(db, prof)
    views = queue.listing_views(db, list(labels))
    identity = {}
    if labels:
        marks = ",".join("?" * len(labels))
        identity = {lid: (src, sid) for lid, src, sid in db.conn.execute(
            f"SELECT id, source, source_id FROM listings WHERE id IN ({marks})", list(labels))}
    examples = prompts.select_examples(prof.examples, example_cap)
    rules = RulesStrategy(prof)
    out = []
    for lid, label in labels.items():
        v = views.get(lid)
        if v is None:
            continue
        messages = prompts.fewshot_messages(prof, v, examples)
        reply = answer(label, v, rules.score(v).evidence)
        messages.append({"role": "assistant", "content": json.dumps(reply, ensure_ascii=False)})
        src, sid = identity[lid]
        out.append({"listing_id": lid, "source": src, "source_id": sid, "label_source": label.source,
                    "messages": messages})
    return out


def default_val_path(out: str | Path) -> Path:
    """Where the validation split goes unless told: `<name>.val.jsonl` beside the training file."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".val.jsonl")


def export(db: storage.Database, prof: Profile, out: str | Path, val: float = 0.2, seed: int = 0,
           example_cap: int = 8, val_out: str | Path | None = None) -> Exported:
    """Write the training JSONL to `out` and the validation split to `val_out` (default beside it)."""
    if not 0 <= val < 1:
        raise ValueError(f"--val must be from 0 to below 1 (a share of the labels), got {val}")
    out = Path(out)
    val_path = Path(val_out) if val_out else default_val_path(out)
    if val > 0 and val_path.resolve() == out.resolve():
        raise ValueError("the training and validation files must differ")
    records = rows(db, prof, example_cap)
    if not records:
        raise ValueError("no labeled listings to export: calibrate with Claude or override some scores first")
    val_path = val_path if val > 0 else None
    train_lines, val_lines = [], []
    for r in records:
        line = json.dumps({"messages": r["messages"]}, ensure_ascii=False)
        (val_lines if in_validation(r["source"], r["source_id"], val, seed) else train_lines).append(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, train_lines)
    if val_path is not None:
        val_path.parent.mkdir(parents=True, exist_ok=True)
        _write(val_path, val_lines)
    return Exported(train_path=out, val_path=val_path, train=len(train_lines), val=len(val_lines),
                    human=sum(r["label_source"] == "human" for r in records),
                    claude=sum(r["label_source"] == "claude" for r in records))


def _write(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
