"""Precision and recall of the rule-based pattern detector on the labelled message set.

Run: ``.venv/bin/python bench/patterns.py``. A message counts as detected when the rules
return at least one preference, instruction or withdrawal; ``LABELLED`` is the set the
rules were developed on, ``HELD_OUT`` was written afterwards as a check.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "domain"))

from pattern_messages import HELD_OUT, LABELLED  # found through the path set above

from domain.services.pattern_rules import detect


def score(dataset: list[tuple[str, str | None, str | None]]) -> dict[str, float]:
    tp = fp = fn = tn = slot_ok = slot_total = 0
    for text, label, slot in dataset:
        found = detect(text)
        if found and label:
            tp += 1
            if slot:
                slot_total += 1
                slot_ok += found[0].slot == slot
        elif found:
            fp += 1
        elif label:
            fn += 1
        else:
            tn += 1
    return {
        "n": len(dataset),
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
        "slot_accuracy": slot_ok / max(slot_total, 1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def main() -> None:
    rows = {"labelled": LABELLED, "held-out": HELD_OUT, "all": LABELLED + HELD_OUT}
    header = ("set", "n", "P", "R", "slot", "tp", "fp", "fn", "tn")
    print(
        f"{header[0]:<10} "
        + " ".join(f"{h:>6}" if 2 <= i <= 4 else f"{h:>4}" for i, h in enumerate(header[1:], 1))
    )
    for name, data in rows.items():
        s = score(data)
        print(
            f"{name:<10} {s['n']:>4} {s['precision']:>6.3f} {s['recall']:>6.3f} "
            f"{s['slot_accuracy']:>6.3f} {s['tp']:>4} {s['fp']:>4} {s['fn']:>4} {s['tn']:>4}"
        )
    texts = [t for t, _, _ in LABELLED + HELD_OUT] * 50
    started = time.perf_counter()
    for text in texts:
        detect(text)
    per = (time.perf_counter() - started) / len(texts) * 1e6
    print(f"\ndetect(): {per:.0f} µs per message ({len(texts)} messages)")
    print("command: .venv/bin/python bench/patterns.py")


if __name__ == "__main__":
    main()
