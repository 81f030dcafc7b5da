"""Keywords in small fields (domain/retrieval/fusion.py ``small_field``) and contracted
words in query terms (domain/retrieval/query_analysis.py)."""

from __future__ import annotations

from domain.retrieval.fusion import convex
from domain.retrieval.query_analysis import content_terms

WEIGHTS = {"dense": 1.0, "lexical": 1.5}
# "Where does my brother work?" over a five-memory field: the encoder clearly prefers the
# brother memory; "I work remotely" shares one word with the question, the brother memory
# another, and that word ("work") happens to be the rarer one.
DENSE = [("brother", 0.52), ("remote", 0.26), ("cat", 0.12), ("budget", 0.10), ("vim", 0.08)]
LEXICAL = [("remote", 0.77), ("brother", 0.23)]


def _order(small_field: str, trust: float) -> list[str]:
    fused = convex(
        {"dense": DENSE, "lexical": LEXICAL},
        WEIGHTS,
        dense_norm="zscore",
        lexical_trust=trust,
        small_field=small_field,
    )
    return [h.memory_id for h in fused]


def test_a_one_word_overlap_does_not_outrank_the_encoders_clear_choice() -> None:
    # Five memories: trust = log(5) / log(300), about 0.28.
    assert _order("partial", 0.28)[0] == "remote"  # the earlier rule let the keyword win
    assert _order("backed", 0.28)[0] == "brother"


def test_a_trusted_field_ranks_as_before() -> None:
    # Past the trusted size nothing is muted: both rules give the same scores.
    partial = convex({"dense": DENSE, "lexical": LEXICAL}, WEIGHTS, small_field="partial")
    backed = convex({"dense": DENSE, "lexical": LEXICAL}, WEIGHTS, small_field="backed")
    assert partial == backed


def test_a_backed_keyword_match_still_breaks_a_near_tie() -> None:
    # Two memories the encoder finds equally close; only one holds the question's words.
    dense = [("tuesday", 0.50), ("friday", 0.50), ("other", 0.10), ("more", 0.12)]
    fused = convex(
        {"dense": dense, "lexical": [("tuesday", 1.0)]},
        WEIGHTS,
        dense_norm="zscore",
        lexical_trust=0.25,
    )
    assert fused[0].memory_id == "tuesday"
    assert fused[0].reason == "both"
    assert fused[0].score > fused[1].score


def test_a_match_of_the_whole_query_is_kept_whatever_the_encoder_says() -> None:
    # "locker 4711": a code the encoder has no meaning for; it prefers another memory.
    dense = [("gym", 0.61), ("locker", 0.20), ("other", 0.15)]
    fused = convex(
        {"dense": dense, "lexical": [("locker", 1.0), ("gym", 0.4)]},
        WEIGHTS,
        dense_norm="zscore",
        lexical_trust=0.19,  # three memories
    )
    assert fused[0].memory_id == "locker"


def test_contracted_words_leave_their_head_or_nothing() -> None:
    assert content_terms("When is the wedding I'm going to?") == ["wedding"]
    assert content_terms("What can't the baby have? We've won't") == ["baby"]
    assert content_terms("Jen's party at five o'clock") == ["jen", "party", "five", "oclock"]


def test_forms_of_go_and_get_are_no_topic() -> None:
    # "going" is stemmed to "go" by the keyword index: kept, it matched "before prices go
    # up" as the rarest word of "When is the wedding I'm going to?" and outranked the date.
    asked = "Where is he going? She gets up and goes out; getting there, gone by noon"
    assert content_terms(asked) == ["noon"]
