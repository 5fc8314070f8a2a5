"""Who may do what, decided in one place. Every route names the role it needs and where the
collection it acts on is named (RULES); `authorize`, a dependency of the whole app, checks the
request's key against both: a role short of the route's is 403, a collection outside the
key's is 404 with the message of one that does not exist (its existence is not revealed; the
audit log records the attempt).
A route missing from RULES is refused (tests/test_keys.py checks that none is).

Jobs and conversations are the key's own (`reach`): an admin's reach is everyone's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import anyio
from fastapi import Request

from docqa.collection import DEFAULT, collections
from docqa.errors import UsageError
from docqa.server.audit import request_audit
from docqa.server.errors import ApiError
from docqa.server.guards import PRINCIPAL
from docqa.server.keys import Principal, Role

# Where a route's collection is named: the ?collection= query, the path's {name}, the JSON
# body's "collection", a chat completion's model ("docqa/<name>"), docqa.collection or kept
# conversation; None: the route acts on no one collection.
Named = Literal["query", "path", "body", "chat"] | None


@dataclass(frozen=True)
class Rule:
    role: Role | None  # None: open to every request, with a key or without
    collection: Named = None


READ, EDIT = Rule("reader", "query"), Rule("editor", "query")
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): Rule(None),
    ("GET", "/healthz"): Rule(None),
    ("GET", "/metrics"): Rule("admin"),
    ("GET", "/v1/info"): Rule("reader"),
    ("GET", "/v1/models"): Rule("reader"),  # its own collections only
    ("POST", "/v1/ask"): Rule("reader", "body"),
    ("POST", "/v1/jobs"): Rule("reader", "body"),
    ("GET", "/v1/jobs/{job_id}"): Rule("reader"),  # its own jobs only
    ("DELETE", "/v1/jobs/{job_id}"): Rule("reader"),
    ("POST", "/v1/chat/completions"): Rule("reader", "chat"),
    ("GET", "/v1/documents"): READ,
    ("GET", "/v1/documents/{document_id}/pages/{number}"): READ,
    ("POST", "/v1/documents"): EDIT,
    ("DELETE", "/v1/documents/{document_id}"): EDIT,
    ("GET", "/v1/collections"): Rule("reader"),  # its own collections only
    ("POST", "/v1/collections"): Rule("admin"),
    ("DELETE", "/v1/collections/{name}"): Rule("admin", "path"),
    ("GET", "/v1/conversations"): Rule("reader"),  # its own conversations only
    ("POST", "/v1/conversations"): Rule("reader", "body"),
    ("GET", "/v1/conversations/{conversation_id}"): Rule("reader"),
    ("PATCH", "/v1/conversations/{conversation_id}"): Rule("reader"),
    ("DELETE", "/v1/conversations/{conversation_id}"): Rule("reader"),
    ("GET", "/v1/conversations/{conversation_id}/export"): Rule("reader"),
}
WHAT = {"editor": "upload or delete documents", "admin": "manage collections or read metrics"}


async def authorize(request: Request) -> None:
    """Refuse the request unless its key's role and collections allow the route."""
    route = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    rule = RULES.get((method, getattr(route, "path", "")))
    if rule is None:
        raise ApiError(403, "this route has no access rule: refused", code="forbidden")
    if rule.role is None:
        return
    principal = request_principal(request)
    if not principal.may(rule.role):
        raise ApiError(
            403,
            f"the key of {principal.name} ({principal.role}) may not {WHAT[rule.role]}: "
            f"that needs an {rule.role}'s key",
            code="forbidden",
        )
    if principal.collections is not None and rule.collection is not None:
        named = await _collection_named(request, rule.collection)
        await anyio.to_thread.run_sync(check_collection, request, principal, named)


def check_collection(request: Request, principal: Principal, name: str) -> None:
    """404 for a collection outside the key's, or one of its that no longer exists — with
    the message of an unknown one, naming only the key's own."""
    settings = request.app.state.docqa.settings
    existing = {c.name for c in collections(settings)}
    if principal.sees(name) and name in existing:
        return
    own = ", ".join(sorted(c for c in existing if principal.sees(c))) or "none"
    request_audit(request).record(
        "refused", method=request.method, path=request.url.path, status=404, collection=name
    )
    raise ApiError(404, f"no collection {name!r}: there are {own}", param="collection")


def request_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, PRINCIPAL, None)
    assert principal is not None, "only open routes have no key (the Guard refused the rest)"
    return principal


def reach(principal: Principal) -> str | None:
    """Whose jobs and conversations a key may see: its own, or (None) everyone's."""
    return None if principal.may("admin") else principal.owner


async def _collection_named(request: Request, where: Named) -> str:
    if where == "query":
        return request.query_params.get("collection") or DEFAULT
    if where == "path":
        return str(request.path_params["name"])
    body = await _json(request)
    if where == "body":
        return str(body.get("collection") or DEFAULT)
    found = body.get("docqa")
    extension: dict[str, Any] = found if isinstance(found, dict) else {}
    model = str(body.get("model") or "")
    named = model.removeprefix("docqa").removeprefix("/") or extension.get("collection")
    if named:
        return str(named)
    if conversation := extension.get("conversation"):
        return await _conversation_collection(request, str(conversation))
    return DEFAULT


async def _conversation_collection(request: Request, conversation_id: str) -> str:
    """The collection of a conversation the request carries on (the default when it has
    none such: the route then answers 404 for the conversation)."""
    get = request.app.state.docqa.conversations.get
    kept = await anyio.to_thread.run_sync(get, reach(request_principal(request)), conversation_id)
    return str(kept["collection"]) if kept else DEFAULT


async def _json(request: Request) -> dict[str, Any]:
    """The JSON body as an object (the route reads it again, from the same bytes); {} when
    it is not one: the route then answers 400."""
    try:
        body = await request.json()
    except (ValueError, UsageError):
        return {}
    return body if isinstance(body, dict) else {}
