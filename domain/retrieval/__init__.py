"""The retrieval engine: hybrid dense + lexical search over one user's memory fields.

``engine`` runs a search (candidates, fusion, expansion, reranking by time and speaker);
``fusion`` combines ranked lists; ``query_analysis`` and ``time_parse`` read the question;
``feedback`` and ``speakers`` are in-pool re-scoring signals; ``settings`` holds the knobs.
"""
