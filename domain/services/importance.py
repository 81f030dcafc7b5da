"""A cheap, explainable importance prior for new memories (0..1)."""

from __future__ import annotations

import re

_SIGNALS = re.compile(
    r"\b(always|never|prefer|allergic|birthday|remember|important|must|password|deadline|"
    r"my name|i am|i'm|i live|i work|favorite|favourite)\b",
    re.IGNORECASE,
)


def score_importance(content: str) -> float:
    """Longer, first-person, preference-like statements matter more than chit-chat."""
    words = len(content.split())
    score = 0.3 + min(words, 60) / 200
    score += 0.1 * min(len(_SIGNALS.findall(content)), 3)
    if any(ch.isdigit() for ch in content):
        score += 0.05
    return round(min(score, 1.0), 3)
