"""What every request passes before the app reads its body: the API key, the origin check,
and the body's size — bounded by its declared length at once, and by the bytes that actually
arrive (a chunked body declares none). Whether the request carried the key is left in its
scope's state (`request.state.authorized`), for the routes open without one."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from starlette.exceptions import HTTPException

from docqa.config import ServerSettings
from docqa.server.errors import ApiError
from docqa.server.metrics import ASGIApp, Scope

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
OPEN_PATHS = ("/healthz", "/")  # for load balancers, and the page (which then asks for it)
AUTHORIZED = "authorized"  # the request state's flag: the key was sent (or none is needed)
UPLOAD_ROUTES = ("/v1/documents",)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around an uploaded file


class BodyTooLarge(HTTPException):
    """Raised while the app reads the body; FastAPI passes HTTP exceptions on unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class Guard:
    """ASGI middleware in front of the app: a request without the right bearer token, or sent
    by a web page of another origin (a browser's cross-site form post, DNS rebinding), is
    refused before a byte of its body is read; a body past its limit is cut off."""

    def __init__(self, app: ASGIApp, limits: ServerSettings, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        # On loopback, a page elsewhere may still reach the API by a name of its own that
        # resolves to 127.0.0.1 (DNS rebinding): only loopback names are served there.
        self.hosts = LOOPBACK_NAMES if is_loopback(limits.host) else None
        self.origins = set(limits.cors_origins)
        self.json_limit = limits.max_body_kb * 1024
        self.upload_limit = limits.max_upload_mb * 2**20 + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal.response()(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in UPLOAD_ROUTES else self.json_limit
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await ApiError(413, _too_large(limit)).response()(scope, receive, send)
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

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> ApiError | None:
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and _name(host) not in self.hosts:
            return ApiError(421, f"this server answers for {sorted(self.hosts)}, not {host!r}")
        if origin and origin not in self.origins and origin not in _same_origins(host):
            return ApiError(403, f"requests from web pages of {origin} are not allowed")
        sent = headers.get(b"authorization")
        authorized = self.api_key is None or (sent is not None and self._is_key(sent))
        scope.setdefault("state", {})[AUTHORIZED] = authorized
        path = scope["path"]
        is_open = path in OPEN_PATHS or path.startswith("/static/")
        if not authorized and (sent is not None or not is_open):
            return ApiError(
                401,
                "a valid API key is required: send 'Authorization: Bearer <DOCQA_API_KEY>'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    def _is_key(self, authorization: bytes) -> bool:
        assert self.api_key is not None
        scheme, _, token = authorization.partition(b" ")
        return scheme.lower() == b"bearer" and secrets.compare_digest(token.strip(), self.api_key)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _name(host: str) -> str:
    """The host name of a Host header, without its port."""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 or "]" in host else host


def _same_origins(host: str) -> set[str]:
    """The origins of the API's own pages, for the Host the request was sent to."""
    return {f"http://{host}", f"https://{host}"} if host else set()


def _too_large(limit: int) -> str:
    return f"the request body is larger than the server's limit of {limit // 1024} KB"
