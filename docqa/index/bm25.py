"""Okapi BM25 keyword search over the chunks, stored as plain arrays (never pickled).

Postings are term-major: for each term, the chunks holding it and how often. Only the
counts are stored; idf and length normalisation are computed per query.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from docqa.text import terms

K1 = 1.2  # term-frequency saturation
B = 0.75  # document-length normalisation
ARRAY_FILES = {name: f"bm25-{name}.npy" for name in ("offsets", "chunk_ids", "counts", "lengths")}
TERMS = "bm25-terms.json"
FILES = (*ARRAY_FILES.values(), TERMS)  # what `save` writes


class BM25Index:
    def __init__(
        self,
        vocabulary: list[str],
        offsets: np.ndarray,
        chunk_ids: np.ndarray,
        counts: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self._rows = {term: row for row, term in enumerate(vocabulary)}
        self._vocabulary = vocabulary
        self._offsets = offsets  # row r's postings are [offsets[r], offsets[r + 1])
        self._chunk_ids = chunk_ids
        self._counts = counts
        self._lengths = lengths
        self._average = float(lengths.mean()) if len(lengths) else 0.0

    @classmethod
    def build(cls, texts: Iterable[str]) -> BM25Index:
        postings: dict[str, list[tuple[int, int]]] = {}
        lengths = []
        for chunk_id, text in enumerate(texts):
            counted = Counter(terms(text))
            lengths.append(sum(counted.values()))
            for term, count in counted.items():
                postings.setdefault(term, []).append((chunk_id, count))
        vocabulary = sorted(postings)
        rows = [postings[term] for term in vocabulary]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(row) for row in rows], out=offsets[1:])
        flat = [posting for row in rows for posting in row]
        return cls(
            vocabulary,
            offsets,
            np.array([chunk_id for chunk_id, _ in flat], dtype=np.int32),
            np.array([count for _, count in flat], dtype=np.int32),
            np.array(lengths, dtype=np.int32),
        )

    def save(self, folder: Path) -> None:
        """Write the arrays as .npy files (memory-mapped when loaded) and the terms as JSON."""
        arrays = (self._offsets, self._chunk_ids, self._counts, self._lengths)
        for file, array in zip(ARRAY_FILES.values(), arrays, strict=True):
            with open(folder / file, "wb") as out:
                np.save(out, array, allow_pickle=False)
        (folder / TERMS).write_text(json.dumps(self._vocabulary, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """The index `save` wrote; its arrays are memory-mapped, so a question reads only the
        postings of its own terms."""
        arrays = {
            name: np.load(folder / file, mmap_mode="r", allow_pickle=False)
            for name, file in ARRAY_FILES.items()
        }
        return cls(json.loads((folder / TERMS).read_text(encoding="utf-8")), **arrays)

    def __len__(self) -> int:
        return len(self._lengths)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (folded) term; rare terms weigh most."""
        row = self._rows.get(term)
        df = 0 if row is None else int(self._offsets[row + 1] - self._offsets[row])
        return float(np.log(1.0 + (len(self._lengths) - df + 0.5) / (df + 0.5)))

    def chunk_ids(self, term: str) -> np.ndarray:
        """The chunks that hold a (folded) term."""
        row = self._rows.get(term)
        if row is None:
            return self._chunk_ids[:0]
        return self._chunk_ids[self._offsets[row] : self._offsets[row + 1]]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for the query (0 where no term matches)."""
        total = np.zeros(len(self._lengths), dtype=np.float32)
        for term in set(terms(query)):
            row = self._rows.get(term)
            if row is None:
                continue
            start, end = self._offsets[row], self._offsets[row + 1]
            ids, counts = self._chunk_ids[start:end], self._counts[start:end]
            idf = self.idf(term)
            norm = K1 * (1.0 - B + B * self._lengths[ids] / self._average)
            total[ids] += idf * counts * (K1 + 1.0) / (counts + norm)
        return total

    def search(self, query: str, n: int, allowed: np.ndarray | None = None) -> list[int]:
        """Ids of the n best-scoring chunks that match at least one term, best first (among
        the `allowed` ones, a mask over chunk ids, when given)."""
        scores = self.scores(query)
        candidates = np.flatnonzero((scores > 0) & (True if allowed is None else allowed))
        best = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
        return [int(chunk_id) for chunk_id in best]
