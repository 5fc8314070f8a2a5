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
from docqa.jobs.runner import AnswerRequest, process_name, run_answer

if TYPE_CHECKING:
    from celery import Celery

    from docqa.answer.qa import QAService

QUEUE = "docqa"
ANSWER_TASK = "docqa.answer"
RESTORE_MARGIN_S = 30  # a message unacknowledged this long past the time limit is redelivered


def make_celery(url: str, settings: Settings) -> Celery:
    """The Celery app of the API (which sends tasks) and of the workers (which run them)."""
    from celery import Celery

    app = Celery("docqa", broker=url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live on the job board (docqa.jobs.board)
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a busy worker holds no second question
        worker_proc_alive_timeout=600,  # loading the model in a new process may take a while
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # Redis restarting is waited for, not fatal
        task_publish_retry_policy={"max_retries": 10, "interval_step": 0.5, "interval_max": 3},
        broker_transport_options={
            # A whole worker killed: its unacknowledged question runs elsewhere after this.
            "visibility_timeout": int(settings.server.request_timeout_s + RESTORE_MARGIN_S),
            "unacked_restore_interval": 5,
            "health_check_interval": 10,
            "socket_keepalive": True,
        },
    )
    return app


@dataclass
class _Process:
    """What one worker process holds: loaded once, used by every task it runs."""

    settings: Settings
    board: RedisBoard
    service: QAService | None = None


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
        assert _process.service is not None
        run_answer(_process.service, _process.board, job_id, AnswerRequest(**request), settings)

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
    from docqa.answer.qa import QAService

    assert _process is not None
    logging.getLogger("faiss").setLevel(logging.WARNING)  # which CPU build it loads is noise
    service = QAService(_process.settings)
    service.load_for_serving()  # without an index yet, each question tries again
    _process.service = service
    threading.Thread(target=_heartbeat, args=(_process,), daemon=True).start()


def _heartbeat(process: _Process) -> None:
    name = process_name()
    started = time.time()
    while True:
        service = process.service
        assert service is not None
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
