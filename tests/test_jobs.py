"""Jobs without a server: the in-memory board readers follow, the OpenAI messages a chat
request becomes, the limits on requests, and how job errors map to HTTP statuses."""

from __future__ import annotations

import threading
import time

import pytest

from docqa.answer.conversation import Conversation
from docqa.answer.qa import QAService
from docqa.config import Settings
from docqa.errors import IndexBusyError, UsageError, VectorStoreError
from docqa.jobs.board import END, JobRecord, MemoryBoard
from docqa.jobs.runner import JobFailed, error_info
from docqa.server.errors import ApiError
from docqa.server.schemas import AskBody, ChatBody, ask_request, chat_request

SETTINGS = Settings()
DEFAULTS, LIMITS = SETTINGS.llm.sampling, SETTINGS.server


def test_a_reader_gets_events_as_they_are_published_and_reads_on_from_its_cursor() -> None:
    board = MemoryBoard(ttl_s=60)
    board.create(JobRecord(id="j", kind="answer", created_at=time.time()))
    assert board.read("j", "0", timeout=0.05) == ("0", [])

    def publish() -> None:
        time.sleep(0.1)
        board.publish("j", {"event": "token", "text": "a"})

    threading.Thread(target=publish).start()
    started = time.monotonic()
    cursor, events = board.read("j", "0", timeout=5)
    assert events == [{"event": "token", "text": "a"}]
    assert time.monotonic() - started < 2, "woken by the event, not the timeout"
    board.publish("j", {"event": END, "status": "done"})
    assert board.read("j", cursor, timeout=0) == ("2", [{"event": END, "status": "done"}])


def test_finished_jobs_are_forgotten_after_their_time() -> None:
    board = MemoryBoard(ttl_s=10)
    old = time.time() - 60
    board.create(JobRecord(id="old", kind="answer", status="done", created_at=old, finished_at=old))
    board.create(JobRecord(id="queued", kind="answer", created_at=old))
    board.create(JobRecord(id="new", kind="answer", created_at=time.time()))
    assert board.get("old") is None
    assert board.get("queued") is not None  # unfinished jobs are kept


def test_chat_messages_become_the_question_and_the_turns_before_it() -> None:
    body = ChatBody.model_validate(
        {
            "model": "gpt-4o",
            "user": "someone",  # an OpenAI field docqa does not use: ignored
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Who buys the juice?"},
                {"role": "assistant", "content": "Brightwater Foods [1]."},
                {"role": "user", "content": [{"type": "text", "text": "Over how many years?"}]},
            ],
            "max_completion_tokens": 40,
            "stop": "\n",
            "temperature": 0,
        }
    )
    request = chat_request(body, SETTINGS.chat_sampling, LIMITS)
    assert request.question == "Over how many years?"
    assert request.history == [("Who buys the juice?", "Brightwater Foods [1].")]
    assert request.conversation
    assert request.sampling["max_new_tokens"] == 40
    assert request.sampling["stop"] == ("\n",)
    assert request.sampling["temperature"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "x" * 20000}]},
        {"messages": [{"role": "user", "content": "hi"}], "n": 3},
        {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]},
        {"messages": [{"role": "user", "content": "hi"}], "k": 500},
        {"messages": [{"role": "user", "content": "hi"}], "top_p": 0},
    ],
)
def test_chat_requests_beyond_the_limits_are_refused(body: dict) -> None:
    with pytest.raises(ApiError) as refused:
        chat_request(ChatBody.model_validate(body), SETTINGS.chat_sampling, LIMITS)
    assert refused.value.status == 400


def test_ask_request_defaults_and_overrides() -> None:
    request = ask_request(AskBody(question="What?", k=3, seed=7), DEFAULTS, LIMITS)
    assert (request.k, request.sampling["seed"]) == (3, 7)
    assert request.sampling["stop"] == DEFAULTS.stop
    with pytest.raises(ApiError, match="repeat_penalty"):
        ask_request(AskBody(question="What?", repeat_penalty=0.5), DEFAULTS, LIMITS)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UsageError("the question is empty"), 400),
        (VectorStoreError("no index: run ingest"), 503),
        (IndexBusyError("another ingest"), 409),
        (JobFailed("too slow", "timeout"), 504),
        (JobFailed("cancelled", "cancelled", status="cancelled"), 409),
        (RuntimeError("bug"), 500),
    ],
)
def test_job_errors_map_to_http_statuses(error: Exception, status: int) -> None:
    response = ApiError.of_job(error_info(error))
    assert response.status == status
    assert response.body()["error"]["message"]


def test_a_resumed_conversation_makes_its_follow_ups_stand_alone() -> None:
    turns = [
        ("How much is the minimum guarantee payable by adidas?", "£750 million [1]."),
        ("Over how many years?", "Ten years [1]."),
    ]
    conversation = Conversation.resume(QAService(SETTINGS), DEFAULTS, turns)
    assert [turn.question for turn in conversation.history] == [q for q, _ in turns]
    assert "adidas" in conversation.history[1].query
    assert "adidas" in conversation.standalone("And when did it begin?")
    off = Conversation.resume(QAService(SETTINGS), DEFAULTS, turns, rewrite="off")
    assert off.history[1].query == "Over how many years?"
