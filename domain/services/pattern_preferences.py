"""Rules for stated preferences, favourites and habits, and for withdrawing them."""

from __future__ import annotations

import re

from domain.patterns import PatternKind
from domain.services.pattern_text import (
    ONE_OFF_OBJECT,
    Detection,
    category_of,
    clip,
    content_words,
    keyword_triggers,
    slot_key,
)

_PREFER = re.compile(
    r"\bi(?:'m| am|'d| would)? (?:really |strongly |generally |usually |much |also |still |"
    r"now |do |definitely |honestly |personally |actually |tend to |think i |guess i )*"
    r"(prefer|like|love|enjoy|adore|hate|dislike|can't stand|cannot stand|don't like|"
    r"do not like|don't enjoy|do not enjoy|avoid|'d prefer|would prefer|(?:a )?(?:big |huge )?"
    r"fan of|not a fan of)\s+(.+)$"
)


_FAVOURITE = re.compile(
    r"\bmy (?:favou?rite|preferred|go-to) ([a-z][a-z ]{1,30}?) (?:is|are) (.+)$"
)


_HABIT = re.compile(
    r"^i (?:always|usually|mostly|normally|typically|only) (use|code in|write in|work in|"
    r"program in|drink|eat|listen to|read|watch|work with|develop in|deploy (?:on|to))\s+(.+)$"
)


_WITHDRAW = re.compile(
    r"\b(?:i no longer (?:prefer|like|want|use|need)|i don't (?:prefer|like|want|need) (.+?) "
    r"any ?more|forget (?:that|what) i said about|ignore my (?:earlier|previous|old) "
    r"(?:instruction|preference|request) (?:about|on|for)|you (?:can|may) stop)\s*(.*)$"
)


def preference_rule(s: str) -> Detection | None:
    m = _FAVOURITE.search(s)
    if m:
        noun, value = m.group(1).strip(), clip(m.group(2))
        return _pref(f"favourite:{slot_key(noun, 2)}", value, 1, 0.8, what=noun)
    m = _HABIT.match(s)
    if m:
        return _pref(None, clip(m.group(2)), 1, 0.65, verb=m.group(1))
    m = _PREFER.search(s)
    if not m or re.search(r"\b(?:he|she|they|my \w+|his|her)\s+\w*\s*$", s[: m.start()]):
        return None
    verb, value = m.group(1), clip(m.group(2))
    prefix = s[: m.start()].strip()
    lead_ok = prefix in ("", "but", "and", "now", "so", "actually") or prefix.endswith(",")
    if not lead_ok and not re.fullmatch(
        r"(?:i think|i guess|honestly|personally|these days|nowadays)", prefix
    ):
        return None
    if verb in ("like", "love", "enjoy") and re.match(r"^(?:to )?(?:a|an|some) ", value):
        return None  # "I'd love a coffee": a wish, not a standing preference
    if ONE_OFF_OBJECT.match(value) or not content_words(value):
        return None
    negative = verb in {
        "hate",
        "dislike",
        "can't stand",
        "cannot stand",
        "don't like",
        "do not like",
        "don't enjoy",
        "do not enjoy",
        "avoid",
        "not a fan of",
    }
    confidence = 0.75 if verb in ("prefer", "'d prefer", "would prefer") else 0.65
    return _pref(None, value, -1 if negative else 1, confidence, verb=verb)


def _pref(
    slot: str | None,
    value: str,
    polarity: int,
    confidence: float,
    *,
    what: str = "",
    verb: str = "",
) -> Detection | None:
    value = re.sub(r"\s+(?:now|nowadays|these days|anymore|any more|instead)$", "", value)
    if not value:
        return None
    category = category_of(value)
    if slot is None:
        slot = f"prefer:{category[0]}" if category else f"prefer:{slot_key(value, 2)}"
    keywords = category[1] if category else content_words(value)[:3]
    label = (category[0] if category else slot.split(":", 1)[1]).replace("_", " ").title()
    if what:
        description = f"User's favourite {what} is {value}"
    elif polarity > 0:
        description = f"User prefers {value}"
    else:
        description = f"User does not like {value}"
    return Detection(
        kind=PatternKind.PREFERENCE,
        slot=slot,
        value=value,
        polarity=polarity,
        name=f"{label} Preference" if not what else f"Favourite {what.title()}",
        description=description,
        confidence=confidence,
        triggers=keyword_triggers(keywords),
        keywords=keywords,
    )


def withdrawal_rule(s: str) -> Detection | None:
    m = _WITHDRAW.search(s)
    if not m:
        return None
    target = clip((m.group(1) or "") + " " + (m.group(2) or ""))
    if not content_words(target):
        return None
    category = category_of(target)
    return Detection(
        kind=PatternKind.PREFERENCE,
        slot=f"prefer:{category[0]}" if category else f"prefer:{slot_key(target, 2)}",
        value=target,
        polarity=0,
        name="Withdrawn preference",
        description=f"User withdrew: {target}",
        confidence=0.8,
        keywords=content_words(target),
        retire=True,
    )
