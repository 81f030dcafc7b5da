"""The rule-based pattern detector on the labelled message set (precision and recall)."""

from __future__ import annotations

from pattern_messages import HELD_OUT, LABELLED

from domain.services.pattern_rules import detect, is_request
from domain.services.pattern_text import norm_word


def _score(dataset: list[tuple[str, str | None, str | None]]) -> tuple[float, float, list[str]]:
    tp = fp = fn = 0
    wrong_slot = []
    for text, label, slot in dataset:
        found = detect(text)
        if found and label:
            tp += 1
            if slot and found[0].slot != slot:
                wrong_slot.append(f"{text!r}: {found[0].slot} != {slot}")
        elif found:
            fp += 1
        elif label:
            fn += 1
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), wrong_slot


def test_labelled_set_is_big_enough_and_balanced() -> None:
    labels = [label for _, label, _ in LABELLED + HELD_OUT]
    assert len(labels) >= 60
    assert labels.count(None) >= 30, "look-alikes must be well represented"
    assert {"preference", "instruction", "withdrawal"} <= set(labels)


def test_precision_and_recall_meet_targets() -> None:
    precision, recall, wrong_slot = _score(LABELLED + HELD_OUT)
    assert precision >= 0.9, precision
    assert recall >= 0.8, recall
    assert wrong_slot == []


def test_held_out_set_meets_targets() -> None:
    precision, recall, _ = _score(HELD_OUT)
    assert precision >= 0.9, precision
    assert recall >= 0.8, recall


def test_kinds_polarity_and_triggers() -> None:
    (language,) = detect("Always answer in Portuguese.")
    assert (language.kind.value, language.slot, language.value) == (
        "instruction",
        "reply_language",
        "portuguese",
    )
    assert language.triggers[0].type.value == "regex"  # applies to every turn
    (python,) = detect("I prefer Python with type hints.")
    assert python.kind.value == "preference"
    assert python.polarity == 1
    assert "python" in [t.pattern for t in python.triggers]
    (emoji,) = detect("Never use emojis.")
    (stop,) = detect("Stop using emojis.")
    assert emoji.slot == stop.slot
    assert emoji.polarity == stop.polarity == -1
    (scoped,) = detect("Whenever I ask for code, use Python.")
    assert [t.pattern for t in scoped.triggers] == ["code"]
    (withdrawn,) = detect("I no longer prefer Python.")
    assert withdrawn.retire
    assert detect("I used to prefer Java.") == []
    two = detect("Keep replies short. Also, call me Sam.")
    assert [d.slot for d in two] == ["reply_length", "address_as"]


def test_request_detection_and_lemmas() -> None:
    assert is_request("Summarize this article for me")
    assert is_request("Can you translate the invoice into German?")
    assert not is_request("I went to Lisbon last year")
    assert norm_word("using") == "use"
    assert norm_word("adding") == "add"
    assert norm_word("emojis") == "emoji"
    assert norm_word("replies") == "reply"
