"""The random-weight llama writers that bench/llm7b.py uses at Llama-2-7B's shapes make files
both backends load and generate from: GGUF (llama.cpp) and GGML v3 (ctransformers), Q8_0."""

from __future__ import annotations

from pathlib import Path

import pytest

from docqa.config import load_settings
from docqa.llm.models import load_llm
from tests.fixtures.ggml import (
    GGML_TYPE_Q8_0,
    LLAMA_2_7B,
    LlamaShape,
    write_ggjt_llama,
    write_gguf_llama,
)

pytestmark = pytest.mark.slow
SMALL = LlamaShape(n_vocab=600, n_embd=128, n_head=4, n_layer=2, n_mult=64)


@pytest.mark.parametrize(
    ("writer", "name", "backend"),
    [
        (write_gguf_llama, "small.gguf", "llamacpp"),
        (write_ggjt_llama, "small.bin", "ctransformers"),
    ],
)
def test_q8_0_model_loads_and_generates(
    tmp_path: Path, writer: object, name: str, backend: str
) -> None:
    path = writer(tmp_path / name, SMALL, GGML_TYPE_Q8_0)  # type: ignore[operator]
    blocks = sum(
        rows * columns // 32 for _, _, (rows, *rest) in SMALL.tensors() for columns in rest
    )
    assert path.stat().st_size >= blocks * 34  # every 2-D weight stored as Q8_0 blocks
    llm_settings = {"model": path, "backend": backend, "temperature": 0, "max_new_tokens": 5}
    settings = load_settings(None, {"llm": llm_settings})
    llm, notice = load_llm(settings.llm, explicit=True)
    assert (llm.backend, notice) == (backend, None)
    done = llm.complete(" w1 w2 w3 w4")
    assert done.prompt_tokens > 4
    assert 1 <= done.completion_tokens <= 5


def test_7b_shapes_are_llama_2_7b() -> None:
    shapes = {gguf: dims for _, gguf, dims in LLAMA_2_7B.tensors()}
    assert len(shapes) == 3 + 32 * 9
    assert shapes["blk.0.ffn_gate.weight"] == (11008, 4096)
    assert shapes["token_embd.weight"] == (32000, 4096)
    parameters = sum(r * (c[0] if c else 1) for r, *c in shapes.values())
    assert parameters == 6_738_415_616  # Llama-2-7B's published parameter count
