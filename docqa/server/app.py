"""The HTTP API (`docqa serve`): routes that translate requests into jobs and jobs' events
into responses — JSON, server-sent events, or OpenAI chat completions. The work itself runs
wherever the executor runs it (docqa.server.executors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from docqa import __version__
from docqa.answer.profiles import profile_for
from docqa.config import Settings
from docqa.server.access import authorize
from docqa.server.audit import AuditLog, AuditRefusals
from docqa.server.conversations import ConversationStore
from docqa.server.documents import CollectionDocuments
from docqa.server.errors import install_handlers
from docqa.server.executors import Executor
from docqa.server.fairness import KeyLimits
from docqa.server.guards import Guard
from docqa.server.headers import SecurityHeaders
from docqa.server.keys import Keys, KeyStore
from docqa.server.metrics import ASGIApp, Metrics, RequestMetrics
from docqa.server.routes import answers, chat, collections, conversations, documents, health, jobs
from docqa.server.state import ServerState

THREADS = 128  # threads for blocking work: each request waiting for its job holds one


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        """The security headers outside every middleware, the one that answers an unexpected
        error with a 500 included (a middleware added with add_middleware runs inside it)."""
        return SecurityHeaders(super().build_middleware_stack())


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield
    state: ServerState = app.state.docqa
    state.audit.close()  # the questions counted since the last line
    state.documents.pages.close()


def create_app(settings: Settings, executor: Executor, api_key: str | None) -> FastAPI:
    limits = settings.server
    metrics = Metrics(executor.waiting)
    app = _App(
        title="docqa",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
        dependencies=[Depends(authorize)],  # every route: its key's role and collections
    )
    app.state.docqa = ServerState(
        settings,
        executor,
        metrics,
        CollectionDocuments(settings),
        profile_for(settings),
        ConversationStore(settings.paths.state),
        AuditLog(settings.paths.state, limits.audit_questions),
        KeyLimits(limits.key_questions_at_once, limits.key_questions_per_minute, executor.ended),
    )
    install_handlers(app)
    for routes in (answers, chat, jobs, documents, collections, conversations, health):
        app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=health.STATIC), name="static")
    keys = Keys(api_key, KeyStore(settings.paths.state))
    app.add_middleware(Guard, limits=limits, keys=keys)
    app.add_middleware(AuditRefusals, audit=app.state.docqa.audit)  # the Guard's refusals too
    if limits.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(limits.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
