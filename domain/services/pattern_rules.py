"""Rules that find stated preferences and standing instructions in one user message.

No model is needed: a sentence is a candidate only when it has a *directive frame* (an
imperative addressed to the assistant, "always"/"never"/"from now on", "I prefer ...",
"keep replies short") and passes the look-alike filters (questions about the assistant,
third persons, the past, hypotheticals, one-off feedback on "this"/"that"). Each detection
names a ``slot`` — what it is about — so that a later statement on the same slot can
reinforce, update or retire the pattern. ``bench/patterns.py`` measures these rules on the
labelled messages in ``tests/domain/pattern_messages.py``.
"""

from __future__ import annotations

import re

from domain.patterns import PatternKind
from domain.services.pattern_lexicon import (
    ASSISTANT_VERBS,
    STYLE_WORDS,
)
from domain.services.pattern_preferences import preference_rule, withdrawal_rule
from domain.services.pattern_reply_style import (
    address_rule,
    reply_language_rule,
    reply_length_rule,
    tone_rule,
)
from domain.services.pattern_text import (
    EVERY_TURN,
    LEAD,
    MODAL_QUESTION,
    NOT_CURRENT,
    STANDING,
    WH_QUESTION,
    Detection,
    clip,
    content_words,
    keyword_triggers,
    norm_word,
    sentences,
    slot_key,
)


def _directed(s: str) -> bool:
    """Addressed to the assistant as a standing rule, not a question or a remark."""
    first = s.split(" ", 1)[0]
    return (
        first in ASSISTANT_VERBS
        or first in {"always", "never", "don't", "dont", "do", "stop", "keep", "be"}
        or bool(re.match(r"i (?:want|need|would like|'d like|prefer|'d prefer) you to\b", s))
        or bool(re.match(r"i(?:'d| would) rather you\b", s))
    )


def _instruction(s: str, *, standing: bool) -> Detection | None:
    when = re.match(
        r"^(?:whenever|every time|each time|when) i (?:ask|want|need|request)"
        r"(?: you)?(?: for| about| to)? ([^,]+),\s*(.+)$",
        s,
    )
    context: list[str] = []
    if when:
        context = content_words(when.group(1))[:3]
        s = when.group(2)
        standing = True
    s = re.sub(r"^i (?:want|need|would like|'d like|prefer|'d prefer) you to\s+", "", s)
    s = re.sub(r"^i(?:'d| would) rather you (?:didn't|did not|not|never)\s+", "never ", s)
    m = re.match(
        r"^(always|never|don't ever|do not ever|don't|dont|do not|stop|please stop)\s+(.+)$", s
    )
    if m:
        marker, action = m.group(1), m.group(2)
    elif standing and s.split(" ", 1)[0] in ASSISTANT_VERBS:
        marker, action = "always", s
    else:
        return None
    action = re.sub(
        r"\s+in (?:your|all|the|any) (?:answers|replies|responses|messages)\b", "", action
    )
    action = clip(re.sub(r"\s+(?:again|anymore|any more|ever|from now on)$", "", action))
    first = action.split(" ", 1)[0]
    if norm_word(first) not in ASSISTANT_VERBS and marker not in ("always", "never"):
        return None
    if marker in ("always", "never") and first in {"forget", "lose", "miss", "get", "feel", "mind"}:
        return None
    negative = marker not in ("always",)
    stylistic = any(w in action.split() for w in STYLE_WORDS) or any(
        w in action for w in ("type hint", "bullet point", "code block")
    )
    explicit = marker in ("always", "never", "don't ever", "do not ever") or standing
    if not (explicit or stylistic or marker in ("stop", "please stop")):
        return None
    if marker in ("don't", "dont", "do not") and not (stylistic or standing):
        return None
    if marker in ("stop", "please stop"):
        action = re.sub(r"^(\w+ing)\b", lambda g: norm_word(g.group(1)), action)
    key = slot_key(action)
    if not key:
        return None
    verb_phrase = action[:80]
    words = context or [w for w in content_words(action) if w not in ASSISTANT_VERBS][:3]
    triggers = keyword_triggers(context) if context else [EVERY_TURN]
    return Detection(
        kind=PatternKind.INSTRUCTION,
        slot=f"do:{key}",
        value=action,
        polarity=-1 if negative else 1,
        name=f"Instruction: {verb_phrase[:40].capitalize()}",
        description=(f"When asked about {' '.join(context)}: " if context else "")
        + f"User asks to {'never ' if negative else 'always '}{verb_phrase}",
        confidence=0.8 if explicit else 0.7,
        triggers=triggers,
        keywords=words,
    )


def detect(text: str) -> list[Detection]:
    """All preferences, standing instructions and withdrawals stated in ``text``."""
    found: list[Detection] = []
    for sentence, is_question in sentences(text):
        standing = bool(STANDING.search(sentence))
        s = LEAD.sub("", sentence).strip()
        if not s:
            continue
        if is_question or WH_QUESTION.match(s):
            # A question is a rule only when it asks for a standing behaviour.
            if not (
                MODAL_QUESTION.match(s) and re.search(r"\b(?:always|from now on|never)\b", sentence)
            ):
                continue
            s = MODAL_QUESTION.sub("", s).strip()
            s = re.sub(r"^please\s+", "", s)
        if NOT_CURRENT.search(s):
            continue
        withdrawal = withdrawal_rule(s)
        if withdrawal:
            found.append(withdrawal)
            continue
        directed = _directed(s) or standing
        detection = None
        if directed or re.match(
            r"^(?:i (?:want|need|'d like|would like|prefer|'d prefer|"
            r"would prefer)|give me|make)\b",
            s,
        ):
            detection = (
                reply_language_rule(s) or reply_length_rule(s) or tone_rule(s) or address_rule(s)
            )
        if detection is None and directed:
            detection = _instruction(s, standing=standing)
        if detection is None and re.match(r"^(?:whenever|every time|each time|when) i ", s):
            detection = _instruction(s, standing=True)
        if detection is None:
            detection = preference_rule(s)
        if detection is not None:
            found.append(detection)
    return found


_REQUEST = re.compile(
    r"^(?:please |can you |could you |would you |will you |i need you to |help me |"
    r"i need |i want you to )?(?:summari[sz]e|translate|write|draft|explain|generate|make|"
    r"create|give|list|show|find|check|review|fix|convert|rewrite|format|proofread|"
    r"compare|calculate|plan|suggest|recommend|tell|send|book|remind|help)\b"
)


def is_request(text: str) -> bool:
    first = sentences(text)[:1]
    return bool(first) and bool(_REQUEST.match(LEAD.sub("", first[0][0])))
