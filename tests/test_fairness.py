"""Sharing a server between keys: each key's questions limited (at once, a minute: 429 with
Retry-After), and one key sending 20 questions does not hold back another key's single one by
more than about one answer — measured with the demo model, inline and through a worker."""

from __future__ import annotations

import queue
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from docqa.server.errors import ApiError
from docqa.server.fairness import FairQueue, KeyLimits
from tests.fixtures.projects import FACTS, ingested_project, run_cli
from tests.fixtures.services import redis_server, serving, start_worker

QUESTION = FACTS[0][0]
ASKED = {"question": QUESTION, "max_tokens": 48, "temperature": 0}
BUSY_QUESTIONS = 20


def test_waiting_questions_are_taken_in_turn_across_keys() -> None:
    waiting: FairQueue[str] = FairQueue(maxsize=5)
    for owner, item in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1")]:
        waiting.put_nowait(owner, item)
    with pytest.raises(queue.Full):
        waiting.put_nowait("d", "d1")
    assert [waiting.get(timeout=0) for _ in range(4)] == ["a1", "b1", "c1", "a2"]
    with pytest.raises(queue.Empty):
        FairQueue[str](maxsize=1).get(timeout=0.01)
    assert waiting.close() == ["a3"]
    assert waiting.get(timeout=0) is None


def test_a_key_past_its_limits_is_told_when_to_come_back() -> None:
    finished: set[str] = set()
    limits = KeyLimits(at_once=2, per_minute=3, finished=finished.__contains__)
    first, ahead = limits.admit("a", retry_after=7)
    assert ahead == 0
    limits.started("a", first, "job1")
    second, ahead = limits.admit("a", retry_after=7)
    assert ahead == 1
    with pytest.raises(ApiError) as at_once:
        limits.admit("a", retry_after=7)
    assert (at_once.value.status, at_once.value.headers) == (429, {"Retry-After": "7"})
    assert "its limit of 2 questions at once" in str(at_once.value)
    limits.admit("b", retry_after=7)  # another key is not held back
    limits.started("a", second, None)  # refused after all: its place is free again
    finished.add("job1")
    limits.admit("a", retry_after=7)
    with pytest.raises(ApiError, match="its limit of 3 questions a minute") as per_minute:
        limits.admit("a", retry_after=7)
    assert 55 <= int((per_minute.value.headers or {})["Retry-After"]) <= 60


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("fair")
    ingested_project(project)
    return project


def key(project: Path, name: str) -> dict[str, str]:
    made = run_cli("-m", "docqa", "keys", "add", name, "--all", cwd=project)
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"Bearer {made.stdout.strip()}"}


@contextmanager
def served(project: Path, mode: str, tmp_path: Path, **settings: int) -> Iterator[str]:
    """`docqa serve` inline, or with one worker on a Redis queue: its URL."""
    env = {f"DOCQA_SERVER__{name.upper()}": str(value) for name, value in settings.items()}
    with ExitStack() as running:
        args: tuple[str, ...] = ()
        if mode == "queue":
            redis = running.enter_context(redis_server(tmp_path / "redis"))
            worker = start_worker(project, redis.url, "fair-worker")
            running.callback(worker.stop)
            args = ("--queue", redis.url)
        url, _ = running.enter_context(serving(project, *args, env=env))
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["inline", "queue"])
def test_a_busy_key_holds_another_back_by_one_answer_at_most(
    project: Path, tmp_path: Path, mode: str
) -> None:
    busy, calm = key(project, f"busy-{mode}"), key(project, f"calm-{mode}")
    many = {"key_questions_at_once": 50, "key_questions_per_minute": 100, "max_queue": 50}
    with served(project, mode, tmp_path, **many) as url:
        solo = []
        for _ in range(3):
            started = time.perf_counter()
            assert httpx.post(f"{url}/v1/ask", json=ASKED, headers=calm, timeout=120).is_success
            solo.append(time.perf_counter() - started)
        answer_s = statistics.median(solo)
        jobs = [
            httpx.post(f"{url}/v1/jobs", json=ASKED, headers=busy).json()["job_id"]
            for _ in range(BUSY_QUESTIONS)
        ]
        time.sleep(answer_s / 2)  # the busy key's first question is being answered
        started = time.perf_counter()
        answered = httpx.post(f"{url}/v1/ask", json=ASKED, headers=calm, timeout=300)
        waited = time.perf_counter() - started
        statuses = [httpx.get(f"{url}/v1/jobs/{j}", headers=busy).json()["status"] for j in jobs]
        for job_id in jobs:
            httpx.delete(f"{url}/v1/jobs/{job_id}", headers=busy)
    assert answered.is_success
    behind = statuses.count("queued")
    print(
        f"\n{mode}: one answer {answer_s:.2f} s alone; with {BUSY_QUESTIONS} of another key's "
        f"queued before it, {waited:.2f} s ({behind} of them still waiting when it was answered)"
    )
    assert behind >= BUSY_QUESTIONS // 2  # it went ahead of most of them...
    assert waited <= 2 * answer_s + 1.5  # ...held back by about one answer, not twenty


@pytest.mark.slow
def test_over_http_a_key_past_its_limits_gets_429_with_retry_after(
    project: Path, tmp_path: Path
) -> None:
    hasty, other = key(project, "hasty"), key(project, "other")
    with served(
        project, "inline", tmp_path, key_questions_at_once=1, key_questions_per_minute=3
    ) as url:
        first = httpx.post(f"{url}/v1/jobs", json=ASKED, headers=hasty)
        second = httpx.post(f"{url}/v1/jobs", json=ASKED, headers=hasty)
        assert first.status_code == 202
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "key_limit"
        assert int(second.headers["Retry-After"]) >= 1
        assert httpx.post(f"{url}/v1/ask", json=ASKED, headers=other, timeout=120).is_success
