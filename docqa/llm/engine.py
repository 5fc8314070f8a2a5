"""The loaded model behind one small interface: an engine (a backend) tokenizes and yields
sampled token ids; the one generation loop here counts tokens, applies stop strings, streams
text and times it, so both backends behave and report alike."""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from docqa.config import LLMSettings, Sampling
from docqa.errors import UsageError
from docqa.llm.chat_formats import ChatFormat, choose_chat_format, split_prompt

Backend = Literal["ctransformers", "llamacpp"]
MAX_AUTO_CONTEXT = 4096  # Llama-2's trained length; larger windows cost memory, not answers


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

    def tokenize(self, text: str, *, special: bool, bos: bool) -> list[int]:
        """Token ids of the text; `special`: control-token texts become control tokens."""
        ...

    def detokenize(self, tokens: list[int]) -> bytes: ...
    def is_end(self, token: int) -> bool: ...
    def generate(self, tokens: list[int], sampling: Sampling) -> Generator[int, Any, None]: ...

    def keep(self, tokens: list[int]) -> None:
        """Read the tokens every prompt starts with, once: generate() then reads only the
        tokens that follow them."""
        ...


class LocalLLM:
    """A loaded model: count tokens, and complete prompts with streaming and timings.

    One generation runs at a time (`lock`): a model context holds one conversation's state.
    """

    def __init__(self, engine: Engine, path: Path, backend: Backend, settings: LLMSettings):
        self._engine = engine
        self.path = path
        self.backend = backend
        self.sampling = settings.sampling
        self.lock = threading.Lock()
        self.chat_format: ChatFormat = choose_chat_format(
            settings.prompt_format,
            engine.chat_template,
            # empty when the tokenizer adds BOS itself, so a template never sends it twice
            bos_text="" if engine.adds_bos else engine.bos_text,
            eos_text=engine.eos_text,
            model=path.name,
        )
        self._newline = engine.tokenize("\n", special=False, bos=False)

    @property
    def context_length(self) -> int:
        return self._engine.context_length

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """Token ids of a rendered prompt: only the chat format's own (trusted) pieces may
        hold control tokens; passages, questions and earlier turns stay plain text."""
        tokens: list[int] = []
        for text, special in split_prompt(prompt):
            if not tokens:
                tokens = self._engine.tokenize(text, special=special, bos=True)
                continue
            # Tokenized after a newline that is then dropped, so a piece gets no word-start
            # space of its own (SentencePiece adds one to the start of every text).
            piece = self._engine.tokenize("\n" + text, special=special, bos=False)
            if piece[: len(self._newline)] == self._newline:
                tokens += piece[len(self._newline) :]
            else:
                tokens += self._engine.tokenize(text, special=special, bos=False)
        return tokens

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenize_prompt(prompt))

    def keep_prefix(self, text: str) -> None:
        """Have the model read `text`, the start every prompt shares, ahead of the prompts."""
        with self.lock:
            self._engine.keep(self.tokenize_prompt(text))

    def complete(
        self,
        prompt: str,
        sampling: Sampling | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        """Generate until an end token, a stop string or the token limit; stream via on_text.

        An exception raised by on_text (the reader went away) ends the generation at once.
        """
        sampling = sampling or self.sampling
        with self.lock:
            return self._complete(prompt, sampling, on_text)

    def _complete(
        self, prompt: str, sampling: Sampling, on_text: Callable[[str], None] | None
    ) -> Completion:
        started = time.perf_counter()
        stop = sampling.stop + self.chat_format.stop
        tokens = self.tokenize_prompt(prompt)
        room = self.context_length - len(tokens)
        if room < 1:
            raise UsageError(
                f"the prompt is {len(tokens)} tokens, more than the model's context of "
                f"{self.context_length}: shorten the question or raise llm.context_length"
            )
        limit = min(sampling.max_new_tokens, room)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, shown, generated = "", 0, 0
        first_token_s: float | None = None
        finish: Literal["stop", "length"] = "length"
        stream = self._engine.generate(tokens, sampling)
        try:
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
        finally:
            stream.close()  # frees the backend's state even when the reader went away
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


def available_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
