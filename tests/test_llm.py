"""The LLM layer: backend detection, model resolution, the shared generation loop, and both
real backends (SmolLM2 through llama.cpp; a generated GGML model through ctransformers)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from docqa.config import LLMSettings
from docqa.errors import ModelError
from docqa.llm.engine import LocalLLM
from docqa.llm.gguf import gguf_context_length
from docqa.llm.models import demo_model_path, detect_backend, load_llm, resolve_model_path
from tests.conftest import REPO


class ScriptedEngine:
    """Tokens are bytes; generate() replays a script of byte strings, one per token."""

    context_length = 64
    chat_template = None
    bos_text = "<s>"
    eos_text = "</s>"
    adds_bos = True
    END = -1

    def __init__(self, script: list[bytes | int]) -> None:
        self.script = script
        self.vocab: dict[int, bytes] = {}

    def tokenize(self, text: str) -> list[int]:
        return [0, *text.encode()]

    def detokenize(self, tokens: list[int]) -> bytes:
        return b"".join(self.vocab[t] for t in tokens)

    def is_end(self, token: int) -> bool:
        return token == self.END

    def generate(self, tokens: list[int]) -> Iterator[int]:
        for index, piece in enumerate(self.script):
            if isinstance(piece, int):
                yield piece
            else:
                self.vocab[1000 + index] = piece
                yield 1000 + index


def scripted(script: list[bytes | int], **settings: object) -> LocalLLM:
    engine = ScriptedEngine(script)
    return LocalLLM(engine, Path("fake.bin"), "ctransformers", LLMSettings(**settings))  # type: ignore[arg-type]


def test_generation_stops_at_the_end_token_and_counts() -> None:
    streamed: list[str] = []
    completion = scripted([b" The", b" answer", b".", -1, b" junk"]).complete(
        "prompt", on_text=streamed.append
    )
    assert completion.text == "The answer."
    assert "".join(streamed) == "The answer."
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 3)
    assert completion.finish_reason == "stop"
    assert completion.first_token_s is not None
    assert completion.seconds >= completion.first_token_s


def test_stop_strings_split_across_tokens_never_reach_the_stream() -> None:
    streamed: list[str] = []
    completion = scripted([b"Yes", b" [IN", b"ST] more"]).complete("p", on_text=streamed.append)
    assert completion.text == "Yes"  # Llama-2-Chat's format stops at "[INST]"
    assert "".join(streamed) == "Yes"
    assert completion.finish_reason == "stop"


def test_utf8_split_across_tokens_is_decoded_whole() -> None:
    pound = "£".encode()
    completion = scripted([b"costs ", pound[:1], pound[1:], b"5", -1]).complete("p")
    assert completion.text == "costs £5"


def test_max_new_tokens_and_the_context_bound_generation() -> None:
    completion = scripted([b"a"] * 100, max_new_tokens=5).complete("p")
    assert (completion.text, completion.completion_tokens) == ("aaaaa", 5)
    assert completion.finish_reason == "length"
    room = ScriptedEngine.context_length - len("p" * 60) - 1
    assert scripted([b"a"] * 100).complete("p" * 60).completion_tokens == room


def test_a_prompt_longer_than_the_context_is_refused() -> None:
    with pytest.raises(Exception, match="more than the model's context of 64"):
        scripted([]).complete("p" * 80)


def test_backend_is_chosen_by_magic_bytes_not_name(tmp_path: Path, tiny_ggml: Path) -> None:
    assert detect_backend(demo_model_path()) == "llamacpp"  # type: ignore[arg-type]
    disguised = tmp_path / "model.gguf"
    disguised.write_bytes(tiny_ggml.read_bytes())
    assert detect_backend(disguised) == "ctransformers"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"PK\x03\x04zip")
    with pytest.raises(ModelError, match="not a GGUF or GGML model file"):
        detect_backend(junk)


def test_gguf_header_gives_the_trained_context_length() -> None:
    assert gguf_context_length(demo_model_path()) == 8192  # type: ignore[arg-type]


def test_missing_model_falls_back_to_the_demo_only_when_configured(tmp_path: Path) -> None:
    missing = tmp_path / "llama-2-7b-chat.ggmlv3.q8_0.bin"
    path, notice = resolve_model_path(missing, explicit=False)
    assert path == demo_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert notice
    assert str(missing) in notice
    assert "Llama-2-7B-Chat" in notice
    with pytest.raises(ModelError, match="not found: check the --model path"):
        resolve_model_path(missing, explicit=True)
    real = tmp_path / "present.gguf"
    real.write_bytes(b"GGUF")
    assert resolve_model_path(real, explicit=False) == (real, None)


@pytest.mark.slow
def test_smollm2_through_llama_cpp(tmp_path: Path) -> None:
    settings = LLMSettings(model=tmp_path / "missing.bin", temperature=0, max_new_tokens=24)
    llm, notice = load_llm(settings)
    assert notice
    assert llm.backend == "llamacpp"
    assert llm.context_length == 4096  # trained 8192, capped
    assert llm.chat_format.name == "gguf-chat-template"
    prompt = llm.chat_format.render("Answer briefly.", "What is the capital of France?")
    assert prompt.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>")
    completion = llm.complete(prompt)
    assert "Paris" in completion.text
    assert completion.prompt_tokens == llm.count_tokens(prompt)
    assert 0 < completion.completion_tokens <= 24
    assert "<|im_end|>" not in completion.text
    assert "<|im_start|>" not in completion.text


CTRANSFORMERS_PROBE = """
import json, sys
from pathlib import Path
from docqa.config import LLMSettings
from docqa.llm.models import load_llm

llm, notice = load_llm(LLMSettings(model=Path(sys.argv[1]), max_new_tokens=5), explicit=True)
text = "Prix: £750 millions, 漢字 ✓ — " * 20
completion = llm.complete(llm.chat_format.render("sys", text))
print(json.dumps({
    "backend": llm.backend, "format": llm.chat_format.name, "context": llm.context_length,
    "tokens": llm.count_tokens(text), "bytes": len(text.encode()),
    "generated": completion.completion_tokens, "finish": completion.finish_reason,
}))
"""


@pytest.mark.slow
def test_ctransformers_loads_a_ggml_model_and_generates(tiny_ggml: Path) -> None:
    # In a subprocess: a native abort in ctransformers must fail this test, not kill pytest.
    result = subprocess.run(
        [sys.executable, "-c", CTRANSFORMERS_PROBE, str(tiny_ggml)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "ctransformers"
    assert report["format"] == "llama-2-chat"
    assert report["context"] == 4096
    # Byte-fallback tokens outnumber characters here; all are kept (plus BOS).
    assert report["tokens"] == report["bytes"] + 1
    assert report["generated"] == 5
    assert report["finish"] == "length"
