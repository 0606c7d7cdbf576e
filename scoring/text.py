"""Listing text for scoring: plain text, whole-word term matching, quotes that can be checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from db import html_to_text

# Boilerplate that costs tokens and says nothing about fit.
_BOILERPLATE_RE = re.compile(
    r"(equal opportunity employer|we are an equal opportunity|eeo statement|how to apply|to apply:|"
    r"benefits include|what we offer|perks and benefits|our benefits|privacy notice|#li-[a-z0-9]+)",
    re.I,
)


@dataclass(frozen=True)
class Match:
    """One term found in a field, with the exact text it matched."""

    term: str
    field: str  # "title" | "description"
    quote: str
    start: int


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern:
    """A case-insensitive whole-word pattern; spaces and hyphens in a term match either."""
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", term.strip()) if p]
    body = r"[\s\-/]*".join(parts)
    # \b fails next to symbols such as 'c++' or '.net'; look for non-word neighbours instead.
    return re.compile(rf"(?<![\w]){body}(?![\w])", re.I)


def find_terms(text: str, terms, field: str) -> list[Match]:
    """Every term in `terms` that occurs in `text` as a whole word (first occurrence each)."""
    found = []
    for term in terms:
        m = term_pattern(term).search(text)
        if m:
            found.append(Match(term=term, field=field, quote=m.group(0), start=m.start()))
    return found


def listing_text(description_html: str | None, budget_chars: int | None = None) -> str:
    """Plain text of a description with boilerplate tails cut and a character budget."""
    text = html_to_text(description_html)
    # Cut at the first boilerplate marker past the first third: what follows is
    # benefits, EEO and application instructions, rarely about the role.
    m = _BOILERPLATE_RE.search(text, len(text) // 3)
    if m:
        text = text[: m.start()].rstrip()
    if budget_chars and len(text) > budget_chars:
        text = text[:budget_chars].rsplit(" ", 1)[0] + " …"
    return text


def snippet(text: str, start: int, length: int, width: int = 40) -> str:
    """A short window of `text` around a match, for display."""
    a = max(0, start - width)
    b = min(len(text), start + length + width)
    return ("…" if a else "") + text[a:b].strip() + ("…" if b < len(text) else "")


_NORM_RE = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Lower-case text with punctuation and whitespace folded, for grounding checks."""
    return _NORM_RE.sub(" ", (text or "").lower()).strip()


def is_grounded(quote: str, *texts: str) -> bool:
    """True when a quote occurs in one of the texts (whitespace, case and punctuation folded)."""
    q = normalize(quote)
    if not q:
        return False
    return any(q in normalize(t) for t in texts if t)
