"""What every route works with — settings, the executor, metrics, the documents, the kept
conversations — kept on the app and handed to routes as a dependency; and whose request it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from docqa.answer.profiles import ReaderProfile
from docqa.config import ServerSettings, Settings
from docqa.server.access import reach, request_principal
from docqa.server.audit import AuditLog
from docqa.server.conversations import ConversationStore
from docqa.server.documents import CollectionDocuments
from docqa.server.executors import Executor
from docqa.server.fairness import KeyLimits
from docqa.server.keys import Principal
from docqa.server.metrics import Metrics


@dataclass(frozen=True)
class ServerState:
    settings: Settings
    executor: Executor
    metrics: Metrics
    documents: CollectionDocuments  # each collection's
    reader: ReaderProfile  # the defaults /v1/info reports
    conversations: ConversationStore
    audit: AuditLog
    key_limits: KeyLimits

    @property
    def limits(self) -> ServerSettings:
        return self.settings.server

    @property
    def queue_wait_s(self) -> float:
        """How long a question may wait for a runner (no worker running?) before it is given
        up."""
        return self.limits.request_timeout_s * (self.limits.max_queue + 1)


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.docqa
    return state


Served = Annotated[ServerState, Depends(server_state)]


def request_owner(request: Request) -> str:
    """Whose the conversations and jobs the request makes are: its API key's (guards.Guard)."""
    return request_principal(request).owner


def request_reach(request: Request) -> str | None:
    """Whose conversations and jobs the request may see: its key's own, or an admin's
    everyone's (None)."""
    return reach(request_principal(request))


Owner = Annotated[str, Depends(request_owner)]
Reach = Annotated[str | None, Depends(request_reach)]
Caller = Annotated[Principal, Depends(request_principal)]
