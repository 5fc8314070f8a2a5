"""The embedding model as ingest and questions use it: found on disk only, described without
loading it, loaded on first use in the runtime that suits the job (docqa.index.encoders)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from docqa.config import EmbeddingPrecision
from docqa.errors import ConfigError
from docqa.index.encoders import (
    Encoder,
    Precision,
    Runtime,
    encoder_class,
    open_encoder,
    runtime_for,
)
from docqa.index.encoders.folder import ModelFolder
from docqa.index.encoders.openvino_runtime import cpu_has_bf16
from docqa.index.encoders.tokens import load_tokenizer

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer


class Embedder:
    """Embeds texts into unit-length float32 vectors (so inner product = cosine)."""

    def __init__(
        self,
        model: str,
        batch_size: int = 4,
        runtime: Runtime = "onnxruntime",
        encoder: Encoder | None = None,
    ) -> None:
        """`encoder`: one already made for this model, used instead of opening one."""
        self.folder = ModelFolder.find(model)
        self.model_dir, self.model_id = self.folder.path, self.folder.model_id
        self.dimension, self.max_tokens = self.folder.dimension, self.folder.max_tokens
        self.batch_size = batch_size
        self.runtime = runtime_for(self.folder, runtime)
        self.precision: Precision = (encoder or encoder_class(self.folder, runtime)).precision
        self._encoder = encoder

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.model_dir)

    def load(self) -> Encoder:
        """The encoder, loaded now unless it is already."""
        if self._encoder is None:
            self._encoder = open_encoder(self.folder, self.runtime, self.batch_size)
        return self._encoder

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dimension), float32, L2-normalised."""
        return self.load().embed(texts)


def ingest_runtime(precision: EmbeddingPrecision) -> Runtime:
    """The runtime ingest embeds with: OpenVINO in bf16 where the CPU multiplies bf16 in
    hardware (precision auto or bf16), else ONNX Runtime in fp32."""
    if precision == "fp32":
        return "onnxruntime"
    if cpu_has_bf16():
        return "openvino"
    if precision == "bf16":
        raise ConfigError(
            "embedding.precision is bf16, but this CPU has no bf16 units (AVX512_BF16 or "
            "AMX-BF16 in /proc/cpuinfo): set it to auto or fp32"
        )
    return "onnxruntime"
