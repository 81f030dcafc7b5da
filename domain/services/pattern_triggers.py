"""When a pattern's trigger fires on a message: a keyword as a whole word, a regular
expression, or a semantic trigger by cosine against the pattern's vector."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from domain.patterns import Pattern, PatternTrigger, TriggerType


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if not a or not b or len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def trigger_score(
    trigger: PatternTrigger,
    pattern: Pattern,
    text: str,
    vector: Sequence[float] | None,
    *,
    default_threshold: float,
) -> float:
    """How strongly ``trigger`` fires on lower-cased ``text`` (0: not at all)."""
    if trigger.type is TriggerType.KEYWORD:
        words = re.escape(trigger.pattern.lower())
        return 1.0 if re.search(rf"(?<![\w+#]){words}(?![\w+#])", text) else 0.0
    if trigger.type is TriggerType.REGEX:
        try:
            return 0.9 if re.search(trigger.pattern, text) else 0.0
        except re.error:
            return 0.0
    threshold = trigger.threshold or default_threshold
    score = cosine(pattern.vector, vector or [])
    return score if score >= threshold else 0.0
