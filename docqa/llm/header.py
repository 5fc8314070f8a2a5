"""A model's shape from its file header, read without loading the model: its parameter count
and trained context length, from a GGUF header or a GGML (llama) one; and for a GGUF that
`docqa convert` wrote, the GGML file it came from."""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docqa.errors import ModelError
from docqa.llm.ggml_file import GGUF_MAGIC, VERSIONED_MAGICS, Hyperparameters

# GGUF value types: sizes of the fixed-size ones; 8 is a string, 9 an array.
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_U64 = struct.Struct("<Q")
_GGUF_INTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    context_length: int | None  # the trained context, when the header says (GGML does not)
    converted_from: str | None = None  # CONVERTED_FROM's value: the source GGML file


CONVERTED_FROM = "docqa.converted_from"  # "NAME BYTES" of the GGML file, in a converted GGUF


def model_shape(path: Path, model_type: str = "llama") -> ModelShape:
    """The shape of a GGUF file, or of a GGML file of `model_type` (llama hyperparameters;
    other GGML types are sized by their file, about a byte per parameter)."""
    try:
        with (
            open(path, "rb") as model,
            mmap.mmap(model.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            magic = bytes(data[:4])
            if magic == GGUF_MAGIC:
                return _gguf_shape(data)
            if model_type == "llama":
                return _ggml_llama_shape(data, 8 if magic in VERSIONED_MAGICS else 4)
            return ModelShape(len(data), None)
    except (OSError, ValueError, struct.error) as exc:
        raise ModelError(f"{path} has a damaged header ({exc}): download it again") from exc


def _gguf_shape(data: Any) -> ModelShape:
    _, _, tensors, count = struct.unpack_from("<4sIQQ", data, 0)
    offset = 24
    strings: dict[str, str] = {}
    lengths = {}
    for _ in range(count):
        key, offset = _gguf_string(data, offset)
        (kind,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if kind == 8 and key in ("general.architecture", CONVERTED_FROM):
            strings[key] = _gguf_string(data, offset)[0]
        elif kind in _GGUF_INTS and key.endswith(".context_length"):
            lengths[key] = struct.unpack_from(_GGUF_INTS[kind], data, offset)[0]
        offset = _skip_gguf_value(data, offset, kind)
    parameters = 0
    for _ in range(tensors):
        _, offset = _gguf_string(data, offset)
        (dimensions,) = struct.unpack_from("<I", data, offset)
        sizes = struct.unpack_from(f"<{dimensions}Q", data, offset + 4)
        parameters += math.prod(sizes)
        offset += 4 + 8 * dimensions + 12  # the sizes, then the type (4) and data offset (8)
    architecture = strings.get("general.architecture")
    return ModelShape(
        parameters, lengths.get(f"{architecture}.context_length"), strings.get(CONVERTED_FROM)
    )


def _ggml_llama_shape(data: Any, offset: int) -> ModelShape:
    hyper = Hyperparameters.unpack(data, offset)
    width, multiple = hyper.n_embd, hyper.n_mult
    feed_forward = (2 * 4 * width // 3 + multiple - 1) // multiple * multiple
    per_layer = 4 * width * width + 3 * width * feed_forward + 2 * width
    return ModelShape(2 * hyper.n_vocab * width + hyper.n_layer * per_layer + width, None)


def _gguf_string(data: Any, offset: int) -> tuple[str, int]:
    (size,) = struct.unpack_from("<Q", data, offset)
    text = bytes(data[offset + 8 : offset + 8 + size]).decode("utf-8", "replace")
    return text, offset + 8 + size


def _skip_gguf_value(data: Any, offset: int, kind: int) -> int:
    if kind in _GGUF_SIZES:
        return offset + _GGUF_SIZES[kind]
    if kind == 8:
        return offset + 8 + struct.unpack_from("<Q", data, offset)[0]
    if kind == 9:
        item_kind, items = struct.unpack_from("<IQ", data, offset)
        offset += 12
        if item_kind in _GGUF_SIZES:
            return offset + items * _GGUF_SIZES[item_kind]
        if item_kind == 8:  # a vocabulary: ~100,000 strings, so the tightest loop
            length = _U64.unpack_from
            for _ in range(items):
                offset += 8 + length(data, offset)[0]
            return offset
        for _ in range(items):
            offset = _skip_gguf_value(data, offset, item_kind)
        return offset
    raise ModelError(f"unknown GGUF value type {kind}: the file is damaged or too new")
