"""Text handling shared by the pattern rules: word normalisation, slot keys, sentence
splitting with the look-alike filters, and what a rule reports (:class:`Detection`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from domain.patterns import PatternKind, PatternTrigger, TriggerType
from domain.services.pattern_lexicon import (
    ASSISTANT_VERBS,
    CATEGORY_WORDS,
    STOP,
)

EVERY_TURN = PatternTrigger(TriggerType.REGEX, ".")  # standing reply rules apply to every turn


REPLY_NOUNS = r"(?:replies|reply|answers|answer|responses|response|explanations|messages|it|them)"


_IRREGULAR = {
    "using": "use",
    "writing": "write",
    "giving": "give",
    "including": "include",
    "making": "make",
    "putting": "put",
    "apologizing": "apologize",
    "apologising": "apologize",
    "summarizing": "summarize",
    "summarising": "summarize",
    "responses": "response",
    "replies": "reply",
    "emojis": "emoji",
    "spaces": "space",
    "tables": "table",
}


def norm_word(word: str) -> str:
    """A crude lemma: enough to make "using emojis" and "use emoji" the same slot."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("ing") and len(w) > 5:
        base = w[:-3]
        if base in ASSISTANT_VERBS or base + "e" not in ASSISTANT_VERBS:
            return base[:-1] if base[-1] == base[-2] and base not in ASSISTANT_VERBS else base
        return base + "e"
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def content_words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9+#][a-z0-9+#'\-]*", text.lower())
    return [norm_word(w) for w in words if w not in STOP and len(w) > 1]


def slot_key(text: str, limit: int = 4) -> str:
    return " ".join(content_words(text)[:limit])


@dataclass(frozen=True, slots=True)
class Detection:
    kind: PatternKind
    slot: str
    value: str
    polarity: int
    name: str
    description: str
    confidence: float
    triggers: list[PatternTrigger] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    retire: bool = False  # a withdrawal ("I no longer prefer X"): retire, create nothing


_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")


WH_QUESTION = re.compile(
    r"^(?:do|does|did|what|why|how|which|who|whom|where|when|is|are|was|were|have|has|"
    r"should|shall|am)\b(?! i (?:ask|want|need|request))"
)


MODAL_QUESTION = re.compile(r"^(?:can|could|would|will) you\b")


LEAD = re.compile(
    r"^(?:(?:ok(?:ay)?|so|and|also|oh|hey|btw|by the way|one more thing|note|remember|"
    r"from now on|going forward|in (?:the )?future|for future reference|moving forward|"
    r"for the rest of (?:this|our) conversation|just so you know|fyi|please|pls|kindly|"
    r"for all future (?:answers|replies|responses))[,:]?\s+)+"
)


NOT_CURRENT = re.compile(
    r"(?:^if i|\bused to|\bwonder(?:ing)?|not sure|whether|would you|do you|does (?:he|she)|"
    r"\bsome people|most people|many people|people who|anyone who|what if)\b"
)


ONE_OFF_OBJECT = re.compile(
    r"^(?:this|that|it|these|those|how|what|when|where|why|you|your (?:answer|idea|reply|"
    r"suggestion|explanation|response)|the (?:answer|idea|way you|last|previous|first|second|"
    r"other|one)|both|either|neither|not\b|to (?:know|ask|see|hear|book|order|get|buy)|"
    r"to \w+ (?:this|that|it|these|those)\b)"
)


STANDING = re.compile(
    r"\b(?:from now on|going forward|in (?:the )?future|for future|moving forward|"
    r"for the rest of|for all future|every time|each time|whenever|at all times)\b"
)


_CLIP = re.compile(r"\s*(?:,|\bbecause\b|\bsince\b|\bas it\b|\bbut\b|\bwhen\b|\bthough\b).*$")


def sentences(text: str) -> list[tuple[str, bool]]:
    out = []
    for raw in _SPLIT.split(text.replace("’", "'").strip()):
        s = raw.strip()
        if s:
            out.append((re.sub(r"[.!;:]+$", "", s.lower()).strip(), s.endswith("?")))
    return out


def clip(value: str) -> str:
    return _CLIP.sub("", value).strip(" .!?\"'")


def category_of(value: str) -> tuple[str, list[str]] | None:
    words = set(re.findall(r"[a-z0-9+#]+(?: code)?", value.lower()))
    for name, (lexicon, context) in CATEGORY_WORDS.items():
        hits = [w for w in lexicon if w in words]
        if hits:
            return name, hits + context
    return None


def keyword_triggers(words: list[str]) -> list[PatternTrigger]:
    return [PatternTrigger(TriggerType.KEYWORD, w) for w in dict.fromkeys(words) if w]
