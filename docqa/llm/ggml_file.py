"""GGML llama files as the 2023 llama.cpp wrote them: the hyperparameters, and for a v3 ("ggjt"
version 3) file the vocabulary with its scores and where each tensor's data lies, read without
loading the weights."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from docqa.errors import ModelError

GGUF_MAGIC = b"GGUF"
GGJT_MAGIC = b"tjgg"  # 'ggjt' as a little-endian uint32
VERSIONED_MAGICS = {b"fmgg", GGJT_MAGIC}  # 'ggmf' and 'ggjt' carry a version after the magic
GGML_MAGICS = {b"lmgg", *VERSIONED_MAGICS}
# The tensor types whose GGML v3 blocks are laid out as GGUF's: (weights, bytes) per block.
# Q4_0, Q4_1 and Q8_0 changed in v3 and Q5_0/Q5_1 in v2, so older files are not among them.
BLOCKS = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34),
}
TYPE_NAMES = {kind: name for name, (kind, _, _) in BLOCKS.items()}
_OTHER_TYPES = {9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K"}
_ALIGNMENT = 32  # ggjt aligns each tensor's data to 32 bytes


@dataclass(frozen=True)
class Hyperparameters:
    n_vocab: int
    n_embd: int
    n_mult: int
    n_head: int
    n_layer: int
    n_rot: int
    ftype: int

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> Hyperparameters:
        return cls(*struct.unpack_from("<7i", data, offset))


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]  # GGML order: the row length (ne0) first
    kind: int
    offset: int  # of its data in the file
    nbytes: int


@dataclass(frozen=True)
class GgmlModel:
    hyperparameters: Hyperparameters
    vocabulary: list[tuple[bytes, float]]  # (text, score) by token id; spaces as spaces
    tensors: list[Tensor]


def read_ggml_v3(path: Path) -> GgmlModel:
    """The header, vocabulary and tensor index of a GGML v3 llama file (not its weights).

    A file of another format or version, a tensor of a type not in BLOCKS, and a file cut
    short each raise ModelError with what to do.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as model:
            _check_magic(path, model.read(8))
            hyperparameters = Hyperparameters.unpack(_exactly(model, 28))
            if not 0 < hyperparameters.n_vocab < 1 << 22:
                raise ValueError(f"a vocabulary of {hyperparameters.n_vocab} tokens")
            vocabulary = [_token(model) for _ in range(hyperparameters.n_vocab)]
            tensors = []
            while model.tell() < size:
                tensors.append(_tensor(path, model, size))
    except (EOFError, ValueError, struct.error) as exc:
        raise ModelError(f"{path} is damaged or cut short ({exc}): download it again") from exc
    except OSError as exc:
        raise ModelError(f"cannot read {path} ({exc.strerror})") from exc
    if not tensors:
        raise ModelError(f"{path} holds no tensors: download it again")
    return GgmlModel(hyperparameters, vocabulary, tensors)


def _check_magic(path: Path, head: bytes) -> None:
    magic, version = head[:4], int.from_bytes(head[4:8], "little")
    if magic == GGJT_MAGIC and version == 3:
        return
    if magic == GGUF_MAGIC:
        raise ModelError(f"{path} is already a GGUF file: point llm.model at it")
    if magic in GGML_MAGICS:
        found = f"ggjt v{version}" if magic == GGJT_MAGIC else magic[::-1].decode()
        raise ModelError(
            f"{path} is a GGML file of an older format ({found}) whose quantized blocks differ "
            "from GGUF's: only GGML v3 files convert losslessly; download the model as GGUF"
        )
    raise ModelError(f"{path} is not a GGML model file (it starts with {magic!r})")


def _token(model: BinaryIO) -> tuple[bytes, float]:
    (length,) = struct.unpack("<I", _exactly(model, 4))
    if length > 4096:
        raise ValueError(f"a vocabulary entry of {length} bytes")
    text = _exactly(model, length)
    (score,) = struct.unpack("<f", _exactly(model, 4))
    return text, score


def _tensor(path: Path, model: BinaryIO, size: int) -> Tensor:
    dimensions, name_length, kind = struct.unpack("<3i", _exactly(model, 12))
    if not 1 <= dimensions <= 4 or not 0 < name_length < 4096:
        raise ValueError(f"a tensor header at byte {model.tell() - 12}")
    shape = struct.unpack(f"<{dimensions}i", _exactly(model, 4 * dimensions))
    name = _exactly(model, name_length).decode("utf-8", "replace")
    if kind not in TYPE_NAMES:
        found = _OTHER_TYPES.get(kind, f"type {kind}")
        raise ModelError(
            f"{path}: tensor {name} is {found}, which has no lossless GGUF copy here; "
            f"only {', '.join(BLOCKS)} tensors convert: download the model as GGUF"
        )
    _, per_block, block_bytes = BLOCKS[TYPE_NAMES[kind]]
    elements = 1
    for extent in shape:
        elements *= extent
    if elements <= 0 or shape[0] % per_block:
        raise ValueError(f"tensor {name} of shape {shape}")
    offset = -(-model.tell() // _ALIGNMENT) * _ALIGNMENT
    nbytes = elements // per_block * block_bytes
    if offset + nbytes > size:
        raise EOFError(f"tensor {name} ends at byte {offset + nbytes}, the file has {size}")
    model.seek(offset + nbytes)
    return Tensor(name, shape, kind, offset, nbytes)


def _exactly(model: BinaryIO, count: int) -> bytes:
    data = model.read(count)
    if len(data) != count:
        raise EOFError(f"the file ends at byte {model.tell()}")
    return data
