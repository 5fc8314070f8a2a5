"""What a client or a monitor asks of the server itself: the web page, /v1/info (defaults and
limits), /healthz and /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from docqa import __version__
from docqa.server.guards import AUTHORIZED
from docqa.server.state import Served

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page: chat, documents and settings, over this API (its policy: headers.py)."""
    return FileResponse(STATIC / "index.html")


@router.get("/v1/info")
def info(state: Served) -> dict[str, Any]:
    """The defaults and limits a client (the page's settings) works within."""
    defaults, limits = state.settings.chat_sampling, state.limits
    return {
        "version": __version__,
        "defaults": {
            "k": state.reader.k,
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


@router.get("/healthz")
async def healthz(request: Request, state: Served) -> JSONResponse:
    """Whether questions can be answered now: index and model loaded, queue reachable. What
    is loaded, and which workers run, only for a request with the key (when one is set)."""
    health = await anyio.to_thread.run_sync(state.executor.health)
    ready = health["index"]["loaded"] and health["model"]["loaded"] and health["queue"]["reachable"]
    details = health if getattr(request.state, AUTHORIZED) else {}
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **details},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def prometheus(state: Served) -> Response:
    return Response(state.metrics.text(), media_type="text/plain; version=0.0.4")
