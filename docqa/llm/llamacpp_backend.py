"""GGUF models through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

from docqa.config import LLMSettings, Sampling
from docqa.errors import ModelError
from docqa.llm.engine import MAX_AUTO_CONTEXT, available_threads
from docqa.llm.header import model_shape

log = logging.getLogger(__name__)


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
        self._path, self._batch_size, self._seed = path, settings.batch_size, settings.seed
        self._cache = settings.prompt_cache
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

    def keep(self, tokens: list[int]) -> None:
        """Read the tokens (or load the state an earlier run saved after reading them), so
        generate() reads only what follows them: llama-cpp-python reuses the longest prefix
        a prompt shares with what the context holds."""
        path = self._state_path(tokens)
        if path is not None and self._load_state(path, tokens):
            return
        self._llm.reset()
        self._llm.eval(tokens)
        if path is not None:
            self._save_state(path, tokens)

    def _state_path(self, tokens: list[int]) -> Path | None:
        """Where the state after `tokens` is kept: named by everything it depends on."""
        if self._cache is None:
            return None
        stat = self._path.stat()
        key = [str(self._path.resolve()), stat.st_size, stat.st_mtime_ns, self.context_length]
        key += [self._batch_size, self._lib.__version__, tokens]
        return self._cache / (hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32] + ".state")

    def _load_state(self, path: Path, tokens: list[int]) -> bool:
        import numpy as np
        from llama_cpp.llama import LlamaState

        try:
            with open(path, "rb") as file:
                header = json.loads(file.readline())
                state = file.read()
            if header.get("tokens") != tokens or header.get("bytes") != len(state):
                return False
            input_ids = np.zeros(self.context_length, dtype=np.intc)
            input_ids[: len(tokens)] = tokens
            self._llm.load_state(
                LlamaState(
                    input_ids=input_ids,
                    scores=np.zeros((len(tokens), self._llm.n_vocab()), dtype=np.single),
                    n_tokens=len(tokens),
                    llama_state=state,
                    llama_state_size=len(state),
                    seed=self._seed,
                )
            )
        except (OSError, ValueError, RuntimeError) as exc:  # absent, damaged or from elsewhere
            log.debug("prompt state %s not used: %s", path, exc)
            self._llm.reset()
            return False
        return True

    def _save_state(self, path: Path, tokens: list[int]) -> None:
        state = self._llm.save_state().llama_state
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as file:
                file.write(json.dumps({"tokens": tokens, "bytes": len(state)}).encode() + b"\n")
                file.write(state)
            os.replace(partial, path)
        except OSError as exc:  # a read-only or full disk: read the prefix again next time
            log.debug("prompt state not saved in %s: %s", path.parent, exc)
            partial.unlink(missing_ok=True)
