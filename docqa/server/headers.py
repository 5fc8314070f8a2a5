"""The headers every response carries: no guessing of content types, and on HTML a policy that
runs only the page's own script and styles (nothing a document holds can add any), shows only
its own images (page images, fetched with the API key, are shown as blob: URLs) and lets no
other site frame it."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders

from docqa.server.metrics import ASGIApp, Scope

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """ASGI middleware: X-Content-Type-Options on every response, Content-Security-Policy on
    HTML ones."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
