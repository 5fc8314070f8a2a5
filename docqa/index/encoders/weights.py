"""A BERT model's shape and its safetensors weights, read without torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from docqa.index.encoders.folder import read_json


@dataclass(frozen=True)
class BertWeights:
    heads: int
    layers: int
    eps: float  # LayerNorm's
    tensors: dict[str, np.ndarray]  # by their names in the checkpoint

    @classmethod
    def load(cls, model_dir: Path) -> BertWeights:
        from safetensors.numpy import load_file

        config = read_json(model_dir / "config.json")
        return cls(
            int(config["num_attention_heads"]),
            int(config["num_hidden_layers"]),
            float(config["layer_norm_eps"]),
            load_file(str(model_dir / "model.safetensors")),
        )

    @property
    def width(self) -> int:
        return int(self.tensors["embeddings.LayerNorm.weight"].shape[0])
