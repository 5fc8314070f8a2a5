"""/v1/documents?collection=NAME: a document uploaded (kept under its content hash) and ingested;
the index's documents listed; a document removed; a page of one shown as an image — of the
default collection, or NAME's."""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request, UploadFile
from fastapi.responses import Response

from docqa.collection import DEFAULT
from docqa.index.pageview import (
    DEFAULT_DPI,
    MAX_DPI,
    MAX_QUOTE_CHARS,
    MIN_DPI,
    NoSuchPage,
    RenderError,
)
from docqa.server.audit import Audited
from docqa.server.errors import ApiError
from docqa.server.state import Served

router = APIRouter(prefix="/v1/documents")
# ?collection=NAME: the collection whose documents these are (the default when left out).
Collection = Annotated[str | None, Query(max_length=64)]


@router.post("", status_code=202)
async def upload(
    request: Request,
    file: UploadFile,
    state: Served,
    audit: Audited,
    collection: Collection = None,
) -> dict[str, Any]:
    """Add a document to the collection's data folder (named by its content) and ingest it."""
    name = file.filename or ""
    if not _plain_file_name(name):
        raise ApiError(400, "the file name must be a plain name, not a path", "file")
    size = file.size if file.size is not None else int(request.headers.get("content-length", 0))
    save = state.documents.of(collection).save
    document_id, new = await anyio.to_thread.run_sync(save, file.file, size, name)
    audit.record("upload", collection=collection or DEFAULT, document=document_id, name=name)
    job_id = await anyio.to_thread.run_sync(state.executor.submit_ingest, collection)
    return {"id": document_id, "object": "document", "new": new, "job_id": job_id}


@router.get("")
async def list_documents(state: Served, collection: Collection = None) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(state.documents.of(collection).listing)


@router.delete("/{document_id}")
async def delete_document(
    document_id: str, state: Served, audit: Audited, collection: Collection = None
) -> dict[str, Any]:
    delete = state.documents.of(collection).delete
    removed = await anyio.to_thread.run_sync(delete, document_id)
    audit.record("delete", collection=collection or DEFAULT, document=document_id, files=removed)
    job_id = await anyio.to_thread.run_sync(state.executor.submit_ingest, collection)
    return {"id": document_id, "deleted": removed, "job_id": job_id}


@router.get("/{document_id}/pages/{number}")
async def page_image(
    document_id: str,
    number: Annotated[int, Path(ge=1)],
    state: Served,
    collection: Collection = None,
    dpi: Annotated[int, Query(ge=MIN_DPI, le=MAX_DPI)] = DEFAULT_DPI,
    quote: Annotated[str, Query(max_length=MAX_QUOTE_CHARS)] = "",
) -> Response:
    """Page `number` of a PDF document as a PNG, the words of `quote` highlighted on it. The
    headers tell the document's page count and the highlighted rectangles (in pixels)."""
    path = await anyio.to_thread.run_sync(state.documents.of(collection).page_file, document_id)
    render = state.documents.pages.render
    try:
        image = await anyio.to_thread.run_sync(render, path, number, dpi, quote)
    except NoSuchPage as exc:
        raise ApiError(404, str(exc), "number") from None
    except RenderError as exc:
        raise ApiError(422, str(exc), "number", code="unrenderable") from None
    return Response(
        image.png,
        media_type="image/png",
        headers={
            "Cache-Control": "private, max-age=3600",
            "X-Docqa-Pages": str(image.pages),
            "X-Docqa-Highlights": json.dumps(image.highlights),
            "X-Docqa-Ocr": "true" if image.ocr else "false",
        },
    )


def _plain_file_name(name: str) -> bool:
    """A name without folders, parent references or control characters (the file is kept
    under its content hash whatever its name; a path in the name is a client's mistake or
    an attack, answered as such)."""
    return name.isprintable() and name not in ("", ".", "..") and not any(c in name for c in "/\\")
