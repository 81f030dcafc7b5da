"""What ``bench/search.py`` fills a field with and asks of it: synthetic texts of 12
Zipf-distributed words, or LoCoMo's turns cycled with other speakers and LoCoMo's questions
(read from ../shared/data/locomo, never copied)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from domain.sessions import number_sessions

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
QUERIES = [
    "When did Caroline go to the support group?",
    "What does Melanie like to paint?",
    "Where did John move after the divorce?",
    "What is the name of my cat?",
    "Which concert did we go to last summer?",
    "What are my dietary restrictions?",
    "who is my manager and what does she prefer",
    "book recommendations about history",
]


def words(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(20_000)]
    ranks = np.minimum(rng.zipf(1.3, size=(n, 12)), len(vocab)) - 1
    return [" ".join(vocab[r] for r in row) for row in ranks]


# Speakers swapped in on each pass over LoCoMo, so a cycled turn is not a verbatim repeat.
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Farah", "Gus", "Hana", "Ivo", "Jun"]


class Corpus:
    """What fills the field: ``synthetic`` (12 Zipf words, ``fact``) or ``locomo`` (LoCoMo
    turns, cycled with other speakers on each pass, as ``kind``), the questions asked of it,
    and when each memory happened: a minute after the one before it, and for LoCoMo a day
    after the end of the previous session when a session starts."""

    def __init__(self, text: str, kind: str) -> None:
        self.text, self.kind = text, kind
        self.turns: list[str] = []
        self.opens: list[bool] = []  # whether turns[i] starts a LoCoMo session
        self.queries = QUERIES
        if text == "locomo":
            samples = json.loads(LOCOMO.read_text())
            for sample in samples:
                conv = sample["conversation"]
                keys = sorted(
                    (int(k.split("_")[1]), k)
                    for k in conv
                    if k.startswith("session_")
                    and k.split("_")[1].isdigit()
                    and not k.endswith("date_time")
                )
                for _, key in keys:
                    self.turns += [f"{t['speaker']}: {t['text']}" for t in conv[key]]
                    self.opens += [i == 0 for i in range(len(conv[key]))]
            self.queries = [qa["question"] for s in samples for qa in s["qa"]][:500]

    def texts(self, start: int, size: int) -> list[str]:
        if self.text != "locomo":
            return words(size, start + 7)
        out = []
        for i in range(start, start + size):
            turn = self.turns[i % len(self.turns)]
            cycle = i // len(self.turns)
            if cycle:
                speaker, _, said = turn.partition(": ")
                turn = f"{NAMES[(cycle + len(speaker)) % len(NAMES)]}: {said}"
            out.append(turn)
        return out

    def timeline(self, n: int, *, end: datetime) -> tuple[list[datetime], list[int]]:
        """The times of ``n`` memories, the last at ``end``, and the session each turn gets
        when stored (:func:`domain.sessions.number_sessions`, the rule the write path uses)."""
        offsets, at = [], 0.0
        for i in range(n):
            if i and self.opens and self.opens[i % len(self.opens)]:
                at += 24 * 60.0
            elif i:
                at += 1.0
            offsets.append(at)
        times = [end - timedelta(minutes=offsets[-1] - o) for o in offsets] if n else []
        sessions, _ = number_sessions(times, before=None, next_session=1)
        return times, sessions
