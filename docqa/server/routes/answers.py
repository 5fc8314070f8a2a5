"""POST /v1/ask: docqa's own answers, as one JSON object or as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from docqa.jobs.board import END
from docqa.server.audit import Audited
from docqa.server.following import (
    answer_of,
    follow,
    sse,
    sse_response,
    submit,
    viewed,
    with_views,
)
from docqa.server.schemas import AskBody, ask_request
from docqa.server.state import Owner, Served

router = APIRouter()


@router.post("/v1/ask")
async def ask(
    request: Request,
    body: AskBody,
    state: Served,
    owner: Owner,
    audit: Audited,
    stream: Annotated[bool, Query()] = False,
) -> Response:
    """Answer a question: the same object as `main.py --json`, or (`?stream=true`) its events
    as server-sent events: sources, token…, answer, timings (or error)."""
    asked = body.applied(
        ask_request(body, state.settings.llm.sampling, state.limits), state.settings
    )
    job_id = await submit(state, asked, owner, audit)
    if not stream:
        answer = await answer_of(state, request, job_id)
        return JSONResponse(await viewed(state, answer, asked.collection))

    async def events() -> AsyncIterator[bytes]:
        async for event in with_views(state, follow(state, job_id), asked.collection):
            if event["event"] != END:
                yield sse(event, name=event["event"])

    return sse_response(events())
