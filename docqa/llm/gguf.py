"""Reading a GGUF file's header without loading the model."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Any

from docqa.errors import ModelError

# GGUF value types: sizes of the fixed-size ones; 8 is a string, 9 an array.
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_INTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}


def gguf_context_length(path: Path) -> int | None:
    """The trained context length from a GGUF header, read without loading the model."""
    try:
        return _read_gguf_context_length(path)
    except (OSError, ValueError, struct.error) as exc:
        raise ModelError(f"{path} has a damaged GGUF header ({exc}): download it again") from exc


def _read_gguf_context_length(path: Path) -> int | None:
    with open(path, "rb") as model, mmap.mmap(model.fileno(), 0, access=mmap.ACCESS_READ) as data:
        _, _, _, count = struct.unpack_from("<4sIQQ", data, 0)
        offset = 24
        architecture, lengths = None, {}
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", data, offset)
            key = bytes(data[offset + 8 : offset + 8 + size]).decode("utf-8", "replace")
            (kind,) = struct.unpack_from("<I", data, offset + 8 + size)
            offset += 12 + size
            if kind == 8 and key == "general.architecture":
                (size,) = struct.unpack_from("<Q", data, offset)
                architecture = bytes(data[offset + 8 : offset + 8 + size]).decode()
            elif kind in _GGUF_INTS and key.endswith(".context_length"):
                lengths[key] = struct.unpack_from(_GGUF_INTS[kind], data, offset)[0]
            offset = _skip_gguf_value(data, offset, kind)
    return lengths.get(f"{architecture}.context_length")


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
        for _ in range(items):
            offset = _skip_gguf_value(data, offset, item_kind)
        return offset
    raise ModelError(f"unknown GGUF value type {kind}: the file is damaged or too new")
