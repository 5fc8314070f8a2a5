"""sentence-transformers on torch: runs every model the torch-free encoders do not."""

from __future__ import annotations

import numpy as np

from docqa.config import enforce_offline
from docqa.errors import ModelError
from docqa.index.encoders import Precision
from docqa.index.encoders.folder import ModelFolder


class SentenceTransformersEncoder:
    precision: Precision = "fp32"

    def __init__(self, folder: ModelFolder, batch_size: int) -> None:
        enforce_offline()
        from sentence_transformers import SentenceTransformer

        self.dimension, self.max_tokens = folder.dimension, folder.max_tokens
        self.batch_size = batch_size
        try:
            self._model = SentenceTransformer(str(folder.path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model from {folder.path}: {exc}") from exc
        self._model.max_seq_length = folder.max_tokens + 2

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
