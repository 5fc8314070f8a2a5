"""Fusion of vector and keyword rankings, and maximal marginal relevance."""

from pathlib import Path

import numpy as np
import pytest

from docqa.answer.retrieval import maximal_marginal_relevance, reciprocal_rank_fusion, retrieve
from docqa.config import RetrievalSettings
from docqa.index.store import VectorStore
from tests.test_store import MODEL, build


def test_reciprocal_rank_fusion_weighs_each_ranking() -> None:
    fused = reciprocal_rank_fusion([([1, 2, 3], 1.0), ([3, 1], 1.0)], k=60)
    assert [item for item, _ in fused] == [1, 3, 2]
    weighted = reciprocal_rank_fusion([([1, 2], 0.1), ([2, 1], 1.0)], k=60)
    assert [item for item, _ in weighted] == [2, 1]


def test_mmr_prefers_novel_candidates() -> None:
    candidates = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]], dtype=np.float32)
    relevance = np.array([1.0, 0.98, 0.7], dtype=np.float32)
    assert maximal_marginal_relevance(relevance, candidates, 2, weight=1.0) == [0, 1]
    assert maximal_marginal_relevance(relevance, candidates, 2, weight=0.5) == [0, 2]


def test_hybrid_search_finds_keyword_matches_the_vectors_miss(tmp_path: Path) -> None:
    texts = ["alpha report", "beta summary", "gamma appendix Zanzibar", "delta notes"]
    vectors = build(tmp_path, texts)
    store = VectorStore.open(tmp_path, MODEL)
    query = vectors[0]  # nearest to "alpha report" by vector
    vector_only = retrieve(store, query, "Zanzibar", 1, RetrievalSettings(mode="vector"))
    keyword_only = retrieve(store, query, "Zanzibar", 1, RetrievalSettings(mode="keyword"))
    hybrid = retrieve(store, query, "Zanzibar", 2, RetrievalSettings(vector_weight=0.5))
    assert vector_only[0].text == "alpha report"
    assert keyword_only[0].text == "gamma appendix Zanzibar"
    assert hybrid[0].text == "gamma appendix Zanzibar"
    assert hybrid[0].score == pytest.approx(float(vectors[2] @ query))  # still cosine
    assert [hit.chunk_id for hit in hybrid] == [2, 0]
