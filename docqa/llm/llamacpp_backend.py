"""GGUF models through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from docqa.config import LLMSettings, Sampling
from docqa.errors import ModelError
from docqa.llm.engine import MAX_AUTO_CONTEXT, available_threads
from docqa.llm.header import model_shape


class LlamaCppEngine:
    def __init__(self, path: Path, settings: LLMSettings) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(
                f"llama-cpp-python is not installed ({exc}): run `make setup`"
            ) from exc
        self._lib = llama_cpp
        trained = model_shape(path).context_length
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

    def tokenize(self, text: str, *, special: bool, bos: bool) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special))

    def detokenize(self, tokens: list[int]) -> bytes:
        return bytes(self._llm.detokenize(tokens))

    def is_end(self, token: int) -> bool:
        # A control token (e.g. <|im_start|>) mid-answer means the model began a new turn.
        return bool(
            self._lib.llama_vocab_is_eog(self._vocab, token)
            or self._lib.llama_vocab_is_control(self._vocab, token)
        )

    def generate(self, tokens: list[int], sampling: Sampling) -> Generator[int, Any, None]:
        self._llm.set_seed(sampling.seed)
        return self._llm.generate(
            tokens,
            temp=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
        )
