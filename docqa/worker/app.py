"""`docqa worker`: a Celery worker that answers the API's questions through Redis.

Each worker process loads the index and the model once, when it starts
(`worker_process_init`), and switches to a new index generation before a question when an
ingest has written one. Tasks are acknowledged only when done and rejected when their
process dies, so a killed worker's question runs on another, at most `server.max_attempts`
times; its tokens reach the API through the job's Redis stream as they are generated.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docqa.config import Settings
from docqa.jobs.board import HEARTBEAT_S, HEARTBEAT_TTL_S, BoardUnavailable, RedisBoard
from docqa.jobs.celery_app import ANSWER_TASK, QUEUE, make_celery
from docqa.jobs.runner import AnswerRequest, process_name, run_answer

if TYPE_CHECKING:
    from docqa.answer.services import CollectionServices


@dataclass
class _Process:
    """What one worker process holds: loaded once, used by every task it runs."""

    settings: Settings
    board: RedisBoard
    services: CollectionServices | None = None


_process: _Process | None = None


def run_worker(settings: Settings, url: str, name: str, concurrency: int) -> None:
    """Run a worker until it is stopped (Ctrl-C, SIGTERM): `concurrency` processes, each with
    its own model."""
    global _process
    from celery.signals import worker_process_init

    app = make_celery(url, settings)
    _process = _Process(settings, RedisBoard(url, settings.server.job_ttl_s))

    @app.task(name=ANSWER_TASK)
    def answer(job_id: str, request: dict[str, Any]) -> None:
        assert _process is not None
        assert _process.services is not None
        run_answer(_process.services, _process.board, job_id, AnswerRequest(**request), settings)

    worker_process_init.connect(_load, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={QUEUE}",
            f"--hostname={name}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _load(**_: Any) -> None:
    """In each new worker process: load the model (and the index, when there is one)."""
    from docqa.answer.qa import loaded_service
    from docqa.answer.services import CollectionServices

    assert _process is not None
    logging.getLogger("faiss").setLevel(logging.WARNING)  # which CPU build it loads is noise
    tell = logging.getLogger(__name__).info
    # Without an index yet, each question tries again.
    service = loaded_service(_process.settings, tell, serving=True)
    _process.services = CollectionServices(service, _process.settings.server.open_collections)
    threading.Thread(target=_heartbeat, args=(_process,), daemon=True).start()


def _heartbeat(process: _Process) -> None:
    name = process_name()
    started = time.time()
    while True:
        assert process.services is not None
        service = process.services.default
        store = service.store
        info = {
            "name": name,
            "started_at": started,
            "model": service.model_path.name if service.model_path else None,
            "index_generation": store.generation if store else None,
        }
        with contextlib.suppress(BoardUnavailable):  # Redis restarting: the next beat tries
            process.board.heartbeat(name, info, HEARTBEAT_TTL_S)
        time.sleep(HEARTBEAT_S)
