"""Questions submitted as jobs and followed to their end: the events as they happen, the
answer a plain request waits for, and server-sent events for a streaming one."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, suppress
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse

from docqa.jobs.board import END, BoardUnavailable, closing_events
from docqa.jobs.runner import AnswerRequest, cancel_queued
from docqa.server.audit import RequestAudit
from docqa.server.errors import ApiError, public_error
from docqa.server.executors import Executor, QueueFull
from docqa.server.state import ServerState

READ_WAIT_S = 1.0  # longest wait for one job event before looking again
LOOK_EVERY_S = 5.0  # with no events for this long, the job's record is looked at


async def submit(
    state: ServerState, request: AnswerRequest, owner: str, audit: RequestAudit
) -> str:
    """Hand `owner`'s question to the executor, within the key's limits (counted, or logged,
    on the audit log): its job id."""
    audit.question(request.collection, request.question)
    admit = state.key_limits.admit
    ticket, turn = await anyio.to_thread.run_sync(admit, owner, state.executor.retry_after())
    owned, job_id = request.model_copy(update={"owner": owner}), None
    try:
        job_id = await anyio.to_thread.run_sync(state.executor.submit, owned, turn)
        return job_id
    except QueueFull as full:
        raise ApiError(
            429,
            f"the server is busy ({state.limits.max_queue} questions wait already): "
            f"try again in {full.retry_after} s",
            code="queue_full",
            headers={"Retry-After": str(full.retry_after)},
        ) from None
    finally:
        state.key_limits.started(owner, ticket, job_id)


async def follow(
    state: ServerState, job_id: str, disconnected: Callable[[], Awaitable[bool]] | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """The job's events as they happen, to its end; a reader that goes away (or a client that
    disconnects) cancels the job. A job that ends without its last event (its runner lost
    Redis) or waits too long for a runner ends the stream with an error event."""
    executor, metrics = state.executor, state.metrics
    cursor, ended, seen_token = "0", False, False
    submitted = time.time()
    next_look = time.monotonic() + LOOK_EVERY_S
    try:
        while not ended:
            try:
                cursor, events = await anyio.to_thread.run_sync(
                    executor.board.read, job_id, cursor, READ_WAIT_S
                )
                if not events and time.monotonic() > next_look:
                    next_look = time.monotonic() + LOOK_EVERY_S
                    events = await anyio.to_thread.run_sync(
                        _stalled, executor, job_id, state.queue_wait_s
                    )
            except BoardUnavailable as exc:
                events = closing_events("failed", {"message": str(exc), "type": "interrupted"})
            for event in events:
                if event["event"] == "token" and not seen_token:
                    seen_token = True
                    metrics.first_token.observe(time.time() - submitted)
                elif event["event"] == "answer":
                    metrics.answered(event, submitted)
                elif event["event"] == "error":
                    event = public_error(event)
                elif event["event"] == END:
                    ended = True
                    metrics.jobs.labels("answer", event["status"]).inc()
                yield event
            if disconnected is not None and await disconnected():
                return
    finally:
        if not ended:
            with anyio.CancelScope(shield=True), suppress(BoardUnavailable):
                await anyio.to_thread.run_sync(executor.board.request_cancel, job_id)
        executor.finished(time.time() - submitted)


async def answer_of(state: ServerState, request: Request, job_id: str) -> dict[str, Any]:
    """Wait for a question's answer; its error as the API's error response."""
    answer = None
    async with aclosing(follow(state, job_id, request.is_disconnected)) as events:
        async for event in events:
            if event["event"] == "answer":
                answer = {k: v for k, v in event.items() if k != "event"}
            elif event["event"] == "error":
                raise ApiError.of_job(event)
    if answer is None:
        raise ApiError(499, "the client went away")
    return answer


async def viewed(state: ServerState, event: dict[str, Any], collection: str) -> dict[str, Any]:
    """An answer or event, each PDF source given the URL of its page, highlighted (`view`)."""
    if "sources" not in event:
        return event
    views = state.documents.of(collection).with_views  # reads the index's manifest
    return await anyio.to_thread.run_sync(views, event, collection)


async def with_views(
    state: ServerState, events: AsyncIterator[dict[str, Any]], collection: str
) -> AsyncIterator[dict[str, Any]]:
    """The events, each PDF source given `view` (see viewed)."""
    async for event in events:
        yield await viewed(state, event, collection)


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def sse(document: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(document, ensure_ascii=False)}\n\n".encode()


def _stalled(executor: Executor, job_id: str, queue_wait_s: float) -> list[dict[str, Any]]:
    """The closing events of a job its reader has heard nothing from for a while: none when
    it is on its way; its end when it finished without saying so, is gone, or no runner took
    it in time (then it is cancelled)."""
    record = executor.board.get(job_id)
    if record is None:
        return closing_events(
            "failed", {"message": "the job is gone (expired?)", "type": "internal"}
        )
    if record.finished:
        error = record.error or {"message": f"the job ended {record.status}", "type": "internal"}
        return closing_events(record.status, error)
    if record.status == "queued" and time.time() - record.created_at > queue_wait_s:
        executor.board.request_cancel(job_id)
        cancel_queued(executor.board, job_id)
        message = (
            f"no worker took the question within {queue_wait_s:g} s: is `docqa worker` running?"
        )
        return closing_events("cancelled", {"message": message, "type": "no_worker"})
    return []
