"""Pure retrieval parts: fusion, query analysis, time expressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.retrieval.engine import _run
from domain.retrieval.feedback import feedback_scores, feedback_terms
from domain.retrieval.fusion import convex, rrf
from domain.retrieval.query_analysis import TimeIntent, analyze, content_terms, mentions_time
from domain.retrieval.time_parse import parse_time_range

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def test_rrf_rewards_agreement_and_reports_sources() -> None:
    fused = rrf(
        {"dense": [("a", 0.9), ("b", 0.8)], "lexical": [("b", 7.0), ("c", 5.0)]},
        {"dense": 1.0, "lexical": 1.0},
    )
    assert next(h.memory_id for h in fused) == "b"
    reasons = {h.memory_id: h.reason for h in fused}
    assert reasons == {"a": "dense", "b": "both", "c": "lexical"}


def test_convex_uses_score_magnitudes() -> None:
    # "a" is a far better dense match than "b"; lexical only weakly prefers "b".
    fused = convex(
        {"dense": [("a", 0.9), ("b", 0.3)], "lexical": [("b", 1.0), ("a", 0.9)]},
        {"dense": 1.0, "lexical": 0.5},
        dense_floor=0.2,
    )
    assert [h.memory_id for h in fused] == ["a", "b"]
    assert fused[0].score > fused[1].score > 0


def test_content_terms_drop_stopwords_and_possessives() -> None:
    assert content_terms("What did Caroline's sister paint in the park?") == [
        "caroline",
        "sister",
        "paint",
        "park",
    ]


def test_time_intent_and_ranges() -> None:
    assert analyze("When did Melanie paint a sunrise?", now=NOW).intent is TimeIntent.WHEN
    assert analyze("What is my latest job?", now=NOW).intent is TimeIntent.LATEST
    assert analyze("Where did I first live?", now=NOW).intent is TimeIntent.EARLIEST
    assert analyze("Favourite colour?", now=NOW).intent is TimeIntent.NONE

    may = parse_time_range("what happened in May 2023?", now=NOW)
    assert may is not None
    assert (may.start, may.end) == (
        datetime(2023, 5, 1, tzinfo=UTC),
        datetime(2023, 6, 1, tzinfo=UTC),
    )
    day = parse_time_range("the 8th of May, 2023", now=NOW)
    assert day is not None
    assert day.start == datetime(2023, 5, 8, tzinfo=UTC)
    assert parse_time_range("on 2023-02-30", now=NOW) is None  # not a date
    year = parse_time_range("trips in 2022", now=NOW)
    assert year is not None
    assert year.contains(datetime(2022, 7, 1, tzinfo=UTC))
    ago = parse_time_range("two weeks ago", now=NOW)
    assert ago is not None
    assert ago.contains(datetime(2024, 6, 1, tzinfo=UTC))
    yesterday = parse_time_range("what did I eat yesterday", now=NOW)
    assert yesterday is not None
    assert yesterday.contains(datetime(2024, 6, 14, 18, tzinfo=UTC))
    assert yesterday.distance_days(datetime(2024, 6, 10, tzinfo=UTC)) == 4.0


def test_convex_zscore_scales_dense_within_the_query() -> None:
    # Same cosines shifted up by 0.3: z-scored, the dense contribution is unchanged.
    low = [("a", 0.40), ("b", 0.20), ("c", 0.18), ("d", 0.16)]
    high = [(m, s + 0.3) for m, s in low]
    lexical = [("b", 2.0)]
    fused = [
        convex(
            {"dense": dense, "lexical": lexical},
            {"dense": 1.0, "lexical": 1.0},
            dense_norm="zscore",
        )
        for dense in (low, high)
    ]
    assert [h.memory_id for h in fused[0]] == [h.memory_id for h in fused[1]]
    assert [round(h.score, 9) for h in fused[0]] == [round(h.score, 9) for h in fused[1]]
    assert fused[0][0].memory_id == "b"  # lexical + a little dense beats dense alone
    assert {h.memory_id for h in fused[0] if h.score <= 0} == {"c", "d"}  # below the mean


def test_convex_zscore_ignores_non_finite_dense_scores() -> None:
    # pgvector answers NaN for the cosine distance to a zero vector (a stopword-only query).
    dense = [("a", 0.5), ("b", float("nan")), ("c", 0.1), ("d", float("inf"))]
    fused = convex({"dense": dense}, {"dense": 1.0}, dense_norm="zscore")
    scores = {h.memory_id: h.score for h in fused}
    assert fused[0].memory_id == "a"
    assert all(s == s and s != float("inf") for s in scores.values())  # no NaN, no inf
    assert scores["b"] == 0.0
    assert scores["d"] == 0.0


def test_runs_stop_at_silences() -> None:
    at = [NOW + timedelta(minutes=m) for m in (0, 1, 2, 300, 301, 302)]
    around = [(f"t{i}", t) for i, t in enumerate(at)]
    # Within an hour per step: t2's session is t0..t2; five hours of silence end it.
    assert _run(around, "t2", 3600, 10) == {"t0", "t1"}
    assert _run(around, "t3", 3600, 10) == {"t4", "t5"}
    assert _run(around, "t1", 3600, 1) == {"t0", "t2"}  # steps bound the walk
    assert _run(around, "t1", 7 * 3600, 10) == {"t0", "t2", "t3", "t4", "t5"}
    assert _run(around, "missing", 3600, 10) == set()


def test_feedback_terms_come_from_the_best_hits_only() -> None:
    words = {
        "a": {"pottery", "class", "clay"},
        "b": {"pottery", "glaze"},
        "c": {"clay", "kiln"},
        "d": {"football"},  # below the cut: never borrowed from
    }
    ranked = [("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 0.5)]
    terms = feedback_terms(ranked, words, asked={"pottery"}, docs=3)
    # Shared by two hits first ("clay"), then by the best score of a hit using the word,
    # then alphabetically; the asked word itself is not borrowed.
    assert terms == ["clay", "class", "glaze", "kiln"]
    assert feedback_terms(ranked, words, asked={"pottery"}, docs=3, min_docs=2) == ["clay"]


def test_feedback_terms_take_ties_with_the_last_hit_whatever_their_ids() -> None:
    words = {"a": {"alpha"}, "y": {"yankee"}, "z": {"zulu"}}
    # "y" and "z" tie for the second place: both are read, so the ids cannot decide.
    terms = feedback_terms([("a", 2.0), ("z", 1.0), ("y", 1.0)], words, asked=set(), docs=2)
    assert sorted(terms) == ["alpha", "yankee", "zulu"]


def test_feedback_scores_weigh_rare_words_in_the_pool_higher() -> None:
    words = {
        "a": {"clay", "kiln"},
        "b": {"clay"},
        "c": {"clay"},
        "d": {"kiln", "glaze"},
        "e": set(),
    }
    gains = feedback_scores(list(words), words, {"clay", "kiln", "glaze"})
    # "glaze" is in one of five, "kiln" in two, "clay" in three: "d" (kiln + glaze) leads,
    # "a" (clay + kiln) next, then the clay-only hits; "e" matches nothing and gains nothing.
    assert gains["d"] == 1.0
    assert gains["d"] > gains["a"] > gains["b"] == gains["c"] > 0.0
    assert "e" not in gains
    assert feedback_scores(["a", "b"], words, {"pottery"}) == {}


def test_mentions_time() -> None:
    assert mentions_time("I went to a support group yesterday")
    assert mentions_time("We moved there in 2019.")
    assert mentions_time("Last weekend we hiked")
    assert mentions_time("see you on Friday")
    assert mentions_time("back in October")
    assert not mentions_time("I love pottery and clay")
    assert not mentions_time("You may like it")  # "may" the verb, not the month
    # Recurring days, clock times, and the two ambiguous months after a preposition.
    assert mentions_time("Emma has ballet on Tuesdays")
    assert mentions_time("Haircut at 10am")
    assert mentions_time("stand-up at 9:30")
    assert mentions_time("Her booster is due in March")
    assert not mentions_time("They march on")
    assert not mentions_time("3 amazing goals")


def test_fused_ties_are_ordered_by_id() -> None:
    # Equal scores come out by id whatever the input order (the engine's cut relies on it).
    ranked = [("d", 1.0), ("b", 0.5), ("c", 0.5), ("a", 0.5), ("e", 0.1)]
    fused = convex({"lexical": ranked}, {"lexical": 1.0}, lexical_norm="max")
    assert [h.memory_id for h in fused] == ["d", "a", "b", "c", "e"]
    fused = rrf({"dense": ranked[:2], "lexical": [("b", 1.0), ("d", 0.5)]}, {})
    assert [h.memory_id for h in fused] == ["b", "d"]
