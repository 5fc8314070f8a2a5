"""The HTTP API (`docqa serve`): routes that translate requests into jobs and jobs' events
into responses — JSON, server-sent events, or OpenAI chat completions. The work itself runs
wherever the executor runs it (docqa.server.executors)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from docqa import __version__
from docqa.answer.profiles import profile_for
from docqa.config import Settings
from docqa.jobs.board import END, BoardUnavailable, JobRecord, closing_events
from docqa.jobs.runner import AnswerRequest, cancel_queued
from docqa.server.documents import Documents
from docqa.server.errors import ApiError, install_handlers
from docqa.server.executors import Executor, QueueFull
from docqa.server.guards import Guard
from docqa.server.metrics import Metrics, RequestMetrics
from docqa.server.schemas import (
    MODEL_ID,
    AskBody,
    ChatBody,
    ask_request,
    chat_request,
    chunk,
    completion,
    docqa_extra,
    finish_reason,
    usage,
)

STATIC = Path(__file__).parent / "static"
# The page runs only its own script and styles: nothing a document holds can add any.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
READ_WAIT_S = 1.0  # longest wait for one job event before looking again
LOOK_EVERY_S = 5.0  # with no events for this long, the job's record is looked at
THREADS = 128  # threads for blocking work: each request waiting for its job holds one


def create_app(settings: Settings, executor: Executor, api_key: str | None) -> FastAPI:
    limits = settings.server
    metrics = Metrics(executor.waiting)
    documents = Documents(settings)
    reader = profile_for(settings)  # the defaults /v1/info reports

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        yield

    app = FastAPI(
        title="docqa",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    install_handlers(app)

    async def submit(request: AnswerRequest) -> str:
        try:
            return await anyio.to_thread.run_sync(executor.submit, request)
        except QueueFull as full:
            raise ApiError(
                429,
                f"the server is busy ({limits.max_queue} questions wait already): "
                f"try again in {full.retry_after} s",
                code="queue_full",
                headers={"Retry-After": str(full.retry_after)},
            ) from None

    # A question no runner has taken after this long (no worker running?) is given up.
    queue_wait_s = limits.request_timeout_s * (limits.max_queue + 1)

    async def follow(
        job_id: str, disconnected: Callable[[], Awaitable[bool]] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The job's events as they happen, to its end; a reader that goes away (or a
        client that disconnects) cancels the job. A job that ends without its last event
        (its runner lost Redis) or waits too long for a runner ends the stream with an
        error event."""
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
                            _stalled, executor, job_id, queue_wait_s
                        )
                except BoardUnavailable as exc:
                    events = closing_events("failed", {"message": str(exc), "type": "interrupted"})
                for event in events:
                    if event["event"] == "token" and not seen_token:
                        seen_token = True
                        metrics.first_token.observe(time.time() - submitted)
                    elif event["event"] == "answer":
                        metrics.answered(event, submitted)
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

    async def answer_of(request: Request, job_id: str) -> dict[str, Any]:
        """Wait for a question's answer; its error as the API's error response."""
        answer = None
        async with aclosing(follow(job_id, request.is_disconnected)) as events:
            async for event in events:
                if event["event"] == "answer":
                    answer = {k: v for k, v in event.items() if k != "event"}
                elif event["event"] == "error":
                    raise ApiError.of_job(event)
        if answer is None:
            raise ApiError(499, "the client went away")
        return answer

    def sse(events: AsyncIterator[bytes]) -> StreamingResponse:
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/v1/ask")
    async def ask(
        request: Request, body: AskBody, stream: Annotated[bool, Query()] = False
    ) -> Response:
        """Answer a question: the same object as `main.py --json`, or (`?stream=true`) its
        events as server-sent events: sources, token…, answer, timings (or error)."""
        job_id = await submit(ask_request(body, settings.llm.sampling, limits))
        if not stream:
            return JSONResponse(await answer_of(request, job_id))

        async def events() -> AsyncIterator[bytes]:
            async for event in follow(job_id):
                if event["event"] != END:
                    yield _sse(event, name=event["event"])

        return sse(events())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request, body: ChatBody) -> Response:
        """OpenAI's chat completions over the index: the last user message is the question,
        the messages before it the conversation."""
        job_id = await submit(chat_request(body, settings.chat_sampling, limits))
        if not body.stream:
            return JSONResponse(completion(job_id, await answer_of(request, job_id)))
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse(_completion_chunks(job_id, follow(job_id), include_usage))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "docqa"}],
        }

    @app.post("/v1/jobs", status_code=202)
    async def create_job(body: AskBody) -> dict[str, Any]:
        """Queue a question; its answer is read later with GET /v1/jobs/{id}."""
        job_id = await submit(ask_request(body, settings.llm.sampling, limits))
        return {"job_id": job_id, "status": "queued"}

    @app.get("/v1/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return _job(executor, job_id).public()

    @app.delete("/v1/jobs/{job_id}")
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a job: at once when it waits, at its next token when it runs."""
        record = _job(executor, job_id)
        if not record.finished:
            executor.board.request_cancel(job_id)
            if record.status == "queued":
                cancel_queued(executor.board, job_id)
        return _job(executor, job_id).public()

    @app.post("/v1/documents", status_code=202)
    async def upload(request: Request, file: UploadFile) -> dict[str, Any]:
        """Add a PDF to the data folder (named by its content) and ingest it."""
        name = file.filename or ""
        if not _plain_file_name(name):
            raise ApiError(400, "the file name must be a plain name, not a path", "file")
        size = file.size if file.size is not None else int(request.headers.get("content-length", 0))
        document_id, new = await anyio.to_thread.run_sync(documents.save, file.file, size, name)
        job_id = await anyio.to_thread.run_sync(executor.submit_ingest)
        return {"id": document_id, "object": "document", "new": new, "job_id": job_id}

    @app.get("/v1/documents")
    async def list_documents() -> dict[str, Any]:
        return await anyio.to_thread.run_sync(documents.listing)

    @app.delete("/v1/documents/{document_id}")
    async def delete_document(document_id: str) -> dict[str, Any]:
        removed = await anyio.to_thread.run_sync(documents.delete, document_id)
        job_id = await anyio.to_thread.run_sync(executor.submit_ingest)
        return {"id": document_id, "deleted": removed, "job_id": job_id}

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        """The defaults and limits a client (the page's settings) works within."""
        defaults = settings.chat_sampling
        return {
            "version": __version__,
            "defaults": {
                "k": reader.k,
                "temperature": defaults.temperature,
                "top_p": defaults.top_p,
                "max_tokens": defaults.max_new_tokens,
            },
            "limits": {
                "max_k": limits.max_k,
                "max_tokens": limits.max_tokens,
                "max_question_chars": limits.max_question_chars,
                "max_upload_mb": limits.max_upload_mb,
            },
        }

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The web page: chat, documents and settings, over this API."""
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Whether questions can be answered now: index and model loaded, queue reachable."""
        health = await anyio.to_thread.run_sync(executor.health)
        ready = (
            health["index"]["loaded"] and health["model"]["loaded"] and health["queue"]["reachable"]
        )
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", **health},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.text(), media_type="text/plain; version=0.0.4")

    app.add_middleware(Guard, limits=limits, api_key=api_key)
    if limits.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(limits.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


async def _completion_chunks(
    job_id: str, events: AsyncIterator[dict[str, Any]], include_usage: bool
) -> AsyncIterator[bytes]:
    """An answer's events as OpenAI chat.completion.chunk events, ending with [DONE]. The
    last chunk carries the grounded answer and its sources in its `docqa` field. A job run
    again (its worker was lost) streams on from where the first run's text stopped."""
    created = int(time.time())
    yield _sse(chunk(job_id, created, {"role": "assistant", "content": ""}))
    sent, fresh = "", ""
    async for event in events:
        kind = event["event"]
        if kind == "sources":
            fresh = ""
        elif kind == "token":
            fresh += event["text"]
            if len(fresh) > len(sent):
                yield _sse(chunk(job_id, created, {"content": fresh[len(sent) :]}))
                sent = fresh
        elif kind == "answer":
            # What grounding added to the streamed text (citations), or the whole answer
            # when none was streamed (the documents do not say): the deltas end as the
            # message of a plain request would read, whenever that is an extension of them.
            grounded = event.get("answer") or ""
            if grounded.startswith(sent) and grounded != sent:
                yield _sse(chunk(job_id, created, {"content": grounded[len(sent) :]}))
            yield _sse(chunk(job_id, created, {}, finish_reason(event), docqa=docqa_extra(event)))
            if include_usage:
                extra = {"usage": usage(event)}
                yield _sse({**chunk(job_id, created, {}), "choices": [], **extra})
        elif kind == "error":
            yield _sse(ApiError.of_job(event).body())
    yield b"data: [DONE]\n\n"


def _sse(document: dict[str, Any], name: str | None = None) -> bytes:
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
        return closing_events("cancelled", {"message": message, "type": "model"})
    return []


def _plain_file_name(name: str) -> bool:
    """A name without folders, parent references or control characters (the file is kept
    under its content hash whatever its name; a path in the name is a client's mistake or
    an attack, answered as such)."""
    return name.isprintable() and name not in ("", ".", "..") and not any(c in name for c in "/\\")


def _job(executor: Executor, job_id: str) -> JobRecord:
    record = executor.board.get(job_id) if len(job_id) <= 64 else None
    if record is None:
        raise ApiError(404, f"no job {job_id!r} (finished jobs are kept for a day)", "job_id")
    return record
