"""`docqa serve` in its default (inline) mode, as clients meet it: the official openai client,
plain and streamed; /v1/ask as JSON and server-sent events; jobs; uploads while questions
keep being answered; limits, bad requests and tokens; a bounded load test."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import FACTS, ingested_project, run_cli
from tests.fixtures.services import (
    free_port,
    load,
    long_question,
    openai_client,
    serving,
    start_docqa,
    streamed_chunks,
    wait_for_job,
)

pytestmark = pytest.mark.slow

QUESTION, ANSWER, SOURCE, PAGE = FACTS[0]
NEW_FACT = "The Zephyr orchard grows 412 pear trees on the north slope."
NEW_QUESTION = "How many pear trees does the Zephyr orchard grow?"


@pytest.fixture(scope="module")
def served_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    ingested_project(folder)
    return folder


@pytest.fixture(scope="module")
def server(served_project: Path) -> Iterator[str]:
    with serving(served_project) as (url, _):
        yield url


def test_openai_client_gets_a_cited_answer(server: str) -> None:
    client = openai_client(server)
    assert [model.id for model in client.models.list()] == ["docqa"]
    reply = client.chat.completions.create(
        model="docqa", messages=[{"role": "user", "content": QUESTION}], temperature=0
    )
    assert ANSWER in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    assert reply.model_extra is not None
    extra = reply.model_extra["docqa"]
    assert (extra["sources"][0]["source"], extra["sources"][0]["page"]) == (SOURCE, PAGE)
    assert extra["answer"] == reply.choices[0].message.content


def test_openai_client_streams_tokens_and_ends_with_the_grounded_answer(server: str) -> None:
    chunks = streamed_chunks(server, QUESTION, stream_options={"include_usage": True})
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) > 3, "token by token, not the answer at once"
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finished) == 1
    extra = finished[0].model_extra["docqa"]
    streamed = "".join(deltas)
    assert streamed.startswith(extra["raw_answer"])
    if extra["answer"].startswith(extra["raw_answer"]):  # citations added: streamed too
        assert streamed == extra["answer"]
    assert ANSWER in extra["answer"]
    assert extra["sources"][0]["page"] == PAGE
    assert chunks[-1].usage is not None
    assert (
        chunks[-1].usage.completion_tokens == len(deltas) or chunks[-1].usage.completion_tokens > 0
    )


def test_a_declined_question_streams_the_decline(server: str) -> None:
    chunks = streamed_chunks(server, "What is the airspeed velocity of an unladen swallow?")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The documents do not say."
    assert chunks[-1].model_extra["docqa"]["abstained"]


def test_a_follow_up_is_answered_from_the_conversation(server: str) -> None:
    reply = httpx.post(
        f"{server}/v1/chat/completions",
        json={
            "model": "docqa",
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": "Who buys the cooperative's juice?"},
                {"role": "assistant", "content": "Brightwater Foods buys it [1]."},
                {"role": "user", "content": "Over how many years is their minimum guarantee?"},
            ],
        },
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    sources = reply.json()["docqa"]["sources"]
    assert (sources[0]["source"], sources[0]["page"]) == (SOURCE, PAGE)


def test_ask_returns_what_main_py_json_prints(server: str, served_project: Path) -> None:
    body = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=120).json()
    cli = json.loads(run_cli("main.py", QUESTION, "--json", cwd=served_project).stdout)
    assert body.keys() == cli.keys()
    assert body["answer"] == cli["answer"]
    # The same sources, each PDF's also with the URL of its page as an image (the API's own).
    assert [{k: v for k, v in s.items() if k != "view"} for s in body["sources"]] == cli["sources"]
    assert all(s["view"].startswith("/v1/documents/") for s in body["sources"])


def test_ask_streams_server_sent_events_in_order(server: str) -> None:
    events = []
    with httpx.stream(
        "POST",
        f"{server}/v1/ask",
        params={"stream": "true"},
        json={"question": QUESTION},
        timeout=120,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    kinds = [name for name, _ in events]
    assert kinds[0] == "sources"
    assert kinds[-2:] == ["answer", "timings"]
    assert set(kinds[1:-2]) == {"token"}
    assert all(name == event["event"] for name, event in events)


def test_a_job_is_queued_answered_and_kept(server: str) -> None:
    created = httpx.post(f"{server}/v1/jobs", json={"question": QUESTION})
    assert created.status_code == 202
    job_id = created.json()["job_id"]
    record = wait_for_job(server, job_id)
    assert record["status"] == "done"
    assert ANSWER in record["result"]["answer"]
    assert httpx.get(f"{server}/v1/jobs/{'0' * 24}").status_code == 404


def test_a_running_job_is_cancelled_and_frees_the_model(server: str) -> None:
    job_id = httpx.post(f"{server}/v1/jobs", json=long_question()).json()["job_id"]
    wait_for_job(server, job_id, until=("running",))
    cancelled = httpx.delete(f"{server}/v1/jobs/{job_id}").json()
    record = wait_for_job(server, job_id)
    assert record["status"] == "cancelled", (cancelled, record)
    assert record["error"]["type"] == "cancelled"
    # The model is free at once for the next question.
    started = time.monotonic()
    assert httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=120).is_success
    assert time.monotonic() - started < 30


def test_a_client_that_goes_away_cancels_its_answer(server: str) -> None:
    body = {"messages": [{"role": "user", "content": long_question()["question"]}], "stream": True}
    body |= {k: v for k, v in long_question().items() if k != "question"}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=60) as reply:
        first = json.loads(next(reply.iter_lines()).removeprefix("data: "))
    job_id = first["id"].removeprefix("chatcmpl-")
    record = wait_for_job(server, job_id)
    assert record["status"] == "cancelled", record


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({"content": b"{not json"}, 400),
        ({"json": {"question": "x", "unknown": 1}}, 400),
        ({"json": {"question": 5}}, 400),
        ({"json": {"question": ["a"]}}, 400),
        ({"json": {}}, 400),
        ({"json": []}, 400),
        ({"json": {"question": "   "}}, 400),
        ({"json": {"question": "x" * 5000}}, 400),
        ({"content": b'{"question": "revenue \\ud800?"}'}, 400),  # a lone surrogate
        ({"json": {"question": "x", "k": 0}}, 400),
        ({"json": {"question": "x", "k": 1000}}, 400),
        ({"json": {"question": "x", "max_tokens": 10**6}}, 400),
        ({"json": {"question": "x", "temperature": "hot"}}, 400),
        ({"json": {"question": "x", "temperature": 99}}, 400),
        ({"json": {"question": "x", "stop": ["a"] * 10}}, 400),
        ({"content": b'{"question": "' + b"x" * 400_000 + b'"}'}, 413),
    ],
)
def test_bad_asks_get_a_4xx_with_a_json_error(server: str, request_args: dict, status: int) -> None:
    response = httpx.post(
        f"{server}/v1/ask", headers={"content-type": "application/json"}, **request_args
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"messages": []}, 400),
        ({"messages": [{"role": "user"}]}, 400),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "x"},
                ]
            },
            400,
        ),
        ({"messages": [{"role": "user", "content": "hi"}] * 100}, 400),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}, 400),
        ({"messages": [{"role": "user", "content": 7}]}, 400),
    ],
)
def test_bad_chat_requests_get_a_4xx(server: str, body: dict, status: int) -> None:
    response = httpx.post(f"{server}/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_unknown_routes_and_methods_answer_json(server: str) -> None:
    assert httpx.get(f"{server}/v1/nothing").json()["error"]["type"] == "not_found_error"
    assert httpx.put(f"{server}/v1/ask").status_code == 405


def test_upload_is_answered_from_while_the_old_index_keeps_answering(
    server: str, served_project: Path, tmp_path: Path
) -> None:
    filler = [f"Ferry log {n}: the crossing was calm and on time." for n in range(60)]
    pdf = write_pdf(tmp_path / "zephyr.pdf", ["Zephyr Orchard\n" + NEW_FACT, *filler])
    with open(pdf, "rb") as upload:
        response = httpx.post(
            f"{server}/v1/documents",
            files={"file": ("Zephyr report (final).pdf", upload, "application/pdf")},
        )
    assert response.status_code == 202, response.text
    document_id, job_id = response.json()["id"], response.json()["job_id"]
    # Kept by content, under the data folder, whatever the client called it.
    stored = served_project / "data" / "uploads" / f"{document_id}.pdf"
    assert stored.read_bytes() == pdf.read_bytes()
    answered_during_ingest = 0
    while httpx.get(f"{server}/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
        reply = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=120)
        assert reply.status_code == 200
        assert reply.json()["sources"][0]["source"] == SOURCE
        answered_during_ingest += 1
    record = wait_for_job(server, job_id)
    assert record["status"] == "done", record
    assert record["result"]["added"] == [f"uploads/{document_id}.pdf"], record
    listed = httpx.get(f"{server}/v1/documents").json()["data"]
    assert document_id in {document["id"] for document in listed}
    assert all(document["document"]["label"] for document in listed)
    # The new index is picked up without a restart.
    reply = httpx.post(f"{server}/v1/ask", json={"question": NEW_QUESTION}, timeout=120).json()
    assert (reply["sources"][0]["source"], reply["sources"][0]["page"]) == (
        f"uploads/{document_id}.pdf",
        1,
    )
    assert reply["sources"][0]["document"]["title"] == "docqa test document"
    # Deleted: gone from the data folder and, after its ingest, from the index.
    deleted = httpx.delete(f"{server}/v1/documents/{document_id}").json()
    assert deleted["deleted"] == [f"uploads/{document_id}.pdf"]
    wait_for_job(server, deleted["job_id"])
    assert not stored.exists()
    listed = httpx.get(f"{server}/v1/documents").json()["data"]
    assert document_id not in {document["id"] for document in listed}
    print(f"questions answered from the old index during the ingest: {answered_during_ingest}")


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("notes.pdf", b"#!/bin/sh\nrm -rf /\n", 415),
        ("empty.pdf", b"", 415),
        ("cut.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", 415),
        ("../../config.pdf", b"%PDF-1.7\n", 400),
        ("..\\x.pdf", b"%PDF-1.7\n", 400),
        ("/etc/passwd", b"%PDF-1.7\n", 400),
    ],
)
def test_bad_uploads_are_refused(
    server: str, served_project: Path, name: str, content: bytes, status: int
) -> None:
    before = sorted((served_project / "data").rglob("*"))
    response = httpx.post(f"{server}/v1/documents", files={"file": (name, content)})
    assert response.status_code == status, response.text
    assert sorted((served_project / "data").rglob("*")) == before


def test_documents_are_only_deleted_by_their_content_id(server: str) -> None:
    for document_id in ("../../config.yml", "a" * 64, "..%2F..%2Fconfig.yml"):
        assert httpx.delete(f"{server}/v1/documents/{document_id}").status_code == 404


def test_health_and_metrics(server: str) -> None:
    health = httpx.get(f"{server}/healthz")
    assert health.status_code == 200
    assert health.json()["index"]["loaded"]
    assert health.json()["model"]["loaded"]
    httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=120)
    text = httpx.get(f"{server}/metrics").text
    assert 'docqa_http_requests_total{method="POST",route="/v1/ask",status="200"}' in text
    assert "docqa_time_to_first_token_seconds_count" in text
    assert "docqa_queue_waiting" in text
    assert "docqa_generation_tokens_per_second_count" in text


def test_a_full_queue_answers_429_and_none_is_lost(served_project: Path) -> None:
    """50 concurrent clients against a queue of 2: each request is answered or refused with
    429 and Retry-After; none fails, none is lost."""
    env = {"DOCQA_SERVER__MAX_QUEUE": "2"}
    with serving(served_project, env=env) as (url, _):
        outcomes = asyncio.run(load(url, QUESTION, clients=50, requests_each=2, max_tokens=16))
    counts = Counter(status for status, _ in outcomes)
    assert len(outcomes) == 100
    assert set(counts) <= {200, 429}, counts
    assert counts[200] >= 3
    assert counts[429] > 0
    assert all(retry_after and int(retry_after) >= 1 for s, retry_after in outcomes if s == 429)


def test_a_question_over_the_time_limit_is_stopped(served_project: Path) -> None:
    env = {"DOCQA_SERVER__REQUEST_TIMEOUT_S": "0.3"}
    with serving(served_project, env=env) as (url, _):
        slow = httpx.post(f"{url}/v1/ask", json=long_question(), timeout=120)
        assert slow.status_code == 504, slow.text
        assert "limit" in slow.json()["error"]["message"]


def test_an_api_key_is_required_when_set(served_project: Path) -> None:
    with serving(served_project, env={"DOCQA_API_KEY": "s3cret"}, ready=False) as (url, _):
        assert httpx.get(f"{url}/v1/models").status_code == 401
        wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "authentication_error"
        right = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        odd = httpx.get(
            f"{url}/v1/models", headers={b"Authorization": "Bearer s\u00e9cret".encode()}
        )
        assert odd.status_code == 401
        # Refused before its body is read: no upload is spooled for a stranger.
        upload = httpx.post(f"{url}/v1/documents", files={"file": ("a.pdf", b"%PDF-" * 10**6)})
        assert upload.status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200  # for load balancers


def test_web_pages_of_other_origins_and_other_host_names_are_refused(server: str) -> None:
    question = {"question": QUESTION}
    forged = httpx.post(f"{server}/v1/ask", json=question, headers={"Origin": "https://evil.test"})
    assert forged.status_code == 403
    rebound = httpx.post(f"{server}/v1/ask", json=question, headers={"Host": "evil.test:8000"})
    assert rebound.status_code == 421
    same = httpx.get(f"{server}/v1/models", headers={"Origin": server})
    assert same.status_code == 200
    assert httpx.get(f"{server}/openapi.json").status_code == 404


def test_cancelling_a_queued_job_ends_its_readers(served_project: Path) -> None:
    env = {"DOCQA_SERVER__MAX_QUEUE": "4"}
    with serving(served_project, env=env) as (url, _):
        running = httpx.post(f"{url}/v1/jobs", json=long_question()).json()["job_id"]
        waiting = httpx.post(f"{url}/v1/jobs", json={"question": QUESTION}).json()["job_id"]
        assert httpx.delete(f"{url}/v1/jobs/{waiting}").json()["status"] == "cancelled"
        httpx.delete(f"{url}/v1/jobs/{running}")
        assert wait_for_job(url, running)["status"] in ("cancelled", "done")
        assert wait_for_job(url, waiting)["status"] == "cancelled"


def test_serving_beyond_loopback_needs_a_strong_api_key(served_project: Path) -> None:
    server = start_docqa(served_project, "serve", "--host", "0.0.0.0", log_name="open")
    assert server.process.wait(timeout=60) == 2
    output = server.output()
    assert "DOCQA_API_KEY" in output
    assert "Traceback" not in output
    weak = start_docqa(
        served_project,
        *("serve", "--host", "0.0.0.0", "--port", str(free_port())),
        log_name="weak",
        env={"DOCQA_API_KEY": "x"},
    )
    try:
        assert weak.process.wait(timeout=60) == 7  # a configuration error
    finally:
        weak.stop()
    assert weak.output().splitlines() == [
        "error: refusing to serve on 0.0.0.0 with a weak DOCQA_API_KEY: it has 1 of the 32 "
        'characters needed; make one with python -c "import secrets; '
        'print(secrets.token_urlsafe(32))"'
    ]


def test_no_index_yet_is_a_clear_503_until_an_upload(tmp_path: Path) -> None:
    project = tmp_path / "empty"
    (project / "data").mkdir(parents=True)
    with serving(project, ready=False) as (url, _):
        assert httpx.get(f"{url}/healthz").status_code == 503
        reply = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60)
        assert reply.status_code == 503
        assert "ingest" in reply.json()["error"]["message"]
        pdf = write_pdf(tmp_path / "zephyr.pdf", ["Zephyr Orchard\n" + NEW_FACT])
        job_id = httpx.post(
            f"{url}/v1/documents", files={"file": ("z.pdf", pdf.read_bytes())}
        ).json()["job_id"]
        assert wait_for_job(url, job_id)["status"] == "done"
        reply = httpx.post(f"{url}/v1/ask", json={"question": NEW_QUESTION}, timeout=60)
        assert reply.status_code == 200
        assert "412" in reply.json()["answer"]
        assert httpx.get(f"{url}/healthz").status_code == 200
    shutil.rmtree(project)
