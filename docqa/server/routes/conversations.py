"""/v1/conversations: the conversations kept on the server — listed, started, read, renamed,
deleted, exported as Markdown — each only for the API key that made it (another key's is "no
such conversation"). Chat completions add their turns (docqa.conversation)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from docqa.answer.transcript import transcript
from docqa.server.conversations import NoSuchConversation
from docqa.server.schemas import known_collection
from docqa.server.state import Owner, Reach, Served, ServerState

router = APIRouter(prefix="/v1/conversations")


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = ""  # empty: its first question names it
    collection: str | None = None  # the default one when left out


class Renaming(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str


@router.get("")
async def list_conversations(state: Served, reach: Reach) -> dict[str, Any]:
    listed = await anyio.to_thread.run_sync(state.conversations.listing, reach)
    return {"object": "list", "data": listed}


@router.post("", status_code=201)
async def create_conversation(body: NewConversation, state: Served, owner: Owner) -> dict[str, Any]:
    collection = known_collection(state.settings, body.collection)
    create = state.conversations.create
    return await anyio.to_thread.run_sync(create, owner, collection, body.title)


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: str, state: Served, reach: Reach) -> dict[str, Any]:
    return await _kept(state, reach, conversation_id)


@router.patch("/{conversation_id}")
async def rename_conversation(
    conversation_id: str, body: Renaming, state: Served, reach: Reach
) -> dict[str, Any]:
    rename = state.conversations.rename
    renamed = await anyio.to_thread.run_sync(rename, reach, conversation_id, body.title)
    if renamed is None:
        raise NoSuchConversation()
    return renamed


@router.delete("/{conversation_id}")
async def delete_conversation(conversation_id: str, state: Served, reach: Reach) -> dict[str, Any]:
    delete = state.conversations.delete
    if not await anyio.to_thread.run_sync(delete, reach, conversation_id):
        raise NoSuchConversation()
    return {"id": conversation_id, "object": "conversation", "deleted": True}


@router.get("/{conversation_id}/export")
async def export_conversation(conversation_id: str, state: Served, reach: Reach) -> Response:
    """The conversation as Markdown, as `docqa chat`'s /save writes one; the file is named by
    the conversation's id (its title is the client's text, never a file name)."""
    kept = await _kept(state, reach, conversation_id)
    return Response(
        transcript(kept["turns"], kept["title"] or kept["id"]),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kept["id"]}.md"'},
    )


async def _kept(state: ServerState, reach: str | None, conversation_id: str) -> dict[str, Any]:
    kept = await anyio.to_thread.run_sync(state.conversations.get, reach, conversation_id)
    if kept is None:
        raise NoSuchConversation()
    return kept
