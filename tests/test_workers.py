"""`docqa serve --queue` with a real Redis (with a password) and two real `docqa worker`
processes answering with SmolLM2: streamed answers through Redis, a worker killed mid-answer,
Redis restarted mid-run, an upload picked up by the workers, a bounded load test, nothing of
the machines in what the API answers, and the password in no log or reply."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import FACTS, ingested_project
from tests.fixtures.services import (
    Redis,
    load,
    long_question,
    openai_client,
    queue_env,
    redis_server,
    serving,
    start_worker,
    streamed_chunks,
    wait_for_job,
)

pytestmark = pytest.mark.slow

QUESTION, ANSWER, SOURCE, PAGE = FACTS[0]
# Short: a question caught in flight by the Redis restart is delivered again after this + 30 s.
ENV = {"DOCQA_SERVER__REQUEST_TIMEOUT_S": "30"}
ONE_THREAD = {"DOCQA_LLM__THREADS": "1", **ENV}  # two workers share two cores
PASSWORD = secrets.token_hex(16)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Redis, Path]]:
    """Redis with a password, two workers and the API, as the README starts them."""
    project = tmp_path_factory.mktemp("cluster")
    ingested_project(project)
    with redis_server(project / "redis", password=PASSWORD) as redis:
        workers = [start_worker(project, redis.url, f"worker{n}", env=ONE_THREAD) for n in (1, 2)]
        try:
            with serving(project, env={**ENV, **queue_env(redis.url)}, ready=False) as (url, _):
                _wait_for_workers(url, 2)
                yield url, redis, project
        finally:
            for worker in workers:
                worker.stop()


def test_openai_client_streams_an_answer_from_a_worker(cluster: tuple[str, Redis, Path]) -> None:
    url, _, _ = cluster
    chunks = streamed_chunks(url, QUESTION)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(deltas) > 3
    extra = chunks[-1].model_extra["docqa"]
    assert ANSWER in extra["answer"]
    assert (extra["sources"][0]["source"], extra["sources"][0]["page"]) == (SOURCE, PAGE)
    plain = openai_client(url).chat.completions.create(
        model="docqa", messages=[{"role": "user", "content": QUESTION}], temperature=0
    )
    assert plain.choices[0].message.content == extra["answer"]


def test_both_workers_answer(cluster: tuple[str, Redis, Path]) -> None:
    url, redis, _ = cluster
    job_ids = [
        httpx.post(f"{url}/v1/jobs", json={"question": f"{QUESTION} ({n})"}).json()["job_id"]
        for n in range(6)
    ]
    records = [wait_for_job(url, job_id) for job_id in job_ids]
    assert {record["status"] for record in records} == {"done"}
    assert len({_worker(redis, job_id) for job_id in job_ids}) == 2


def test_a_killed_worker_s_job_finishes_on_the_other(cluster: tuple[str, Redis, Path]) -> None:
    url, redis, _ = cluster
    job_id = httpx.post(f"{url}/v1/jobs", json=long_question()).json()["job_id"]
    wait_for_job(url, job_id, until=("running",))  # mid-answer: it runs for seconds
    killed = _worker(redis, job_id)
    os.kill(int(killed.rsplit(":", 1)[1]), signal.SIGKILL)
    record = wait_for_job(url, job_id)
    assert record["status"] in ("done", "failed"), record
    if record["status"] == "done":
        assert record["attempts"] == 2
        assert _worker(redis, job_id) != killed
    else:
        assert record["error"]["message"]
    print(f"killed worker's job: {record['status']} after {record['attempts']} attempts")
    _wait_for_workers(url, 2)  # the killed process is replaced


def test_no_accepted_job_is_lost_when_redis_restarts(cluster: tuple[str, Redis, Path]) -> None:
    url, redis, _ = cluster
    job_ids = [
        httpx.post(f"{url}/v1/jobs", json={"question": f"{QUESTION} [{n}]"}).json()["job_id"]
        for n in range(8)
    ]
    redis.stop()  # a clean shutdown, as a restart by systemd or a container engine does
    time.sleep(1)
    redis.start()
    records = [wait_for_job(url, job_id) for job_id in job_ids]
    statuses = Counter(record["status"] for record in records)
    assert statuses == {"done": 8}, records
    _wait_for_workers(url, 2)


def test_workers_pick_up_an_upload_without_a_restart(
    cluster: tuple[str, Redis, Path], tmp_path: Path
) -> None:
    url, _, _ = cluster
    pdf = write_pdf(
        tmp_path / "kestrel.pdf",
        ["Kestrel Quarry\nThe Kestrel quarry ships 9,300 tonnes of slate a year."],
    )
    uploaded = httpx.post(f"{url}/v1/documents", files={"file": ("k.pdf", pdf.read_bytes())})
    assert uploaded.status_code == 202
    assert wait_for_job(url, uploaded.json()["job_id"])["status"] == "done"
    for _ in range(4):  # whichever worker takes it
        reply = httpx.post(
            f"{url}/v1/ask",
            json={"question": "How much slate does the Kestrel quarry ship a year?"},
            timeout=120,
        ).json()
        assert reply["sources"][0]["source"] == f"uploads/{uploaded.json()['id']}.pdf"


def test_load_on_two_workers_is_answered_or_refused_never_lost(
    cluster: tuple[str, Redis, Path],
) -> None:
    url, _, _ = cluster
    outcomes = asyncio.run(load(url, QUESTION, clients=50, requests_each=2, max_tokens=16))
    counts = Counter(status for status, _ in outcomes)
    assert len(outcomes) == 100
    assert set(counts) <= {200, 429}, counts
    assert counts[200] >= 8


def test_what_the_api_answers_names_no_host_or_path(cluster: tuple[str, Redis, Path]) -> None:
    url, _, project = cluster
    job_id = httpx.post(f"{url}/v1/jobs", json={"question": QUESTION}).json()["job_id"]
    replies = [
        httpx.get(f"{url}/healthz"),
        httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=120),
        httpx.get(f"{url}/v1/jobs/{wait_for_job(url, job_id)['id']}"),
    ]
    host = socket.gethostname()
    for reply in replies:
        assert reply.status_code == 200, reply.text
        assert str(project) not in reply.text
        assert not re.search(rf"\b{re.escape(host)}\b", reply.text), reply.text
    workers = replies[0].json()["model"]["workers"]
    assert len(workers) == 2
    assert all(set(worker) == {"model", "index_generation", "started_at"} for worker in workers)


def _worker(redis: Redis, job_id: str) -> str:
    """HOST:PID of the process that runs (or ran) a job, as its record in Redis names it."""
    record = redis.client().get(f"docqa:job:{job_id}:record")
    assert record is not None
    return str(json.loads(record)["worker"])


def _wait_for_workers(url: str, count: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        health = httpx.get(f"{url}/healthz", timeout=5).json()
        if len(health["model"].get("workers", [])) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} workers: {health}")


def test_workers_serve_every_collection_and_its_new_generations(
    cluster: tuple[str, Redis, Path], tmp_path: Path
) -> None:
    url, _, _ = cluster
    assert httpx.post(f"{url}/v1/collections", json={"name": "quarry"}).status_code == 201

    def upload(name: str, text: str) -> str:
        pdf = write_pdf(tmp_path / name, [text])
        sent = httpx.post(
            f"{url}/v1/documents?collection=quarry", files={"file": (name, pdf.read_bytes())}
        )
        assert sent.status_code == 202, sent.text
        assert wait_for_job(url, sent.json()["job_id"])["status"] == "done"
        return f"uploads/{sent.json()['id']}.pdf"

    def first_source(question: str) -> str:
        reply = openai_client(url).chat.completions.create(
            model="docqa/quarry", messages=[{"role": "user", "content": question}]
        )
        extra = reply.model_extra or {}
        return extra["docqa"]["sources"][0]["source"]

    slate = upload("slate.pdf", "Heron Quarry\nThe Heron quarry ships 4,100 tonnes of slate.")
    assert {first_source("How much slate does the Heron quarry ship?") for _ in range(4)} == {slate}
    granite = upload("granite.pdf", "Osprey Pit\nThe Osprey pit cuts 800 tonnes of granite.")
    for _ in range(4):  # both workers, each on the collection's new generation
        assert first_source("How much granite does the Osprey pit cut?") == granite
    default = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=120).json()
    assert default["sources"][0]["source"] == SOURCE  # the default collection is untouched


def test_the_queue_s_password_is_in_no_log_health_or_metrics(
    cluster: tuple[str, Redis, Path],
) -> None:
    """Last, so the logs hold the whole run: Redis restarted, a worker killed."""
    url, redis, project = cluster
    replies = [httpx.get(f"{url}/healthz").text, httpx.get(f"{url}/metrics").text]
    logs = {log.name: log.read_text(errors="replace") for log in project.glob("*.log")}
    assert {"worker1.log", "worker2.log"} <= set(logs)
    assert not [text for text in [*replies, *logs.values()] if PASSWORD in text]
    served = next(text for name, text in logs.items() if name.startswith("serve-"))
    assert f"through redis://127.0.0.1:{redis.port}/0" in served
    assert f"redis://:**@127.0.0.1:{redis.port}/0" in logs["worker1.log"]  # Celery's own
