"""The audit trail: uploads, deletes, collections made and removed, and refused requests —
who (the API key's name), what, when, from where — appended as JSON lines to `audit.log` in
the server's state folder, rotated by size by the standard library's RotatingFileHandler.
Questions are counted per owner and collection, a line each minute (and at shutdown), unless
server.audit_questions logs each one with its text.

One API process writes the log: RotatingFileHandler does not coordinate the rotation of
several (see docs/limits.md)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from docqa.server.metrics import ASGIApp, Scope

FILE_NAME = "audit.log"
ROTATE_BYTES = 10 * 2**20
KEPT_FILES = 5  # audit.log.1 … audit.log.5, the oldest dropped
REFUSED = frozenset({401, 403, 413, 421, 429})  # a request turned away, not a mistake in it
MAX_PATH_CHARS = 200
COUNT_EVERY_S = 60


class AuditLog:
    """The server's audit log (the folder only its owner may open, the file only read)."""

    def __init__(self, folder: Path, questions: bool) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / FILE_NAME
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        self.handler = RotatingFileHandler(
            path, maxBytes=ROTATE_BYTES, backupCount=KEPT_FILES, encoding="utf-8"
        )
        self.questions = questions  # each question's text, not counts
        self._logger = logging.Logger("docqa.audit")  # of its own: no other handler sees it
        self._logger.addHandler(self.handler)
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counting_since = datetime.now(UTC)

    def record(self, action: str, who: str | None, client: str | None, **details: Any) -> None:
        """One line: when, the action, whose key (None: none was accepted), from where."""
        line = {"time": _now(), "action": action, "who": who, "from": client, **details}
        with self._lock:
            self._logger.info(json.dumps(line, ensure_ascii=False))

    def question(self, who: str, client: str | None, collection: str, text: str) -> None:
        """A question asked: logged with its text when server.audit_questions, else counted."""
        if self.questions:
            self.record("question", who, client, collection=collection, question=text)
            return
        with self._lock:
            self._counts[(who, collection)] += 1
        if (datetime.now(UTC) - self._counting_since).total_seconds() >= COUNT_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Log the questions counted since the last flush, a line per owner and collection."""
        with self._lock:
            counts, since = self._counts, self._counting_since
            self._counts, self._counting_since = Counter(), datetime.now(UTC)
        for (who, collection), count in sorted(counts.items()):
            started = since.isoformat(timespec="seconds")
            self.record("questions", who, None, collection=collection, count=count, since=started)

    def close(self) -> None:
        self.flush()
        self.handler.close()


def record_command(folder: Path, action: str, **details: Any) -> None:
    """A change made on the command line (keys, collections): by the system's user, "from"
    the command line."""
    import getpass

    log = AuditLog(folder, questions=False)
    try:
        log.record(action, getpass.getuser(), "command line", **details)
    finally:
        log.close()


def read_audit(folder: Path, since: datetime | None = None) -> list[dict[str, Any]]:
    """The audit log's lines, oldest first (the rotated files too), from `since` on."""
    files = [folder / f"{FILE_NAME}.{n}" for n in range(KEPT_FILES, 0, -1)]
    lines = []
    for path in [*files, folder / FILE_NAME]:
        if not path.is_file():
            continue
        for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:  # a line cut short by a full disk
                continue
            if since is None or datetime.fromisoformat(line["time"]) >= since:
                lines.append(line)
    return lines


class AuditRefusals:
    """ASGI middleware around the Guard: every request answered with a refusal (REFUSED: a
    wrong or missing key, another origin, too large, too many) is logged."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noting_refusal(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] in REFUSED:
                principal = scope.get("state", {}).get("principal")
                self.audit.record(
                    "refused",
                    principal and principal.name,
                    _client(scope),
                    method=scope["method"],
                    path=scope["path"][:MAX_PATH_CHARS],
                    status=message["status"],
                )
            await send(message)

        await self.app(scope, receive, noting_refusal)


@dataclass(frozen=True)
class RequestAudit:
    """The audit log as a route writes to it: as its request's owner, from its client."""

    log: AuditLog
    who: str | None
    client: str | None

    def record(self, action: str, **details: Any) -> None:
        self.log.record(action, self.who, self.client, **details)

    def question(self, collection: str, text: str) -> None:
        self.log.question(self.who or "", self.client, collection, text)


def request_audit(request: Request) -> RequestAudit:
    log: AuditLog = request.app.state.docqa.audit
    principal = getattr(request.state, "principal", None)
    return RequestAudit(log, principal and principal.name, _client(request.scope))


Audited = Annotated[RequestAudit, Depends(request_audit)]


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
