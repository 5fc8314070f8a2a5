"""The answer service, chat and the HTTP routes on the fake embedding and the scripted engine
(tests.fixtures.fakes): their logic in seconds. The real models run the same paths in the
slow tier (test_answering, test_streaming, test_chat, test_server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docqa.answer.conversation import Conversation
from docqa.answer.qa import QAService
from docqa.answer.results import (
    AnswerEvent,
    SourcesEvent,
    TimingsEvent,
    TokenEvent,
    final_answer,
)
from docqa.config import Settings
from docqa.server.app import create_app
from docqa.server.executors import InlineExecutor
from tests.fixtures.fakes import (
    ScriptedEngine,
    fake_embedder,
    first_sentence_of_passage_one,
    replying,
    scripted_llm,
)
from tests.fixtures.projects import FACTS, fake_settings

QUESTION, ANSWER, SOURCE, PAGE = FACTS[0]


def fake_service(project: Path, engine: ScriptedEngine | None = None) -> QAService:
    settings = fake_settings(project)
    service = QAService(settings, _embedder=fake_embedder(), _llm=scripted_llm(settings, engine))
    service.load()
    return service


@pytest.fixture
def settings(fake_project: Path) -> Settings:
    return fake_settings(fake_project)


def test_an_answer_is_read_from_the_retrieved_page_and_cited(fake_project: Path) -> None:
    engine = ScriptedEngine(replying(first_sentence_of_passage_one))
    answer = fake_service(fake_project, engine).ask(QUESTION)
    assert ANSWER in (answer.answer or "")
    assert "[1]" in (answer.answer or "")
    assert (answer.sources[0].source, answer.sources[0].page) == (SOURCE, PAGE)
    assert not answer.abstained
    (prompt,) = engine.prompts  # the prompt docqa rendered is the one the model read
    assert f"Question: {QUESTION}" in prompt
    assert answer.read
    assert answer.read[0] in prompt


def test_the_answer_streams_as_events_in_order(fake_project: Path) -> None:
    events = list(fake_service(fake_project).stream(QUESTION))
    kinds = [type(event) for event in events]
    assert kinds[0] is SourcesEvent
    assert kinds[-2:] == [AnswerEvent, TimingsEvent]
    tokens = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert ANSWER in tokens


def test_a_stream_closed_early_frees_the_model(fake_project: Path) -> None:
    service = fake_service(fake_project, ScriptedEngine(replying(lambda _: "word " * 200)))
    stream = service.stream(QUESTION)
    for event in stream:
        if isinstance(event, TokenEvent):
            break
    stream.close()
    assert not service.llm.lock.locked()


def test_an_answer_the_passages_do_not_support_is_not_given(fake_project: Path) -> None:
    invented = ScriptedEngine(replying(lambda _: "The guarantee is £99 million [1]."))
    answer = fake_service(fake_project, invented).ask(QUESTION)
    assert "£99 million" not in (answer.answer or "")
    assert answer.revision in {"quoted", "declined"}


def test_an_owner_no_document_mentions_is_declined_without_the_model(
    fake_project: Path,
) -> None:
    engine = ScriptedEngine(replying(first_sentence_of_passage_one))
    answer = fake_service(fake_project, engine).ask("What is Tesla's revenue?")
    assert answer.answer == "The documents do not mention Tesla."
    assert engine.prompts == []


def test_a_follow_up_is_searched_with_the_conversation(fake_project: Path) -> None:
    service = fake_service(fake_project)
    conversation = Conversation(service, service.llm.sampling, None, "keywords")
    first = final_answer(conversation.stream(FACTS[1][0]))
    assert FACTS[1][1] in (first.answer or "")
    follow_up = final_answer(conversation.stream("When does the first one leave?"))
    assert "ferry" in follow_up.query.lower()
    assert follow_up.sources[0].source == "travel/ferries.pdf"
    assert any("07:15" in source.text for source in follow_up.sources)


@pytest.fixture
def client(fake_project: Path) -> Iterator[TestClient]:
    service = fake_service(fake_project)
    executor = InlineExecutor(service.settings, service)
    try:
        app = create_app(service.settings, executor, api_key=None)
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:
            yield client
    finally:
        executor.close()


def test_the_api_answers_as_json_and_as_events(client: TestClient) -> None:
    reply = client.post("/v1/ask", json={"question": QUESTION})
    assert reply.status_code == 200
    assert ANSWER in reply.json()["answer"]
    streamed = client.post("/v1/ask?stream=true", json={"question": QUESTION})
    names = [line[7:] for line in streamed.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "sources"
    assert names[-2:] == ["answer", "timings"]


def test_the_api_answers_openai_chat_completions(client: TestClient) -> None:
    body = {"model": "docqa", "messages": [{"role": "user", "content": QUESTION}]}
    reply = client.post("/v1/chat/completions", json=body).json()
    assert ANSWER in reply["choices"][0]["message"]["content"]
    streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
    data = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    text = "".join(
        choice["delta"].get("content", "")
        for chunk in data[:-1]
        for choice in json.loads(chunk)["choices"]
    )
    assert ANSWER in text
    assert client.get("/v1/models").json()["data"][0]["id"] == "docqa"


def test_jobs_are_created_read_and_cancelled(client: TestClient) -> None:
    created = client.post("/v1/jobs", json={"question": QUESTION})
    assert created.status_code == 202
    job_id = created.json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}").json()["id"] == job_id
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert client.get("/v1/jobs/nonexistent").status_code == 404


def test_a_setting_out_of_range_is_named_as_the_api_names_it(client: TestClient) -> None:
    reply = client.post("/v1/ask", json={"question": QUESTION, "temperature": -1})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "temperature"
    info = client.get("/v1/info").json()
    assert info["limits"]["max_k"] == 20
    assert client.get("/healthz").json()["status"] == "ok"
