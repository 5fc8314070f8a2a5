"""GGML v3 llama files re-packed as GGUF, losslessly: the tensors' blocks are copied byte for
byte (GGML v3 lays them out as GGUF does), the vocabulary gets SentencePiece token types, and
the header the llama metadata and the Llama-2-Chat template. llama.cpp then reads the model:
it reads prompts several times faster than ctransformers on the same CPU."""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from docqa.errors import ModelError, UsageError
from docqa.files import fsync
from docqa.llm.chat_formats import LLAMA2_CHAT_TEMPLATE
from docqa.llm.ggml_file import GgmlModel, Tensor, read_ggml_v3
from docqa.llm.header import CONVERTED_FROM

if TYPE_CHECKING:
    import gguf

CONTEXT_LENGTH = 4096  # Llama-2's trained context; GGML files do not record it
# The RMS norm epsilon ctransformers uses for every GGML llama file, so the copy computes what
# the original did (Llama-2 was trained with 1e-5: on its weights the difference is far below
# the quantization's; on the tests' random ones 1e-5 changes one greedy run in five).
NORM_EPS = 5e-6
_CHUNK = 16 << 20  # bytes copied at a time: memory stays flat whatever the model's size
_METADATA_ROOM = 1 << 20  # the GGUF header beyond the vocabulary, generously
_SPECIALS = (b"<unk>", b"<s>", b"</s>")  # ids 0-2 of every llama vocabulary


@dataclass(frozen=True)
class Conversion:
    target: Path
    tensors: int
    bytes: int
    seconds: float


def converted_path(model: Path) -> Path:
    """Where `docqa convert` writes a GGML file's GGUF by default, and where backend auto
    looks for it: llama-2-7b-chat.ggmlv3.q8_0.bin -> llama-2-7b-chat.q8_0.gguf."""
    stem = re.sub(r"\.ggml(v\d+)?(?=\.|$)", "", model.stem, flags=re.IGNORECASE)
    return model.with_name(f"{stem}.gguf")


def source_stamp(model: Path) -> str:
    """What a converted GGUF records of its GGML file, to tell it is still that file's copy."""
    return f"{model.name} {model.stat().st_size}"


def convert(
    source: Path,
    target: Path,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> Conversion:
    """Write the GGUF of the GGML v3 llama file `source` to `target`.

    The file is written beside the target under a temporary name and renamed when complete,
    so a crash, a kill or a full disk leaves no partial model behind. `on_progress` gets the
    tensor bytes copied so far and their total.
    """
    started = time.perf_counter()
    if target.exists() and not force:
        raise UsageError(f"{target} exists: pass --force to replace it")
    if target.exists() and target.samefile(source):
        raise UsageError(f"the output {target} is the input file: choose another with -o")
    model = read_ggml_v3(source)
    writer = _writer(model, source)
    total = sum(tensor.nbytes for tensor in model.tensors)
    _check_space(target, total + _header_bytes(model))
    partial = target.with_name(f".{target.name}.partial")
    try:
        writer.write_header_to_file(partial)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        out = writer.fout[0]
        with open(source, "rb") as data:
            copied = 0
            for tensor in model.tensors:
                writer.write_padding(out, out.tell())  # each tensor starts aligned
                copied = _copy(data, out, tensor, copied, total, on_progress)
            writer.write_padding(out, out.tell())
        out.flush()
        os.fsync(out.fileno())
        writer.close()
        os.replace(partial, target)
        fsync(target.parent)
    except OSError as exc:
        raise ModelError(
            f"cannot write {target} ({exc.strerror}): nothing was written; free some space "
            "or choose another folder with -o"
        ) from exc
    finally:
        writer.close()
        partial.unlink(missing_ok=True)
    return Conversion(
        target, len(model.tensors), target.stat().st_size, time.perf_counter() - started
    )


def _writer(model: GgmlModel, source: Path) -> gguf.GGUFWriter:
    """A GGUF writer holding the model's metadata, vocabulary and tensor index."""
    import gguf
    import numpy

    hyper = model.hyperparameters
    by_name = {tensor.name: tensor for tensor in model.tensors}
    try:
        key_rows = by_name["layers.0.attention.wk.weight"].shape[1]
        feed_forward = by_name["layers.0.feed_forward.w1.weight"].shape[1]
    except KeyError as exc:
        raise ModelError(f"{source} is not a llama model: it has no tensor {exc}") from exc
    writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_name(converted_path(source).stem)
    writer.add_description(f"converted by docqa convert from the GGML v3 file {source.name}")
    writer.add_string(CONVERTED_FROM, source_stamp(source))
    writer.add_file_type(hyper.ftype)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(hyper.n_embd)
    writer.add_block_count(hyper.n_layer)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(hyper.n_head)
    writer.add_head_count_kv(key_rows // (hyper.n_embd // hyper.n_head))  # grouped-query (70B)
    writer.add_rope_dimension_count(hyper.n_rot)
    writer.add_layer_norm_rms_eps(NORM_EPS)
    _add_vocabulary(writer, model)
    writer.add_chat_template(LLAMA2_CHAT_TEMPLATE)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, hyper.n_layer)
    for tensor in model.tensors:
        name = names.get_name(tensor.name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelError(f"{source} is not a llama model: it has a tensor {tensor.name}")
        kind = gguf.GGMLQuantizationType(tensor.kind)
        rows = tuple(reversed(tensor.shape[1:]))
        writer.add_tensor_info(
            name,
            (*rows, tensor.nbytes // math.prod(rows)),  # bytes per row: raw blocks
            numpy.dtype("uint8"),
            tensor.nbytes,
            raw_dtype=kind,
        )
    return writer


def _add_vocabulary(writer: gguf.GGUFWriter, model: GgmlModel) -> None:
    """The SentencePiece vocabulary as llama.cpp's GGUF files hold it: spaces as U+2581, the
    byte tokens (ids 3-258) as <0xXX>, with token types; ids 0-2 are <unk>, <s>, </s>."""
    import gguf

    pieces, scores, types = [], [], []
    for token, (text, score) in enumerate(model.vocabulary):
        if token < 3:
            text, kind = (
                _SPECIALS[token],
                gguf.TokenType.UNKNOWN if token == 0 else gguf.TokenType.CONTROL,
            )
        elif not text:
            kind = gguf.TokenType.CONTROL
        elif token <= 258 and len(text) == 1:
            text, kind = f"<0x{text[0]:02X}>".encode(), gguf.TokenType.BYTE
        else:
            text, kind = text.replace(b" ", "\u2581".encode()), gguf.TokenType.NORMAL
        pieces.append(text)
        scores.append(score)
        types.append(kind)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    # ctransformers does not add SentencePiece's word-start space to a text: nor does the
    # copy, so both tokenize alike
    writer.add_add_space_prefix(False)


def _copy(
    data: io.BufferedReader,
    out: BinaryIO,
    tensor: Tensor,
    copied: int,
    total: int,
    on_progress: Callable[[int, int], None] | None,
) -> int:
    data.seek(tensor.offset)
    buffer = bytearray(_CHUNK)
    left = tensor.nbytes
    while left:
        view = memoryview(buffer)[: min(left, _CHUNK)]
        if data.readinto(view) != len(view):
            raise ModelError(f"{data.name} changed while it was read: convert it again")
        out.write(view)
        left -= len(view)
        copied += len(view)
        if on_progress:
            on_progress(copied, total)
    return copied


def _check_space(target: Path, needed: int) -> None:
    free = shutil.disk_usage(target.parent).free
    if free < needed:
        raise ModelError(
            f"the GGUF needs {needed / 1e9:.2f} GB and {target.parent} has {free / 1e9:.2f} GB "
            "free: free some space or choose another folder with -o"
        )


def _header_bytes(model: GgmlModel) -> int:
    return _METADATA_ROOM + sum(len(text) + 24 for text, _ in model.vocabulary)
