"""/v1/collections: the collections listed (each with what its index holds), made, and
deleted (its index; its data folder stays). A collection made over HTTP keeps its documents in
a data folder of its own: a client never names a path."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from docqa.collection import DEFAULT, CollectionExists, collections, create, delete, described
from docqa.errors import UsageError
from docqa.server.audit import Audited
from docqa.server.errors import ApiError
from docqa.server.state import Caller, Served

router = APIRouter(prefix="/v1/collections")


class CollectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


@router.get("")
async def list_collections(state: Served, caller: Caller) -> dict[str, Any]:
    """The collections the key may use."""
    listed = await anyio.to_thread.run_sync(collections, state.settings)
    data = [_public(described(c)) for c in listed if caller.sees(c.name)]
    return {"object": "list", "data": data}


@router.post("", status_code=201)
async def create_collection(body: CollectionBody, state: Served, audit: Audited) -> dict[str, Any]:
    try:
        made = await anyio.to_thread.run_sync(create, state.settings, body.name)
    except CollectionExists:
        raise ApiError(409, f"collection {body.name!r} exists already", "name") from None
    except UsageError as exc:
        raise ApiError(400, str(exc), "name") from None
    audit.record("collection created", collection=made.name)
    return _public(described(made))


@router.delete("/{name}")
async def delete_collection(name: str, state: Served, audit: Audited) -> dict[str, Any]:
    if name == DEFAULT:
        raise ApiError(400, f"the {DEFAULT!r} collection cannot be deleted", "name")
    try:
        gone = await anyio.to_thread.run_sync(delete, state.settings, name)
    except UsageError as exc:
        raise ApiError(404, str(exc), "name") from None
    audit.record("collection deleted", collection=gone.name)
    return {"name": gone.name, "deleted": True}


def _public(summary: dict[str, Any]) -> dict[str, Any]:
    """A collection as clients see it: not where it is on the server's disk."""
    return {key: value for key, value in summary.items() if key != "data"}
