"""The BERT encoder run by ONNX Runtime, for ingest where the CPU has no bf16 units.

ONNX Runtime fuses the in-memory graph (docqa.index.encoders.graph) and runs it on every core:
ingest embeds ~1.5x faster than with torch, and the model loads in ~0.5 s instead of ~14 s
for torch and sentence-transformers.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from docqa.index.encoders import Precision
from docqa.index.encoders.folder import ModelFolder
from docqa.index.encoders.graph import bert_graph
from docqa.index.encoders.tokens import Batches
from docqa.index.encoders.weights import BertWeights


class OnnxEncoder:
    precision: Precision = "fp32"

    def __init__(self, folder: ModelFolder, batch_size: int) -> None:
        self.dimension, self.max_tokens = folder.dimension, folder.max_tokens
        self._batches = Batches(folder.path, folder.max_tokens, batch_size)
        self._forward = SessionForward(bert_graph(BertWeights.load(folder.path)))

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._batches.embed(texts, self._forward, self.dimension)


class SessionForward:
    """An ONNX model of BERT's forward pass, run by ONNX Runtime on every core this process
    may use: (tokens, mask) -> hidden states."""

    def __init__(self, model: Any) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = len(os.sched_getaffinity(0))
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (hidden,) = self._session.run(None, {"tokens": tokens, "mask": mask})
        return np.asarray(hidden)
