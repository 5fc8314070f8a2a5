"""What every torch-free runtime shares around its forward pass: the model's own tokenizer,
texts batched by length and padded, and sentence-transformers' mean pooling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (tokens, mask) -> hidden states


def load_tokenizer(model_dir: Path) -> Tokenizer:
    """The model's own fast tokenizer, without loading torch: whole texts, no padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Batches:
    """Texts as padded batches of token ids, and their hidden states back as vectors."""

    def __init__(self, model_dir: Path, max_tokens: int, batch_size: int) -> None:
        self.tokenizer = load_tokenizer(model_dir)
        self.max_tokens = max_tokens  # word pieces, not counting [CLS] and [SEP]
        self.batch_size = batch_size

    def __call__(self, texts: list[str]) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """(rows, token ids, attention mask) of batches of similar length, shortest first."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield rows, *self.encode([texts[i] for i in rows])

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask of a batch, padded to its longest text."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = [e.ids[1:-1][: self.max_tokens] for e in encodings]  # drop [CLS]/[SEP], truncate
        cls, sep = encodings[0].ids[0], encodings[0].ids[-1]
        width = max(len(row) for row in ids) + 2
        tokens = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.float32)
        for row, pieces in enumerate(ids):
            tokens[row, : len(pieces) + 2] = [cls, *pieces, sep]
            mask[row, : len(pieces) + 2] = 1.0
        return tokens, mask

    def embed(self, texts: list[str], forward: Forward, dimension: int) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, a batch at a time through
        `forward`."""
        vectors = np.empty((len(texts), dimension), np.float32)
        for rows, tokens, mask in self(texts):
            vectors[rows] = pooled(forward(tokens, mask), mask)
        return vectors


def pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each text's token states, L2-normalised (sentence-transformers' pooling)."""
    summed = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    norms = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.ascontiguousarray(summed / np.maximum(norms, 1e-12), dtype=np.float32)
