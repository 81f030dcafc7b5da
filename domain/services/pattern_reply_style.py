"""Rules for how replies should look: language, length, tone and how to address the user."""

from __future__ import annotations

import re

from domain.patterns import PatternKind
from domain.services.pattern_lexicon import (
    LANGUAGES,
    LONG,
    SHORT,
    TONES,
)
from domain.services.pattern_text import (
    EVERY_TURN,
    REPLY_NOUNS,
    Detection,
)


def reply_language_rule(s: str) -> Detection | None:
    langs = "|".join(LANGUAGES)
    m = re.search(
        rf"\b(?:answer|reply|respond|talk|speak|communicate|write back|write to me|"
        rf"{REPLY_NOUNS})\b(?:(?! this| that| the following)[\w ,']){{0,30}}?\bin ({langs})\b",
        s,
    )
    if not m:
        return None
    lang = m.group(1)
    negative = bool(re.search(r"\b(?:don't|do not|never|stop|no more)\b", s[: m.start(1)]))
    title = lang.capitalize()
    return Detection(
        kind=PatternKind.INSTRUCTION,
        slot="reply_language",
        value=lang,
        polarity=-1 if negative else 1,
        name="Reply Language",
        description=f"User wants replies {'not ' if negative else ''}in {title}",
        confidence=0.85,
        triggers=[EVERY_TURN],
    )


def reply_length_rule(s: str) -> Detection | None:
    adjectives = "|".join(SHORT + LONG)
    patterns = (
        rf"\b(?:keep|make)\s+(?:your\s+|the\s+|my\s+)?{REPLY_NOUNS}\s+(?:\w+\s+)?({adjectives})\b",
        rf"\b({adjectives})\s+{REPLY_NOUNS}\b",
        rf"^be\s+(?:more\s+|very\s+)?({adjectives})\b",
        rf"\b{REPLY_NOUNS}\s+(?:should|must|need to)\s+be\s+(?:\w+\s+)?({adjectives})\b",
    )
    for pattern in patterns:
        m = re.search(pattern, s)
        if m:
            short = m.group(1) in SHORT
            return Detection(
                kind=PatternKind.INSTRUCTION,
                slot="reply_length",
                value="short" if short else "detailed",
                polarity=1,
                name="Reply Length",
                description=f"User wants {'short, concise' if short else 'detailed'} replies",
                confidence=0.8,
                triggers=[EVERY_TURN],
            )
    return None


def tone_rule(s: str) -> Detection | None:
    tones = "|".join(TONES)
    m = re.search(rf"^(?:be|sound|stay)\s+(?:more\s+|less\s+|very\s+)?({tones})\b", s) or re.search(
        rf"\b(?:use|keep|adopt)\s+(?:a|an|the)\s+(?:more\s+)?({tones})\s+tone\b", s
    )
    if not m:
        return None
    less = " less " in f" {s[: m.end()]} "
    return Detection(
        kind=PatternKind.INSTRUCTION,
        slot="tone",
        value=m.group(1),
        polarity=-1 if less else 1,
        name="Tone",
        description=f"User wants a {'less ' if less else ''}{m.group(1)} tone",
        confidence=0.75,
        triggers=[EVERY_TURN],
    )


def address_rule(s: str) -> Detection | None:
    m = re.search(r"\bcall me ([a-z][a-z'\-]+)\b", s)
    if not m or m.group(1) in {"later", "back", "tomorrow", "when", "if", "at", "on", "now"}:
        return None
    return Detection(
        kind=PatternKind.INSTRUCTION,
        slot="address_as",
        value=m.group(1),
        polarity=1,
        name="Form of Address",
        description=f"User wants to be called {m.group(1).capitalize()}",
        confidence=0.85,
        triggers=[EVERY_TURN],
    )
