"""What a search query asks for: its content words (for lexical search) and its time cues.

Pure and cheap (regular expressions, no model), so it runs on every query.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.retrieval.time_parse import TimeRange, parse_time_range

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# Function words that carry no topic; kept short on purpose: names and nouns must survive.
_STOPWORDS = """a an the and or but if then else of to in on at by for with about from into onto
    over under is are was were be been being am do does did doing done have has had having can
    could will would shall should may might must i me my mine we us our ours you your yours he
    him his she her hers it its they them their theirs this that these those there here what which
    who whom whose when where why how not no nor so too very just than as also any some all each
    both few more most other such own same up down out off again further once only s t don
    didn doesn isn aren wasn weren won hasn haven hadn yes ever kind type sort get gets getting got
    go goes going gone went
    like really thing things something anything one ones lot lots many much
    """
STOPWORDS = frozenset(_STOPWORDS.split())
# Contracted endings: the word before them is what a memory's text holds ("I'm" must not
# become the term "im", which matches nothing and dilutes every match's share of the query).
_CLITICS = frozenset({"s", "m", "re", "ve", "d", "ll"})

# A question about *when* something happened, or about the latest/earliest of several.
_WHEN = re.compile(r"\b(when|what (?:year|month|day|date|time)|how long ago|since when)\b", re.I)
_LATEST = re.compile(r"\b(last|latest|recent(?:ly)?|newest|current(?:ly)?|now|nowadays)\b", re.I)
_EARLIEST = re.compile(r"\b(first|earliest|originally|initially|oldest)\b", re.I)

# A memory that says when something happened: a relative day or period, a weekday (or
# weekdays: "on Tuesdays"), a month name, a year or a clock time. An answer to "when ...?" is
# usually one of these, and a memory's own occurred_at cannot tell (it is when it was said,
# not when the thing happened). "may" and "march" count only after "in"/"by"/"since"/...: as
# words they are mostly not months.
_MENTIONS_TIME = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|ago|recently|lately"
    r"|(?:in|by|since|until|till|from|early|mid|late)[\s-]+(?:march|may)"
    r"|\d{1,2}(?::\d\d)?\s?[ap]\.?m|\d{1,2}:\d\d"
    r"|(?:last|this|past|next)\s+(?:week|month|year|weekend|night|summer|winter|spring|fall"
    r"|autumn|monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
    r"|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
    r"|january|february|april|june|july|august|september|october|november|december"
    r"|(?:19|20)\d\d)\b",
    re.I,
)


class TimeIntent(StrEnum):
    NONE = "none"
    WHEN = "when"  # asks for a date: prefer memories that state or carry one
    LATEST = "latest"  # prefer newer memories
    EARLIEST = "earliest"  # prefer older memories


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    text: str
    terms: list[str]
    intent: TimeIntent
    time_range: TimeRange | None


def content_terms(text: str) -> list[str]:
    """Lower-cased content words in first-seen order, without stopwords or duplicates."""
    return list(_content_words(text))


# Retrieval's feedback reads the words of ~40 hits a search, mostly the same memories search
# after search (tokenizing them again was 1.3 ms of a search at 100k turns, under a profiler).
@functools.lru_cache(maxsize=16_384)
def _content_words(text: str) -> tuple[str, ...]:
    # findall and plain strings, not match objects.
    seen: dict[str, None] = {}
    for token in _WORD.findall(text.lower()):
        head, apostrophe, tail = token.partition("'")
        if not apostrophe:
            word = token
        elif tail == "t" and head.endswith("n"):
            continue  # can't, don't, isn't: a negated auxiliary, no topic
        elif tail in _CLITICS:
            word = head  # Jen's -> jen, I'm -> i, we've -> we
        else:
            word = head + tail  # o'clock, rock'n'roll: one word
        if len(word) > 1 and word not in STOPWORDS:
            seen[word] = None
    return tuple(seen)


def mentions_time(text: str) -> bool:
    """Whether ``text`` states a time (see ``_MENTIONS_TIME``): a cheap cue, no parsing."""
    return _MENTIONS_TIME.search(text) is not None


def analyze(text: str, *, now: datetime) -> QueryAnalysis:
    time_range = parse_time_range(text, now=now)
    if _EARLIEST.search(text):
        intent = TimeIntent.EARLIEST
    elif _WHEN.search(text):
        intent = TimeIntent.WHEN
    elif _LATEST.search(text) and time_range is None:
        intent = TimeIntent.LATEST
    else:
        intent = TimeIntent.NONE
    return QueryAnalysis(text=text, terms=content_terms(text), intent=intent, time_range=time_range)
