"""Finding the chunks for a question: vector and keyword search fused by reciprocal rank,
then (optionally) maximal marginal relevance to avoid near-duplicate chunks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docqa.config import RetrievalSettings
from docqa.index.store import Hit, VectorStore

if TYPE_CHECKING:
    import numpy as np


def reciprocal_rank_fusion(
    rankings: list[tuple[list[int], float]], k: int
) -> list[tuple[int, float]]:
    """(id, fused score) best first: an id scores the sum, over (ranking, weight) pairs, of
    weight / (k + its rank)."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def maximal_marginal_relevance(
    relevance: np.ndarray, candidates: np.ndarray, n: int, weight: float
) -> list[int]:
    """Indexes of n candidates (best first), trading relevance for novelty: each pick
    maximises weight * relevance - (1 - weight) * (max similarity to those picked)."""
    import numpy as np

    chosen: list[int] = []
    redundancy = np.full(len(candidates), -np.inf, dtype=np.float32)
    for _ in range(min(n, len(candidates))):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = weight * relevance - (1.0 - weight) * penalty
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        redundancy = np.maximum(redundancy, candidates @ candidates[best])
    return chosen


def retrieve(
    store: VectorStore,
    query: np.ndarray,
    question: str,
    k: int,
    settings: RetrievalSettings,
    within: np.ndarray | None = None,
    only: np.ndarray | None = None,
) -> list[Hit]:
    """The k chunks for a question, best first; each scored by cosine similarity. `within`
    (a mask over chunk ids: the documents routing chose) restricts both searches to those
    chunks (routing `filter`), or lifts them above the rest (`boost`); `only` (the documents
    a user selected) restricts them always."""
    pool = max(settings.candidates, k)
    allowed = within if settings.routing == "filter" else None
    if only is not None:
        narrowed = only if allowed is None else allowed & only
        allowed = narrowed if narrowed.any() else only
    nearest = store.nearest(query, pool, allowed)
    cosine = dict(nearest)
    rankings = []
    if settings.mode in ("vector", "hybrid"):
        rankings.append(([chunk_id for chunk_id, _ in nearest], settings.vector_weight))
    if settings.mode in ("keyword", "hybrid"):
        rankings.append((store.keywords.search(question, pool, allowed), 1.0))
    fused = reciprocal_rank_fusion(rankings, settings.rrf_k)
    if within is not None and settings.routing == "boost":
        bonus = settings.route_boost / (settings.rrf_k + 1)  # that share of a first place
        fused = sorted(
            ((chunk_id, score + bonus * within[chunk_id]) for chunk_id, score in fused),
            key=lambda pair: -pair[1],
        )
    fused = fused[:pool]
    ranked = [chunk_id for chunk_id, _ in fused]
    missing = [chunk_id for chunk_id in ranked if chunk_id not in cosine]
    if missing:
        cosine.update(zip(missing, (store.vectors(missing) @ query).tolist(), strict=True))
    if settings.mmr_lambda < 1.0 and len(ranked) > k:
        import numpy as np

        relevance = np.array([score for _, score in fused], dtype=np.float32)
        picks = maximal_marginal_relevance(
            relevance / relevance[0], store.vectors(ranked), k, settings.mmr_lambda
        )
        ranked = [ranked[i] for i in picks]
    return [store.hit(chunk_id, cosine[chunk_id]) for chunk_id in ranked[:k]]
