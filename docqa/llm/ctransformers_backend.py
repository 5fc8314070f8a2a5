"""GGML models through ctransformers (the 2023 ggml that reads GGML v3 files)."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

from docqa.config import LLMSettings, Sampling
from docqa.errors import ModelError
from docqa.llm.engine import MAX_AUTO_CONTEXT, available_threads

_CONTROLS = re.compile("(</?s>)")  # the only control tokens of a Llama GGML vocabulary


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
        self._batch_size = settings.batch_size
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

    def tokenize(self, text: str, *, special: bool, bos: bool) -> list[int]:
        tokens = [self._llm.bos_token_id] if bos else []
        if not special:  # this tokenizer never reads control tokens from text
            return tokens + self._plain(text)
        controls = {self.bos_text: self._llm.bos_token_id, self.eos_text: self._llm.eos_token_id}
        for piece in _CONTROLS.split(text):
            tokens += [controls[piece]] if piece in controls else self._plain(piece)
        return tokens

    def _plain(self, text: str) -> list[int]:
        # LLM.tokenize() sizes its token buffer by characters, but byte-fallback tokens can
        # outnumber them (one per UTF-8 byte): size it by bytes.
        data = text.encode("utf-8")
        if not data:
            return []
        buffer = (ctypes.c_int * len(data))()
        count = self._llm.ctransformers_llm_tokenize(data, False, buffer)
        return list(buffer[:count])

    def detokenize(self, tokens: list[int]) -> bytes:
        return bytes(self._llm.detokenize(tokens, decode=False))

    def is_end(self, token: int) -> bool:
        return bool(self._llm.is_eos_token(token))

    def keep(self, tokens: list[int]) -> None:
        # In memory only (ctransformers cannot save a state): generate() reuses the tokens
        # its prompt starts with, as it does a previous prompt's.
        self._llm.eval(tokens, batch_size=self._batch_size, threads=self._threads)

    def generate(self, tokens: list[int], sampling: Sampling) -> Generator[int, Any, None]:
        greedy = sampling.temperature == 0  # ctransformers divides by the temperature
        generator: Generator[int, Any, None] = self._llm.generate(
            tokens,
            top_k=1 if greedy else sampling.top_k,
            top_p=sampling.top_p,
            temperature=1.0 if greedy else sampling.temperature,
            repetition_penalty=sampling.repeat_penalty,
            seed=sampling.seed,
            batch_size=self._batch_size,
            threads=self._threads,
            reset=True,
        )
        return generator
