"""Where the API's jobs run: in the API process, one question at a time through a bounded
queue (inline), or on `docqa worker` processes through Redis (queue). Either way the API
process is the index's one writer: ingests run here, one at a time."""

from __future__ import annotations

import contextlib
import math
import queue
import secrets
import statistics
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from docqa.collection import DEFAULT
from docqa.errors import DocqaError
from docqa.jobs.board import BoardUnavailable, JobBoard, JobRecord, MemoryBoard, RedisBoard
from docqa.jobs.runner import AnswerRequest, cancel_queued, run_answer, run_ingest
from docqa.server.fairness import FairQueue

if TYPE_CHECKING:
    from celery import Celery

    from docqa.answer.qa import QAService
    from docqa.config import Settings


IDLE_CHECK_S = 0.5  # an idle answer loop looks this often for a new index to load
WORKER_HEALTH = ("model", "index_generation", "started_at")  # of a worker's heartbeat


class QueueFull(Exception):
    """Too many questions wait already; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy: {retry_after} s")
        self.retry_after = retry_after


class Executor:
    """What both modes share: job ids, the ingest thread, and the time a job takes."""

    mode = ""

    def __init__(self, settings: Settings, board: JobBoard) -> None:
        self.settings = settings
        self.board = board
        self._ingest_lock = threading.Lock()
        # The queued ingest of each collection, which covers later uploads to it.
        self._ingest_waiting: dict[str, str] = {}
        self._ingest_thread: threading.Thread | None = None
        self._durations: deque[float] = deque(maxlen=32)

    def submit(self, request: AnswerRequest, turn: int = 0) -> str:
        """Queue a question: its job id. `turn`: how many of its key's questions are
        unanswered before it (questions of lower turns are taken first, where the mode can)."""
        raise NotImplementedError

    def waiting(self) -> int:
        """Questions queued and not yet started."""
        raise NotImplementedError

    def health(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop taking work (the process is ending)."""

    def finished(self, seconds: float) -> None:
        """A question took `seconds` from submission to its end: for Retry-After."""
        self._durations.append(seconds)

    def retry_after(self) -> int:
        typical = statistics.median(self._durations) if self._durations else 2.0
        return max(1, math.ceil(typical))

    def ended(self, job_id: str) -> bool:
        """Whether the job has finished (or is gone)."""
        record = self.board.get(job_id)
        return record is None or record.finished

    def new_record(
        self, kind: str, owner: str | None = None, collection: str | None = None
    ) -> JobRecord:
        record = JobRecord(
            id=secrets.token_hex(12),
            kind=kind,
            created_at=time.time(),
            owner=owner,
            collection=collection,
        )
        self.board.create(record)
        return record

    def submit_ingest(self, collection: str | None = None) -> str:
        """An ingest job of a collection (None: the default): started now, or run after the
        one running (which may have scanned the data folder before the latest upload)."""
        collection = collection or DEFAULT
        with self._ingest_lock:
            queued = self._ingest_waiting.get(collection)
            waiting = queued and self.board.get(queued)
            if waiting and not waiting.finished:  # not cancelled while it waited
                return waiting.id
            job_id = self.new_record("ingest", collection=collection).id
            self._ingest_waiting[collection] = job_id
            if self._ingest_thread is None or not self._ingest_thread.is_alive():
                self._ingest_thread = threading.Thread(
                    target=self._ingest_loop, name="docqa-ingest", daemon=True
                )
                self._ingest_thread.start()
            return job_id

    def _ingest_loop(self) -> None:
        from docqa.collection import in_collection

        while True:
            with self._ingest_lock:
                if not self._ingest_waiting:
                    self._ingest_thread = None
                    return
                collection = next(iter(self._ingest_waiting))
                job_id = self._ingest_waiting.pop(collection)
            # Each question's runner switches to the new index before it starts.
            try:
                settings = in_collection(self.settings, collection)
            except DocqaError:  # deleted since
                cancel_queued(self.board, job_id)
                continue
            run_ingest(settings, self.board, job_id)
            self.ingested()

    def ingested(self) -> None:
        """An ingest ended, whatever its outcome."""


class InlineExecutor(Executor):
    """The model in the API process; questions wait their turn in a bounded queue, taken in
    turn across the keys that asked them (fairness.FairQueue)."""

    mode = "inline"

    def __init__(self, settings: Settings, service: QAService) -> None:
        from docqa.answer.services import CollectionServices

        super().__init__(settings, MemoryBoard(settings.server.job_ttl_s))
        self.services = CollectionServices(service, settings.server.open_collections)
        self._queue: FairQueue[tuple[str, AnswerRequest]] = FairQueue(settings.server.max_queue)
        self._stale = threading.Event()
        self._thread = threading.Thread(target=self._answer_loop, name="docqa-answer-loop")
        self._thread.start()

    def submit(self, request: AnswerRequest, turn: int = 0) -> str:
        if self._queue.full():  # taken in turn across keys whatever `turn` says
            raise QueueFull(self.retry_after())
        record = self.new_record("answer", owner=request.owner)
        try:
            self._queue.put_nowait(request.owner or "", (record.id, request))
        except queue.Full:  # filled since the check above
            cancel_queued(self.board, record.id)
            raise QueueFull(self.retry_after()) from None
        return record.id

    def waiting(self) -> int:
        return self._queue.qsize()

    def _answer_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                if self._stale.is_set():  # load a new index before a question needs it
                    self._stale.clear()
                    for service in self.services.opened():
                        with contextlib.suppress(DocqaError):
                            service.refresh()
                continue
            if item is None:
                return
            run_answer(self.services, self.board, item[0], item[1], self.settings)

    def ingested(self) -> None:
        self._stale.set()  # the answer loop, the service's one user, switches to it

    def close(self) -> None:
        for job_id, _ in self._queue.close():  # cancelled, so that their readers end
            cancel_queued(self.board, job_id)
        self._thread.join(timeout=self.settings.server.request_timeout_s)

    def health(self) -> dict[str, Any]:
        default = self.services.default
        store, llm = default.store, default.loaded_llm
        return {
            "index": _index_health(store),
            "model": {
                "loaded": llm is not None,
                "name": llm.path.name if llm else None,
                "backend": llm.backend if llm else None,
            },
            "queue": {"mode": self.mode, "reachable": True, "waiting": self.waiting()},
        }


class QueueExecutor(Executor):
    """Questions become Celery tasks run by `docqa worker` processes, through Redis."""

    mode = "queue"

    def __init__(self, settings: Settings, url: str) -> None:
        from docqa.jobs.celery_app import make_celery

        # The API answers "unavailable" within seconds rather than wait out a Redis restart.
        self.redis_board = RedisBoard(url, settings.server.job_ttl_s, retries=3)
        super().__init__(settings, self.redis_board)
        self.celery: Celery = make_celery(url, settings)

    def submit(self, request: AnswerRequest, turn: int = 0) -> str:
        from kombu.exceptions import OperationalError

        from docqa.jobs.celery_app import ANSWER_TASK, PRIORITIES, QUEUE, queue_lists

        if self.redis_board.depth(queue_lists()) >= self.settings.server.max_queue:
            raise QueueFull(self.retry_after())
        record = self.new_record("answer", owner=request.owner)
        try:
            self.celery.send_task(
                ANSWER_TASK,
                args=[record.id, request.model_dump()],
                task_id=record.id,
                queue=QUEUE,
                priority=min(turn, PRIORITIES[-1]),
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
        except (OperationalError, OSError) as exc:
            with contextlib.suppress(BoardUnavailable):
                cancel_queued(self.board, record.id)
            raise BoardUnavailable(f"the job queue cannot be reached ({exc})") from exc
        return record.id

    def waiting(self) -> int:
        from docqa.jobs.celery_app import queue_lists

        try:
            return self.redis_board.depth(queue_lists())
        except BoardUnavailable:
            return -1

    def health(self) -> dict[str, Any]:
        reachable = self.redis_board.ping()
        workers = self.redis_board.workers() if reachable else []
        # Not their names: a worker is named by its machine and process.
        shown = [{key: worker.get(key) for key in WORKER_HEALTH} for worker in workers]
        return {
            "index": _manifest_health(self.settings),
            "model": {"loaded": bool(workers), "workers": shown},
            "queue": {"mode": self.mode, "reachable": reachable, "waiting": self.waiting()},
        }


def _index_health(store: Any) -> dict[str, Any]:
    if store is None:
        return {"loaded": False}
    manifest = store.manifest
    return {
        "loaded": True,
        "generation": store.generation,
        "files": len(manifest.files),
        "chunks": manifest.chunks,
    }


def _manifest_health(settings: Settings) -> dict[str, Any]:
    from docqa.errors import VectorStoreError
    from docqa.index.manifest import read_manifest

    try:
        manifest, _ = read_manifest(settings.paths.vectorstore)
    except VectorStoreError:
        return {"loaded": False}
    return {"loaded": True, "files": len(manifest.files), "chunks": manifest.chunks}
