"""The QA service's context: what the model reads is what is fitted and what answers are
checked against; earlier turns make room when the context is full; nothing that fits, no
LLM call."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from docqa.answer.chain import ChainResult
from docqa.answer.context import Context
from docqa.answer.evidence import Evidence
from docqa.answer.prompts import Passage, qa_prompt
from docqa.answer.qa import QAService
from docqa.answer.results import Timings, Turn
from docqa.config import load_settings
from docqa.errors import UsageError
from docqa.llm.engine import Completion
from tests.fixtures.projects import FACTS

pytestmark = pytest.mark.slow

QUESTION = FACTS[0][0]  # the Brightwater Foods guarantee, page 3 of orchard.pdf


def service_for(project: Path, **llm: object) -> QAService:
    overrides = {"paths": {"vectorstore": project / "vectorstore"}, "llm": llm}
    service = QAService(load_settings(None, overrides, environ={}))
    service.load()
    return service


def room_for(service: QAService, extra: int, history: tuple[Turn, ...] = ()) -> int:
    """max_new_tokens that leaves the prompt `extra` tokens beyond the question alone."""
    llm = service.llm
    alone = llm.count_tokens(qa_prompt(llm.chat_format, history).fill([], QUESTION))
    return llm.context_length - alone - extra


def test_fitting_measures_what_the_model_reads_not_whole_chunks(project: Path) -> None:
    service = service_for(project)
    whole = service_for(project)
    whole.settings = whole.settings.model_copy(
        update={"answer": whole.settings.answer.model_copy(update={"reads": "passages"})}
    )
    evidence = service.prepare(QUESTION)
    passages = whole.prepare(QUESTION)
    read = sum(service.llm.count_tokens(p["text"]) for p in evidence.reading)
    full = sum(whole.llm.count_tokens(p["text"]) for p in passages.reading)
    assert read < full
    # Room for the evidence but not for the whole chunks: nothing is dropped.
    sampling = service.llm.sampling.override(max_new_tokens=room_for(service, read + 30))
    fitted = service.prepare(QUESTION, sampling=sampling)
    assert fitted.dropped == 0
    assert [p["text"] for p in fitted.reading] == [p["text"] for p in evidence.reading]
    assert whole.prepare(QUESTION, sampling=sampling).dropped > 0


def test_when_no_passage_fits_the_llm_is_not_called(project: Path) -> None:
    service = service_for(project)
    cramped = service.llm.sampling.override(max_new_tokens=room_for(service, 2))
    with pytest.raises(UsageError, match="none of the retrieved passages fits"):
        service.prepare(QUESTION, sampling=cramped)
    events = list(service.stream(QUESTION, sampling=cramped))
    assert [event.kind for event in events] == ["error"]
    assert not service.llm.lock.locked()


def test_the_oldest_turns_make_room_first(project: Path) -> None:
    service = service_for(project)
    turns = tuple(Turn(f"Question number {i} about apples?", "Apples " * 40) for i in range(6))
    fitted_all = service.prepare(QUESTION, history=turns)
    assert fitted_all.history_dropped == 0
    budget = room_for(service, 120, turns[-2:])  # room for about two turns and the passages
    squeezed = service.prepare(
        QUESTION, history=turns, sampling=service.llm.sampling.override(max_new_tokens=budget)
    )
    assert 0 < squeezed.history_dropped < len(turns)
    assert "Question number 5" in squeezed.prompt  # the latest turn stays
    assert "Question number 0" not in squeezed.prompt
    assert squeezed.dropped == 0, "turns go before passages"


def test_answers_are_checked_against_what_the_model_read(project: Path) -> None:
    service = service_for(project)
    context = service.prepare(QUESTION)
    assert "£18 million" in context.sources[0].text  # the chunk states the figure...
    timings = Timings(0.0, 0.0, 0.0, 0.0)
    completion = Completion("x", 1, 1, 0.0, 0.0, "stop")
    answer = "The minimum guarantee payable by Brightwater Foods is £18 million."
    stated = [
        {"n": 1, "text": "The minimum guarantee payable by Brightwater Foods is £18 million."}
    ]
    unstated = [{"n": 1, "text": "The cooperative sells its juice to Brightwater Foods."}]
    result = ChainResult(answer, completion)
    kept = service._answer(replace(context, reading=stated), timings, result)
    assert kept.answer == (  # the library holds two documents: the answer says which it used
        "The minimum guarantee payable by Brightwater Foods is £18 million [1]. "
        "(From docqa test document.)"
    )
    assert kept.revision == "cited"
    # ...but when what the model read did not state it, the answer is not taken as supported.
    read_unstated = replace(context, reading=unstated)
    checked = service._answer(read_unstated, timings, result)
    assert checked.revision in {"quoted", "declined"}
    assert checked.answer != kept.answer


BROADCASTING = (
    "Broadcasting revenue was £214.9 million, £254.8 million and £140.2 million for the years "
    "ended 30 June 2022, 2021 and 2020, respectively."
)
READ: list[Passage] = [
    {"n": 1, "text": BROADCASTING},
    {"n": 2, "text": "Broadcasting revenue comes from the Premier League and UEFA."},
]


HOW_MUCH = "What was Broadcasting revenue in fiscal 2021?"
WHENCE = "Where does Broadcasting revenue in fiscal 2021 come from?"


@pytest.mark.parametrize(
    ("profile", "question", "answer", "revision"),
    [
        ("evidence", HOW_MUCH, "Broadcasting revenue was £254.8 million.", "cited"),
        ("evidence", HOW_MUCH, "Broadcasting revenue was £214.9 million.", "quoted"),  # 2022's
        ("passages", HOW_MUCH, "Broadcasting revenue was £214.9 million.", "quoted"),
        (
            "evidence",
            WHENCE,
            "It comes from the Premier League [2].",
            "quoted",
        ),  # not what [1] says
        ("passages", WHENCE, "It comes from the Premier League [2].", None),  # kept as it came
        ("passages", HOW_MUCH, "It comes from the Premier League [2].", "quoted"),  # no figure
    ],
)
def test_an_answer_that_contradicts_the_best_evidence_is_replaced_by_it(
    profile: str, question: str, answer: str, revision: str | None
) -> None:
    service = QAService(load_settings(None, {"answer": {"profile": profile}}, environ={}))
    evidence = [Evidence(1, 0, BROADCASTING, 1.5), Evidence(2, 0, READ[1]["text"], 1.0)]
    context = Context(question, question, [], READ, evidence, "")
    completion = Completion("x", 1, 1, 0.0, 0.0, "stop")
    checked = service._answer(context, Timings(0.0, 0.0, 0.0, 0.0), ChainResult(answer, completion))
    assert checked.revision == revision
    if revision == "quoted":
        # Both sentences the model read (evidence_sentences), the best first.
        assert checked.answer == (
            f'The documents say: "{BROADCASTING}" [1] "{READ[1]["text"]}" [2]'
        )
