"""/v1/documents?collection=NAME: a document uploaded (kept under its content hash) and ingested;
the index's documents listed; a document removed — of the default collection, or NAME's."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, UploadFile

from docqa.server.errors import ApiError
from docqa.server.state import Served

router = APIRouter(prefix="/v1/documents")
# ?collection=NAME: the collection whose documents these are (the default when left out).
Collection = Annotated[str | None, Query(max_length=64)]


@router.post("", status_code=202)
async def upload(
    request: Request, file: UploadFile, state: Served, collection: Collection = None
) -> dict[str, Any]:
    """Add a document to the collection's data folder (named by its content) and ingest it."""
    name = file.filename or ""
    if not _plain_file_name(name):
        raise ApiError(400, "the file name must be a plain name, not a path", "file")
    size = file.size if file.size is not None else int(request.headers.get("content-length", 0))
    save = state.documents.of(collection).save
    document_id, new = await anyio.to_thread.run_sync(save, file.file, size, name)
    job_id = await anyio.to_thread.run_sync(state.executor.submit_ingest, collection)
    return {"id": document_id, "object": "document", "new": new, "job_id": job_id}


@router.get("")
async def list_documents(state: Served, collection: Collection = None) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(state.documents.of(collection).listing)


@router.delete("/{document_id}")
async def delete_document(
    document_id: str, state: Served, collection: Collection = None
) -> dict[str, Any]:
    delete = state.documents.of(collection).delete
    removed = await anyio.to_thread.run_sync(delete, document_id)
    job_id = await anyio.to_thread.run_sync(state.executor.submit_ingest, collection)
    return {"id": document_id, "deleted": removed, "job_id": job_id}


def _plain_file_name(name: str) -> bool:
    """A name without folders, parent references or control characters (the file is kept
    under its content hash whatever its name; a path in the name is a client's mistake or
    an attack, answered as such)."""
    return name.isprintable() and name not in ("", ".", "..") and not any(c in name for c in "/\\")
