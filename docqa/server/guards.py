"""Request bodies bounded before the app reads them: by their declared length at once, and
by the bytes that actually arrive (a chunked body declares none)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from docqa.config import ServerSettings
from docqa.server.errors import ApiError
from docqa.server.metrics import ASGIApp, Scope

UPLOAD_ROUTES = ("/v1/documents",)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around an uploaded file


class BodyTooLarge(HTTPException):
    """Raised while the app reads the body; FastAPI passes HTTP exceptions on unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: ServerSettings) -> None:
        self.app = app
        self.json_limit = limits.max_body_kb * 1024
        self.upload_limit = limits.max_upload_mb * 2**20 + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in UPLOAD_ROUTES else self.json_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(limit, scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded_receive, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than the server's limit of {limit // 1024} KB"


async def _refuse(limit: int, scope: Scope, receive: Any, send: Any) -> None:
    await ApiError(413, _too_large(limit)).response()(scope, receive, send)
