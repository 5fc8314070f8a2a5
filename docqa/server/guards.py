"""What every request passes before the app reads its body: the API key (and a limit on
wrong ones), the origin check, and the body's size — bounded by its declared length at once,
and by the bytes that actually arrive (a chunked body declares none). Whether the request
carried the key is left in its scope's state (`request.state.authorized`), for the routes
open without one, and whose key it was (`request.state.owner`), for what a person keeps on
the server. And what makes a key strong enough to serve beyond loopback."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter, OrderedDict, deque
from typing import Any

import anyio
from starlette.exceptions import HTTPException

from docqa.config import ServerSettings
from docqa.server.errors import ApiError
from docqa.server.keys import NO_KEY_OWNER, Keys, Principal
from docqa.server.metrics import ASGIApp, Scope

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
OPEN_PATHS = ("/healthz", "/")  # for load balancers, and the page (which then asks for it)
AUTHORIZED = "authorized"  # the request state's flag: the key was sent (or none is needed)
OWNER = "owner"  # the request state's owner: whose key was sent (None: no key was)
PRINCIPAL = "principal"  # the request state's docqa.server.keys.Principal (None: no key)
# Every request to a server without any key: one person, who may do everything.
NO_KEY = Principal(NO_KEY_OWNER, "default", "admin", None)
UPLOAD_ROUTES = ("/v1/documents",)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around an uploaded file
WRONG_KEY_WINDOW_S = 60  # wrong keys are counted over the last minute...
WRONG_KEY_CLIENTS = 10_000  # ...for this many client addresses at most
# A key beyond loopback: this long, and this random as its characters' frequencies tell (a
# key of one repeated character has 0 bits, "password" four times 88, a random one ~200).
MIN_KEY_CHARS = 32
MIN_KEY_BITS = 96
MAKE_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class BodyTooLarge(HTTPException):
    """Raised while the app reads the body; FastAPI passes HTTP exceptions on unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class Guard:
    """ASGI middleware in front of the app: a request without the right bearer token, or sent
    by a web page of another origin (a browser's cross-site form post, DNS rebinding), is
    refused before a byte of its body is read; a body past its limit is cut off."""

    def __init__(self, app: ASGIApp, limits: ServerSettings, keys: Keys) -> None:
        self.app = app
        self.keys = keys
        # On loopback, a page elsewhere may still reach the API by a name of its own that
        # resolves to 127.0.0.1 (DNS rebinding): only loopback names are served there.
        self.hosts = LOOPBACK_NAMES if is_loopback(limits.host) else None
        self.wrong_keys = WrongKeys(limits.wrong_keys_per_minute)
        self.origins = set(limits.cors_origins)
        self.json_limit = limits.max_body_kb * 1024
        self.upload_limit = limits.max_upload_mb * 2**20 + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = await self._refusal(scope, headers)
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

    async def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> ApiError | None:
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and _name(host) not in self.hosts:
            return ApiError(421, f"this server answers for {sorted(self.hosts)}, not {host!r}")
        if origin and origin not in self.origins and origin not in _same_origins(host):
            return ApiError(403, f"requests from web pages of {origin} are not allowed")
        return await self._key_refusal(scope, headers.get(b"authorization"))

    async def _key_refusal(self, scope: Scope, sent: bytes | None) -> ApiError | None:
        """A wrong key, or none where one is needed; a client that sent too many wrong keys
        lately is refused before its key is even compared (a key is looked up in the key
        store, and its hash checked, in a thread: it takes milliseconds)."""
        required = await anyio.to_thread.run_sync(self.keys.required)
        principal = None if required else NO_KEY
        if sent is not None and required:
            client = (scope.get("client") or ("",))[0]
            wait = self.wrong_keys.wait(client)
            if wait:
                return ApiError(
                    429,
                    f"too many wrong API keys from this address: try again in {wait} s",
                    code="too_many_wrong_keys",
                    headers={"Retry-After": str(wait)},
                )
            scheme, _, token = sent.partition(b" ")
            if scheme.lower() == b"bearer":
                principal = await anyio.to_thread.run_sync(self.keys.principal, token.strip())
            if principal is None:
                self.wrong_keys.add(client)
        authorized = principal is not None
        scope.setdefault("state", {}).update(
            {AUTHORIZED: authorized, PRINCIPAL: principal, OWNER: principal and principal.owner}
        )
        path = scope["path"]
        if authorized or (sent is None and (path in OPEN_PATHS or path.startswith("/static/"))):
            return None
        return ApiError(
            401,
            "a valid API key is required: send 'Authorization: Bearer <your key>'",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


class WrongKeys:
    """The times of the last wrong keys from each client address: `limit` at most per address
    and WRONG_KEY_CLIENTS addresses (the one that failed longest ago is forgotten first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def wait(self, client: str) -> int:
        """Seconds until `client` may send a key again (0: now): until the oldest of its
        last `limit` wrong keys is a minute old."""
        times = self._times.get(client)
        if times is None or len(times) < self.limit:
            return 0
        return max(0, math.ceil(times[0] + WRONG_KEY_WINDOW_S - time.monotonic()))

    def add(self, client: str) -> None:
        times = self._times.pop(client, None) or deque(maxlen=self.limit)
        times.append(time.monotonic())
        self._times[client] = times
        if len(self._times) > WRONG_KEY_CLIENTS:
            self._times.popitem(last=False)


def key_weakness(key: str) -> str | None:
    """Why `key` is too weak to guard a server beyond loopback, or None."""
    if len(key) < MIN_KEY_CHARS:
        return f"it has {len(key)} of the {MIN_KEY_CHARS} characters needed"
    bits = sum(n * math.log2(len(key) / n) for n in Counter(key).values())
    if bits < MIN_KEY_BITS:
        return f"its characters repeat too much (about {bits:.0f} bits; {MIN_KEY_BITS} needed)"
    return None


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
