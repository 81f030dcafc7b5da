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
from dataclasses import dataclass, field

from domain.patterns import PatternKind, PatternTrigger, TriggerType
from domain.services.pattern_lexicon import (
    ASSISTANT_VERBS,
    CATEGORY_WORDS,
    LANGUAGES,
    LONG,
    SHORT,
    STOP,
    STYLE_WORDS,
    TONES,
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


# ---------------------------------------------------------------- sentence handling

_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
_WH_QUESTION = re.compile(
    r"^(?:do|does|did|what|why|how|which|who|whom|where|when|is|are|was|were|have|has|"
    r"should|shall|am)\b(?! i (?:ask|want|need|request))"
)
_MODAL_QUESTION = re.compile(r"^(?:can|could|would|will) you\b")
_LEAD = re.compile(
    r"^(?:(?:ok(?:ay)?|so|and|also|oh|hey|btw|by the way|one more thing|note|remember|"
    r"from now on|going forward|in (?:the )?future|for future reference|moving forward|"
    r"for the rest of (?:this|our) conversation|just so you know|fyi|please|pls|kindly|"
    r"for all future (?:answers|replies|responses))[,:]?\s+)+"
)
_NOT_CURRENT = re.compile(
    r"(?:^if i|\bused to|\bwonder(?:ing)?|not sure|whether|would you|do you|does (?:he|she)|"
    r"\bsome people|most people|many people|people who|anyone who|what if)\b"
)
_ONE_OFF_OBJECT = re.compile(
    r"^(?:this|that|it|these|those|how|what|when|where|why|you|your (?:answer|idea|reply|"
    r"suggestion|explanation|response)|the (?:answer|idea|way you|last|previous|first|second|"
    r"other|one)|both|either|neither|not\b|to (?:know|ask|see|hear|book|order|get|buy)|"
    r"to \w+ (?:this|that|it|these|those)\b)"
)
_STANDING = re.compile(
    r"\b(?:from now on|going forward|in (?:the )?future|for future|moving forward|"
    r"for the rest of|for all future|every time|each time|whenever|at all times)\b"
)
_CLIP = re.compile(r"\s*(?:,|\bbecause\b|\bsince\b|\bas it\b|\bbut\b|\bwhen\b|\bthough\b).*$")


def _sentences(text: str) -> list[tuple[str, bool]]:
    out = []
    for raw in _SPLIT.split(text.replace("’", "'").strip()):
        s = raw.strip()
        if s:
            out.append((re.sub(r"[.!;:]+$", "", s.lower()).strip(), s.endswith("?")))
    return out


def _clip(value: str) -> str:
    return _CLIP.sub("", value).strip(" .!?\"'")


def _category(value: str) -> tuple[str, list[str]] | None:
    words = set(re.findall(r"[a-z0-9+#]+(?: code)?", value.lower()))
    for name, (lexicon, context) in CATEGORY_WORDS.items():
        hits = [w for w in lexicon if w in words]
        if hits:
            return name, hits + context
    return None


def _keywords_triggers(words: list[str]) -> list[PatternTrigger]:
    return [PatternTrigger(TriggerType.KEYWORD, w) for w in dict.fromkeys(words) if w]


# ---------------------------------------------------------------- reply-style slots


def _reply_language(s: str) -> Detection | None:
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


def _reply_length(s: str) -> Detection | None:
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


def _tone(s: str) -> Detection | None:
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


def _address(s: str) -> Detection | None:
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


# ---------------------------------------------------------------- generic rules


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
    action = _clip(re.sub(r"\s+(?:again|anymore|any more|ever|from now on)$", "", action))
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
    triggers = _keywords_triggers(context) if context else [EVERY_TURN]
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


def _preference(s: str) -> Detection | None:
    m = _FAVOURITE.search(s)
    if m:
        noun, value = m.group(1).strip(), _clip(m.group(2))
        return _pref(f"favourite:{slot_key(noun, 2)}", value, 1, 0.8, what=noun)
    m = _HABIT.match(s)
    if m:
        return _pref(None, _clip(m.group(2)), 1, 0.65, verb=m.group(1))
    m = _PREFER.search(s)
    if not m or re.search(r"\b(?:he|she|they|my \w+|his|her)\s+\w*\s*$", s[: m.start()]):
        return None
    verb, value = m.group(1), _clip(m.group(2))
    prefix = s[: m.start()].strip()
    lead_ok = prefix in ("", "but", "and", "now", "so", "actually") or prefix.endswith(",")
    if not lead_ok and not re.fullmatch(
        r"(?:i think|i guess|honestly|personally|these days|nowadays)", prefix
    ):
        return None
    if verb in ("like", "love", "enjoy") and re.match(r"^(?:to )?(?:a|an|some) ", value):
        return None  # "I'd love a coffee": a wish, not a standing preference
    if _ONE_OFF_OBJECT.match(value) or not content_words(value):
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
    category = _category(value)
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
        triggers=_keywords_triggers(keywords),
        keywords=keywords,
    )


def _withdrawal(s: str) -> Detection | None:
    m = _WITHDRAW.search(s)
    if not m:
        return None
    target = _clip((m.group(1) or "") + " " + (m.group(2) or ""))
    if not content_words(target):
        return None
    category = _category(target)
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


def detect(text: str) -> list[Detection]:
    """All preferences, standing instructions and withdrawals stated in ``text``."""
    found: list[Detection] = []
    for sentence, is_question in _sentences(text):
        standing = bool(_STANDING.search(sentence))
        s = _LEAD.sub("", sentence).strip()
        if not s:
            continue
        if is_question or _WH_QUESTION.match(s):
            # A question is a rule only when it asks for a standing behaviour.
            if not (
                _MODAL_QUESTION.match(s)
                and re.search(r"\b(?:always|from now on|never)\b", sentence)
            ):
                continue
            s = _MODAL_QUESTION.sub("", s).strip()
            s = re.sub(r"^please\s+", "", s)
        if _NOT_CURRENT.search(s):
            continue
        withdrawal = _withdrawal(s)
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
            detection = _reply_language(s) or _reply_length(s) or _tone(s) or _address(s)
        if detection is None and directed:
            detection = _instruction(s, standing=standing)
        if detection is None and re.match(r"^(?:whenever|every time|each time|when) i ", s):
            detection = _instruction(s, standing=True)
        if detection is None:
            detection = _preference(s)
        if detection is not None:
            found.append(detection)
    return found


# ---------------------------------------------------------------- repeated requests

_REQUEST = re.compile(
    r"^(?:please |can you |could you |would you |will you |i need you to |help me |"
    r"i need |i want you to )?(?:summari[sz]e|translate|write|draft|explain|generate|make|"
    r"create|give|list|show|find|check|review|fix|convert|rewrite|format|proofread|"
    r"compare|calculate|plan|suggest|recommend|tell|send|book|remind|help)\b"
)


def is_request(text: str) -> bool:
    first = _sentences(text)[:1]
    return bool(first) and bool(_REQUEST.match(_LEAD.sub("", first[0][0])))
