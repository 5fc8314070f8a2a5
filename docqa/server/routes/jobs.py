"""/v1/jobs: a question queued now and its answer read later; a job's state; its cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from docqa.collection import DEFAULT
from docqa.jobs.board import JobRecord
from docqa.jobs.runner import cancel_queued
from docqa.server.access import reach
from docqa.server.audit import Audited
from docqa.server.errors import ApiError, public_error
from docqa.server.following import submit
from docqa.server.keys import Principal
from docqa.server.schemas import AskBody, ask_request
from docqa.server.state import Caller, Owner, Served, ServerState

router = APIRouter(prefix="/v1/jobs")


@router.post("", status_code=202)
async def create_job(body: AskBody, state: Served, owner: Owner, audit: Audited) -> dict[str, Any]:
    """Queue a question; its answer is read later with GET /v1/jobs/{id}."""
    asked = ask_request(body, state.settings.llm.sampling, state.limits)
    job_id = await submit(state, body.applied(asked, state.settings), owner, audit)
    return {"job_id": job_id, "status": "queued"}


@router.get("/{job_id}")
def get_job(job_id: str, state: Served, caller: Caller) -> dict[str, Any]:
    return _public(_job(state, job_id, caller))


@router.delete("/{job_id}")
def cancel_job(job_id: str, state: Served, caller: Caller) -> dict[str, Any]:
    """Cancel a job: at once when it waits, at its next token when it runs."""
    record = _job(state, job_id, caller)
    if record.kind == "ingest" and not caller.may("editor"):
        raise ApiError(403, "an ingest is cancelled with an editor's key", code="forbidden")
    if not record.finished:
        state.executor.board.request_cancel(job_id)
        if record.status == "queued":
            cancel_queued(state.executor.board, job_id)
    return _public(_job(state, job_id, caller))


def _public(record: JobRecord) -> dict[str, Any]:
    shown = record.public()
    if record.error is not None:
        shown["error"] = public_error(record.error)
    return shown


def _job(state: ServerState, job_id: str, caller: Principal) -> JobRecord:
    """The job, when the key may see it: its own question, or an ingest of its collections
    (an admin's key: every job); 404 otherwise, as for a job there is not."""
    record = state.executor.board.get(job_id) if len(job_id) <= 64 else None
    visible = record is not None and (
        reach(caller) in (None, record.owner)
        or (record.kind == "ingest" and caller.sees(record.collection or DEFAULT))
    )
    if record is None or not visible:
        raise ApiError(404, f"no job {job_id!r} (finished jobs are kept for a day)", "job_id")
    return record
