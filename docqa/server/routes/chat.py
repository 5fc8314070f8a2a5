"""OpenAI's chat completions over the index (POST /v1/chat/completions, GET /v1/models)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from docqa.collection import collections
from docqa.server.errors import ApiError
from docqa.server.following import answer_of, follow, sse, sse_response, submit
from docqa.server.schemas import (
    MODEL_ID,
    ChatBody,
    chat_request,
    chunk,
    completion,
    docqa_extra,
    finish_reason,
    usage,
)
from docqa.server.state import Served

router = APIRouter(prefix="/v1")


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatBody, state: Served) -> Response:
    """The last user message is the question, the messages before it the conversation."""
    asked = chat_request(body, state.settings.chat_sampling, state.limits)
    job_id = await submit(state, body.documents().applied(asked, state.settings))
    if not body.stream:
        return JSONResponse(completion(job_id, await answer_of(state, request, job_id)))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return sse_response(_completion_chunks(job_id, follow(state, job_id), include_usage))


@router.get("/models")
def models(state: Served) -> dict[str, Any]:
    """One model per collection: `docqa` answers from the default one, `docqa/<name>` from
    collection <name>."""
    names = [MODEL_ID, *(f"{MODEL_ID}/{c.name}" for c in collections(state.settings)[1:])]
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "docqa"} for name in names
        ],
    }


async def _completion_chunks(
    job_id: str, events: AsyncIterator[dict[str, Any]], include_usage: bool
) -> AsyncIterator[bytes]:
    """An answer's events as OpenAI chat.completion.chunk events, ending with [DONE]. The
    last chunk carries the grounded answer and its sources in its `docqa` field. A job run
    again (its worker was lost) streams on from where the first run's text stopped."""
    created = int(time.time())
    yield sse(chunk(job_id, created, {"role": "assistant", "content": ""}))
    sent, fresh = "", ""
    async for event in events:
        kind = event["event"]
        if kind == "sources":
            fresh = ""
        elif kind == "token":
            fresh += event["text"]
            if len(fresh) > len(sent):
                yield sse(chunk(job_id, created, {"content": fresh[len(sent) :]}))
                sent = fresh
        elif kind == "answer":
            # What grounding added to the streamed text (citations), or the whole answer
            # when none was streamed (the documents do not say): the deltas end as the
            # message of a plain request would read, whenever that is an extension of them.
            grounded = event.get("answer") or ""
            if grounded.startswith(sent) and grounded != sent:
                yield sse(chunk(job_id, created, {"content": grounded[len(sent) :]}))
            yield sse(chunk(job_id, created, {}, finish_reason(event), docqa=docqa_extra(event)))
            if include_usage:
                extra = {"usage": usage(event)}
                yield sse({**chunk(job_id, created, {}), "choices": [], **extra})
        elif kind == "error":
            yield sse(ApiError.of_job(event).body())
    yield b"data: [DONE]\n\n"
