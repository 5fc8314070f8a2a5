"""GGML models through ctransformers (the 2023 ggml that reads GGML v3 files)."""

from __future__ import annotations

import ctypes
from collections.abc import Generator
from pathlib import Path
from typing import Any

from docqa.config import LLMSettings
from docqa.errors import ModelError
from docqa.llm.engine import MAX_AUTO_CONTEXT, available_threads


class CTransformersEngine:
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
