"""OpenAI's chat completions over the index (POST /v1/chat/completions, GET /v1/models); a
completion may carry on a kept conversation (docqa.conversation), its turn then kept too."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from docqa.collection import DEFAULT, collections
from docqa.jobs.runner import AnswerRequest
from docqa.server.audit import Audited
from docqa.server.errors import ApiError
from docqa.server.following import (
    answer_of,
    follow,
    sse,
    sse_response,
    submit,
    viewed,
    with_views,
)
from docqa.server.schemas import (
    MODEL_ID,
    ChatBody,
    DocumentChoice,
    chat_request,
    chunk,
    completion,
    docqa_extra,
    finish_reason,
    usage,
)
from docqa.server.state import Caller, Owner, Reach, Served, ServerState

router = APIRouter(prefix="/v1")
Keep = Callable[[dict[str, Any]], Awaitable[None]]  # keeps an answer as a conversation's turn


@router.post("/chat/completions")
async def chat_completions(
    request: Request,
    body: ChatBody,
    state: Served,
    owner: Owner,
    reach: Reach,
    audit: Audited,
) -> Response:
    """The last user message is the question, the messages before it the conversation — or,
    with docqa.conversation, the turns kept of that conversation."""
    asked = chat_request(body, state.settings.chat_sampling, state.limits)
    documents = body.documents()
    conversation = body.docqa.conversation
    if conversation is not None:
        asked, documents = await _carried_on(state, reach, conversation, asked, documents)
    asked = documents.applied(asked, state.settings)
    keep = None if conversation is None else _keeper(state, reach, conversation, asked)
    job_id = await submit(state, asked, owner, audit)
    if not body.stream:
        answer = await answer_of(state, request, job_id)
        answer = await viewed(state, answer, asked.collection)
        if keep is not None:
            await keep(answer)
        return JSONResponse(completion(job_id, answer, conversation))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = with_views(state, follow(state, job_id), asked.collection)
    chunks = _completion_chunks(job_id, events, include_usage, keep, conversation)
    return sse_response(chunks)


@router.get("/models")
def models(state: Served, caller: Caller) -> dict[str, Any]:
    """One model per collection the key may use: `docqa` answers from the default one,
    `docqa/<name>` from collection <name>."""
    names = [
        MODEL_ID if c.name == DEFAULT else f"{MODEL_ID}/{c.name}"
        for c in collections(state.settings)
        if caller.sees(c.name)
    ]
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "docqa"} for name in names
        ],
    }


async def _carried_on(
    state: ServerState,
    reach: str | None,
    conversation: str,
    asked: AnswerRequest,
    documents: DocumentChoice,
) -> tuple[AnswerRequest, DocumentChoice]:
    """The question as the next turn of the owner's kept conversation: its turns the history
    (as many as a request's messages could carry), its collection the documents asked."""
    continued = state.conversations.continued
    last = state.limits.max_messages // 2
    collection, history = await anyio.to_thread.run_sync(continued, reach, conversation, last)
    if documents.collection not in (None, collection):
        raise ApiError(
            400,
            f"conversation {conversation} is over collection {collection!r}, not "
            f"{documents.collection!r}",
            param="docqa.collection",
        )
    asked = asked.model_copy(update={"history": history})
    return asked, documents.model_copy(update={"collection": collection})


def _keeper(state: ServerState, reach: str | None, conversation: str, asked: AnswerRequest) -> Keep:
    """What keeps the answer to `asked` as the conversation's next turn, with the settings it
    was asked with (k: the server's default when the request gave none)."""
    settings = {"collection": asked.collection, "k": asked.k or state.reader.k, **asked.sampling}

    async def keep(answer: dict[str, Any]) -> None:
        turn = {key: value for key, value in answer.items() if key != "event"}
        add = state.conversations.add_turn
        await anyio.to_thread.run_sync(add, reach, conversation, {**turn, "settings": settings})

    return keep


async def _completion_chunks(
    job_id: str,
    events: AsyncIterator[dict[str, Any]],
    include_usage: bool,
    keep: Keep | None,
    conversation: str | None,
) -> AsyncIterator[bytes]:
    """An answer's events as OpenAI chat.completion.chunk events, ending with [DONE]. The
    last chunk carries the grounded answer and its sources in its `docqa` field; the answer
    is kept (`keep`) before it is sent, and a stream stopped before the answer keeps nothing.
    A job run again (its worker was lost) streams on from where the first run's text stopped."""
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
            try:
                if keep is not None:
                    await keep(event)
            except ApiError as exc:  # the conversation was deleted, or filled, meanwhile
                yield sse(exc.body())
                continue
            answered = docqa_extra(event, conversation)
            yield sse(chunk(job_id, created, {}, finish_reason(event), docqa=answered))
            if include_usage:
                extra = {"usage": usage(event)}
                yield sse({**chunk(job_id, created, {}), "choices": [], **extra})
        elif kind == "error":
            yield sse(ApiError.of_job(event).body())
    yield b"data: [DONE]\n\n"
