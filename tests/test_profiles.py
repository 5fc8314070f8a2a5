"""Reader profiles: chosen from the model file's header (parameters, context length), each
setting given explicitly winning, and reported with every answer."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from docqa.answer.profiles import ReaderProfile, choose_profile, profile_for
from docqa.answer.qa import QAService
from docqa.config import Settings, load_settings
from docqa.llm.header import ModelShape, model_shape
from docqa.llm.models import demo_model_path
from tests.fixtures.ggml import LlamaShape, write_ggjt_llama, write_gguf_llama
from tests.fixtures.projects import FACTS

SEVEN_B = ModelShape(parameters=6_738_415_616, context_length=4096)


def settings(**sections: dict[str, object]) -> Settings:
    return load_settings(None, sections, environ={})


@pytest.mark.parametrize("writer", [write_ggjt_llama, write_gguf_llama])
def test_parameters_are_counted_from_either_header(
    writer: Callable[[Path, LlamaShape], Path], tmp_path: Path
) -> None:
    shape = LlamaShape(n_vocab=300, n_embd=96, n_layer=3)
    path = writer(tmp_path / "model", shape)
    found = model_shape(path)
    assert found.parameters == sum(math.prod(size) for _, _, size in shape.tensors())
    assert found.context_length == (4096 if writer is write_gguf_llama else None)


def test_the_demo_model_reads_evidence() -> None:
    demo = demo_model_path()
    assert demo is not None
    assert model_shape(demo) == ModelShape(134_515_008, 8192)
    profile = profile_for(settings())
    assert profile == ReaderProfile("evidence", "evidence", 4, None, must_match_best=True)


def test_a_7b_model_reads_passages_unless_its_context_is_short() -> None:
    profile = choose_profile(settings(), SEVEN_B)
    assert profile == ReaderProfile("passages", "passages", 3, 1024, must_match_best=False)
    short = settings(llm={"context_length": 1024})
    assert choose_profile(short, SEVEN_B).name == "evidence"
    assert choose_profile(settings(), None).name == "evidence"  # no model to read


def test_explicit_settings_win_over_the_profile() -> None:
    chosen = settings(retrieval={"k": 5}, answer={"reads": "evidence", "context_tokens": 300})
    profile = choose_profile(chosen, SEVEN_B)
    assert profile == ReaderProfile("passages", "evidence", 5, 300, must_match_best=False)
    forced = settings(answer={"profile": "passages"})
    assert profile_for(forced).name == "passages"


@pytest.mark.slow
def test_the_passages_profile_reads_whole_chunks_within_its_budget(project: Path) -> None:
    question = FACTS[0][0]
    overrides = {
        "paths": {"vectorstore": project / "vectorstore"},
        "answer": {"profile": "passages", "context_tokens": 200},
    }
    service = QAService(load_settings(None, overrides, environ={}))
    context = service.prepare(question)
    chunks = {source.n: source.text for source in context.sources}
    assert context.reading, "at least one whole chunk fits"
    assert all(passage["text"] == chunks[passage["n"]] for passage in context.reading)
    read = sum(service.llm.count_tokens(passage["text"]) for passage in context.reading)
    assert read <= 200
    answer = service.ask(question)
    assert answer.profile == "passages"
    assert answer.read
