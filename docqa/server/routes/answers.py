"""POST /v1/ask: docqa's own answers, as one JSON object or as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from docqa.jobs.board import END
from docqa.server.following import answer_of, follow, sse, sse_response, submit
from docqa.server.schemas import AskBody, ask_request
from docqa.server.state import Served

router = APIRouter()


@router.post("/v1/ask")
async def ask(
    request: Request, body: AskBody, state: Served, stream: Annotated[bool, Query()] = False
) -> Response:
    """Answer a question: the same object as `main.py --json`, or (`?stream=true`) its events
    as server-sent events: sources, token…, answer, timings (or error)."""
    asked = ask_request(body, state.settings.llm.sampling, state.limits)
    job_id = await submit(state, body.applied(asked, state.settings))
    if not stream:
        return JSONResponse(await answer_of(state, request, job_id))

    async def events() -> AsyncIterator[bytes]:
        async for event in follow(state, job_id):
            if event["event"] != END:
                yield sse(event, name=event["event"])

    return sse_response(events())
