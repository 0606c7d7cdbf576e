"""Agreement between a strategy's scores and labels."""

from __future__ import annotations

import math
from statistics import median

BANDS = ((85, 100, "strong"), (65, 84, "plausible"), (40, 64, "weak"), (0, 39, "no"))


def band(score: float) -> str:
    """The rubric band a 0-100 score falls in."""
    for lo, _hi, name in BANDS:
        if score >= lo:
            return name
    return "no"


def _ranks(values: list[float]) -> list[float]:
    # Average ranks for ties, as Spearman's rho requires.
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    return ranks


def pearson(x: list[float], y: list[float]) -> float:
    """Pearson correlation; 0.0 when either side is constant."""
    n = len(x)
    if n < 2:
        return 0.0
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return 0.0
    return sxy / math.sqrt(sxx * syy)


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation with tie-averaged ranks."""
    return pearson(_ranks(list(x)), _ranks(list(y)))


def mae(x: list[float], y: list[float]) -> float:
    """Mean absolute error."""
    return sum(abs(a - b) for a, b in zip(x, y)) / len(x) if x else 0.0


def top_k_overlap(pred: list[float], labels: list[float], k: int = 10) -> int:
    """How many of the labels' top k items are in the prediction's top k (ties broken by position)."""
    top_label = set(sorted(range(len(labels)), key=lambda i: (-labels[i], i))[:k])
    top_pred = set(sorted(range(len(pred)), key=lambda i: (-pred[i], i))[:k])
    return len(top_label & top_pred)


def band_agreement(pred: list[float], labels: list[float]) -> float:
    """Share of items whose predicted score falls in the label's band."""
    if not pred:
        return 0.0
    return sum(band(a) == band(b) for a, b in zip(pred, labels)) / len(pred)


def summary(pred: list[float], labels: list[float], k: int = 10) -> dict:
    """All agreement figures for one strategy."""
    return {
        "n": len(pred),
        "spearman": round(spearman(pred, labels), 3),
        "mae": round(mae(pred, labels), 1),
        f"top{k}": top_k_overlap(pred, labels, k),
        "band_agreement": round(band_agreement(pred, labels), 3),
        "median_pred": median(pred) if pred else None,
    }
