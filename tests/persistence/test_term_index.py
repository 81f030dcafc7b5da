"""A field's in-process keyword postings: FTS5's tokens, IDF-weighted coverage with the
field's own counts, BM25 among equals, removals and restrictions."""

from __future__ import annotations

import sqlite3

from persistence.term_index import FieldTerms, idf, tokens

_TEXTS = {
    "lena": "My sister Lena lives in Porto and works as a nurse.",
    "allergy": "I am allergic to peanuts and shellfish.",
    "budget": "The quarterly budget review is on the first Monday of next month.",
    "cat": "Our cat Miso only eats salmon-flavoured food.",
    "editor": "I switched from Vim to Emacs last year and never looked back.",
}


def _field(texts: dict[str, str] = _TEXTS) -> FieldTerms:
    terms = FieldTerms()
    terms.add_many(texts.items())
    return terms


def test_tokens_are_fts5s() -> None:
    text = "Café naïve résumé: x_y foo-bar 3D 2024, GARDENING gardens; allergies/allergic Ünïcode"
    con = sqlite3.connect(":memory:")
    con.execute(
        "CREATE VIRTUAL TABLE t USING fts5(c, tokenize='porter unicode61 remove_diacritics 2')"
    )
    con.execute("INSERT INTO t VALUES (?)", (text,))
    con.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    fts5 = [row[0] for row in con.execute("SELECT term FROM v ORDER BY offset")]
    assert tokens(text) == fts5


def test_scores_are_idf_weighted_coverage_with_the_fields_counts() -> None:
    terms = _field()
    hits = dict(terms.search(["sister", "nurse", "food"], k=10))
    total = len(_TEXTS)
    # Each word is in one memory of five: equal weights, so two of three words is 2/3.
    assert set(hits) == {"lena", "cat"}
    assert abs(hits["lena"] - 2 / 3) < 1e-9
    assert abs(hits["cat"] - 1 / 3) < 1e-9
    assert idf(total, 1) > 0


def test_a_common_word_weighs_less_than_a_rare_one() -> None:
    texts = {f"m{i}": f"I walked the dog on day {i}." for i in range(8)}
    texts["rare"] = "The vet checked the parrot."
    terms = _field(texts)
    hits = dict(terms.search(["dog", "parrot"], k=20))
    assert hits["rare"] > 0.7 > hits["m0"]
    assert abs(hits["rare"] + hits["m0"] - 1.0) < 1e-9  # each holds one of the two words


def test_long_words_match_their_family() -> None:
    terms = _field()
    hits = terms.search(["allergies"], k=10)
    assert [memory_id for memory_id, _ in hits] == ["allergy"]
    assert hits[0][1] == 1.0


def test_equal_coverage_is_ordered_by_bm25() -> None:
    terms = _field(
        {
            "long": "We talked about tea, the weather, the garden, the neighbours and tea again.",
            "short": "Tea at noon.",
            "once": "We talked about the weather, the garden, the neighbours and some tea.",
        }
    )
    order = [memory_id for memory_id, _ in terms.search(["tea"], k=3)]
    assert order[0] == "short"  # one word of three
    assert order[1] == "long"  # twice in a long text beats once in a text as long


def test_removed_memories_are_skipped_and_not_counted() -> None:
    terms = _field()
    terms.remove("cat")
    assert terms.search(["salmon"], k=10) == []
    assert "cat" not in terms
    assert len(terms) == 4
    assert terms.waste == 1
    terms.add("cat", "Our cat Miso now eats tuna.")
    assert [m for m, _ in terms.search(["tuna"], k=10)] == ["cat"]
    assert terms.search(["salmon"], k=10) == []


def test_a_restriction_keeps_the_fields_weights() -> None:
    terms = _field()
    whole = dict(terms.search(["sister", "food"], k=10))
    only = dict(terms.search(["sister", "food"], k=10, allowed=["cat", "unknown"]))
    assert only == {"cat": whole["cat"]}
    assert terms.search(["sister"], k=10, allowed=[]) == []


def test_the_best_k_are_the_best_of_every_match() -> None:
    texts = {f"one{i}": f"Note {i} mentions the lake." for i in range(50)}
    texts["both"] = "A swim in the lake at dawn, cold water, then coffee."
    terms = _field(texts)
    hits = terms.search(["lake", "swim"], k=3)
    assert hits[0][0] == "both"
    assert hits[0][1] == 1.0
    assert len(hits) == 3


def test_query_words_are_folded_as_stored_words_are() -> None:
    terms = _field({"cafe": "We met at the Café Central.", "other": "We met at the park."})
    assert [m for m, _ in terms.search(["café"], k=5)] == ["cafe"]
    assert [m for m, _ in terms.search(["CAFE"], k=5)] == ["cafe"]


def test_an_unchanged_text_keeps_its_postings() -> None:
    terms = _field()
    terms.add("cat", _TEXTS["cat"])
    assert terms.waste == 0
    assert [m for m, _ in terms.search(["salmon"], k=5)] == ["cat"]
