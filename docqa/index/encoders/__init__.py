"""Sentence encoders: texts -> unit-length float32 vectors (so inner product = cosine).

A BERT model such as all-MiniLM-L6-v2 runs without torch, computing what sentence-transformers
computes: in numpy (fastest to load: questions), in ONNX Runtime (ingest) or in OpenVINO with
bf16 matrix multiplies (ingest where the CPU has bf16 units). sentence-transformers runs every
other model.

    folder.py         the model folder on disk: where, its id, its dimension and input length
    weights.py        a BERT's shape and safetensors weights
    tokens.py         its tokenizer, texts batched by length, mean pooling
    numpy_bert.py     the forward pass in numpy
    graph.py          the forward pass as an ONNX graph
    onnx_runtime.py, openvino_runtime.py, sentence_transformers_runtime.py   the runtimes
    openvino_process.py   the child process OpenVINO runs in
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from docqa.index.encoders.folder import ModelFolder

if TYPE_CHECKING:
    import numpy as np

    from docqa.index.encoders.numpy_bert import NumpyEncoder
    from docqa.index.encoders.onnx_runtime import OnnxEncoder
    from docqa.index.encoders.openvino_runtime import OpenVinoEncoder
    from docqa.index.encoders.sentence_transformers_runtime import SentenceTransformersEncoder

    EncoderClass = type[NumpyEncoder | OnnxEncoder | OpenVinoEncoder | SentenceTransformersEncoder]

Runtime = Literal["onnxruntime", "openvino", "numpy", "sentence-transformers"]
Precision = Literal["fp32", "bf16"]


class Encoder(Protocol):
    dimension: int
    max_tokens: int  # word pieces it reads, not counting its two special tokens
    precision: Precision

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dimension), float32, L2-normalised."""
        ...


def runtime_for(folder: ModelFolder, runtime: Runtime) -> Runtime:
    """The runtime that embeds with `folder`'s model: `runtime`, unless only
    sentence-transformers runs it."""
    return runtime if folder.plain_bert else "sentence-transformers"


def encoder_class(folder: ModelFolder, runtime: Runtime) -> EncoderClass:
    """The encoder class that runs `folder`'s model in `runtime` (see runtime_for): its
    `precision` is known before it loads anything."""
    from docqa.index.encoders.numpy_bert import NumpyEncoder
    from docqa.index.encoders.onnx_runtime import OnnxEncoder
    from docqa.index.encoders.openvino_runtime import OpenVinoEncoder
    from docqa.index.encoders.sentence_transformers_runtime import SentenceTransformersEncoder

    encoders: dict[Runtime, EncoderClass] = {
        "numpy": NumpyEncoder,
        "onnxruntime": OnnxEncoder,
        "openvino": OpenVinoEncoder,
        "sentence-transformers": SentenceTransformersEncoder,
    }
    return encoders[runtime_for(folder, runtime)]


def open_encoder(folder: ModelFolder, runtime: Runtime, batch_size: int) -> Encoder:
    """The encoder of `folder`'s model in `runtime` (see runtime_for), loaded."""
    return encoder_class(folder, runtime)(folder, batch_size)
