"""Running one job — a question or an ingest — the same way wherever it runs: in the API
process (inline) or in a `docqa worker` (queue). The runner publishes the job's events as they
happen, stops at a cancel or the time limit, and leaves the job finished, never "running"."""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import closing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from docqa.answer.selection import Selection
from docqa.collection import DEFAULT
from docqa.errors import DocqaError, ExitCode
from docqa.index.report import IngestProgress
from docqa.jobs.board import JobBoard, closing_events

if TYPE_CHECKING:
    from docqa.answer.qa import QAService
    from docqa.answer.services import CollectionServices
    from docqa.config import Settings
    from docqa.index.report import IngestReport

log = logging.getLogger("docqa.jobs")
CANCEL_CHECK_S = 0.2  # how often a running answer looks for a cancel request
PROGRESS_EVERY_S = 0.5  # how often an ingest publishes its progress


class AnswerRequest(BaseModel):
    """One question as a job: what every front end's request becomes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    history: list[tuple[str, str]] = []  # earlier (question, answer) turns of a conversation
    conversation: bool = False  # answered as a chat turn (follow-ups made stand-alone)
    k: int | None = None
    sampling: dict[str, Any]  # the full generation settings, validated by the front end
    collection: str = DEFAULT  # whose documents answer it
    selection: Selection | None = None  # the documents it is limited to (None: all)
    owner: str | None = None  # the API key that asked (the server's jobs show only to it)


class JobFailed(Exception):
    """Ends a job as failed (or cancelled) with a message for its client."""

    def __init__(self, message: str, kind: str, status: str = "failed") -> None:
        super().__init__(message)
        self.kind, self.status = kind, status


def error_info(exc: BaseException) -> dict[str, str]:
    """An error as a job carries it: a message and a kind the HTTP API maps to a status."""
    if isinstance(exc, JobFailed):
        return {"message": str(exc), "type": exc.kind}
    if isinstance(exc, DocqaError):
        return {"message": str(exc), "type": ExitCode(exc.exit_code).name.lower()}
    log.error("job failed", exc_info=exc)
    return {
        "message": f"unexpected {type(exc).__name__}: the log of the process that ran it has "
        "the details",
        "type": "internal",
    }


def run_answer(
    services: CollectionServices,
    board: JobBoard,
    job_id: str,
    request: AnswerRequest,
    settings: Settings,
) -> None:
    """Answer a queued question from its collection's service, publishing its events; a job
    already finished (by an earlier delivery of the same task) is left alone."""
    if not _begin(board, job_id, settings.server.max_attempts):
        return
    from docqa.answer.results import answer_dict, event_dict

    deadline = time.monotonic() + settings.server.request_timeout_s
    try:
        service = services.get(request.collection)
        service.refresh()
        service = service.limited(request.selection)
        result = None
        next_check = 0.0
        with closing(_events(service, request, settings)) as events:
            for event in events:
                if event.kind == "error":
                    raise event.error
                board.publish(job_id, event_dict(event))
                if event.kind == "answer":
                    result = answer_dict(event.answer)
                if result is not None:
                    continue  # answered: a late cancel or the time limit no longer matter
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + CANCEL_CHECK_S
                    _check_cancel(board, job_id)
                if now > deadline:
                    raise JobFailed(
                        f"the answer took longer than the server's limit of "
                        f"{settings.server.request_timeout_s:g} s, and was stopped",
                        "timeout",
                    )
        _finish(board, job_id, "done", result=result)
    except Exception as exc:
        _fail(board, job_id, exc)


def run_ingest(settings: Settings, board: JobBoard, job_id: str) -> None:
    """Bring the index up to date with the data folder, publishing progress."""
    from docqa.index.ingest import ingest

    if not _begin(board, job_id, max_attempts=1):
        return
    try:
        report = ingest(settings, _PublishedProgress(board, job_id))
        _finish(board, job_id, "done", result=ingest_dict(report))
    except Exception as exc:  # a cancel ends the reading, the embedding and the lock
        _fail(board, job_id, _cancelled() if board.cancel_requested(job_id) else exc)


def ingest_dict(report: IngestReport) -> dict[str, Any]:
    return {
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "moved": [list(pair) for pair in report.moved],
        "unchanged": report.unchanged,
        "failed": [{"source": f.source, "reason": f.reason} for f in report.failed],
        "files": len(report.files),
        "pages": report.pages,
        "chunks": report.chunks,
        "written": report.written,
        "seconds": round(report.seconds, 2),
    }


def _begin(board: JobBoard, job_id: str, max_attempts: int) -> bool:
    """Mark the job running; False when there is nothing (more) to do."""
    record = board.get(job_id)
    if record is None or record.finished:
        return False
    if board.cancel_requested(job_id):
        cancel_queued(board, job_id)
        return False
    if record.status == "running" and board.still_running(record):
        return False  # delivered again while its first run goes on (after a Redis restart)
    if record.attempts >= max_attempts:
        _fail(
            board,
            job_id,
            JobFailed(
                f"the worker running this job stopped {record.attempts} time(s) before it "
                "finished (killed, or out of memory); it is not tried again",
                "worker_lost",
            ),
        )
        return False
    board.update(
        job_id,
        status="running",
        started_at=time.time(),
        attempts=record.attempts + 1,
        worker=process_name(),
    )
    return True


def process_name() -> str:
    """HOST:PID of this process, as job records and worker heartbeats name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def cancel_queued(board: JobBoard, job_id: str) -> None:
    """End a job that no runner has started (its runner, if one comes, leaves it alone)."""
    _fail(board, job_id, _cancelled())


def _events(service: QAService, request: AnswerRequest, settings: Settings) -> Any:
    from docqa.answer.conversation import Conversation
    from docqa.config import Sampling

    sampling = Sampling.model_validate(request.sampling)
    if not request.conversation:
        return service.stream(request.question, k=request.k, sampling=sampling)
    conversation = Conversation.resume(
        service, sampling, request.history, request.k, settings.chat.rewrite
    )
    return conversation.stream(request.question)


def _check_cancel(board: JobBoard, job_id: str) -> None:
    if board.cancel_requested(job_id):
        raise _cancelled()


def _cancelled() -> JobFailed:
    return JobFailed("cancelled", "cancelled", status="cancelled")


def _fail(board: JobBoard, job_id: str, exc: BaseException) -> None:
    status = exc.status if isinstance(exc, JobFailed) else "failed"
    _finish(board, job_id, status, error=error_info(exc))


def _finish(
    board: JobBoard,
    job_id: str,
    status: str,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    board.update(job_id, status=status, finished_at=time.time(), result=result, error=error)
    for event in closing_events(status, error):
        board.publish(job_id, event)


class _PublishedProgress(IngestProgress):
    """Ingest progress as events, at most every PROGRESS_EVERY_S seconds."""

    def __init__(self, board: JobBoard, job_id: str) -> None:
        self.board, self.job_id = board, job_id
        self.counts = {
            "files": 0,
            "checked": 0,
            "pages": 0,
            "pages_planned": 0,
            "ocr_pages": 0,
            "chunks": 0,
            "embedded": 0,
        }
        self.current = ""
        self._next = 0.0

    def start(self, files: int) -> None:
        self.counts["files"] = files
        self._publish(force=True)

    def planned(self, files: int, pages: int) -> None:
        self.counts["pages_planned"] = pages
        self._publish(force=True)

    def file(self, source: str, pages: int) -> None:
        self.counts["checked"] += 1
        self.current = source
        self._publish()

    def skipped(self) -> None:
        self.counts["checked"] += 1
        self._publish()

    def page(self, ocr: bool = False) -> None:
        self.counts["pages"] += 1
        self.counts["ocr_pages"] += ocr
        self._publish()

    def chunked(self, chunks: int) -> None:
        self.counts["chunks"] += chunks

    def embedded(self, chunks: int) -> None:
        self.counts["embedded"] += chunks
        self._publish()

    def stop_requested(self) -> bool:
        return self.board.cancel_requested(self.job_id)

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + PROGRESS_EVERY_S
            progress = {"file": self.current, **self.counts}
            self.board.publish(self.job_id, {"event": "progress", **progress})
            self.board.update(self.job_id, progress=progress)
