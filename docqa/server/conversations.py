"""Kept conversations: each one's turns (answers, sources and the settings used) in a SQLite
file of the server's state folder, and each the property of the owner (API key) that made it —
no operation reads or changes another owner's.

SQLite rather than Redis: conversations are a person's data and must outlive a restart in
inline mode too, where there is no Redis; and with its write-ahead log the API processes of
one host share the file safely (readers do not wait for a writer, writers take turns).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from docqa.errors import ConfigError
from docqa.server.errors import ApiError
from docqa.text import invalid_character

FILE_NAME = "conversations.sqlite3"
BUSY_TIMEOUT_S = 10.0  # how long an operation waits for another's write to end
MAX_TITLE_CHARS = 200
DEFAULT_TITLE_CHARS = 80  # an untitled conversation is named by this much of its first question
MAX_TURNS = 1000  # in one conversation
MAX_CONVERSATIONS = 10_000  # of one owner
SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    collection TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    turns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    turn TEXT NOT NULL,
    PRIMARY KEY (conversation, number)
);
"""
SUMMARY = "SELECT id, title, collection, created, updated, turns FROM conversations"
OWNED = "(? IS NULL OR owner = ?)"  # the owner's (None: an admin's reach, everyone's)
Summary = tuple[str, str, str, float, float, int]  # a row of SUMMARY


class NoSuchConversation(ApiError):
    """The owner has no conversation of that id (another owner's is not told apart)."""

    def __init__(self) -> None:
        super().__init__(404, "no such conversation", code="conversation_not_found")


class ConversationStore:
    """Every owner's conversations in `<folder>/conversations.sqlite3`: the folder only its
    owner may open (0o700), the file only its owner may read (0o600)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # before SQLite does
            with closing(self._connect()) as db:
                db.execute("PRAGMA journal_mode = WAL")  # kept by the file
                db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot keep conversations in {folder} (paths.state): {exc}"
            ) from exc

    def create(self, owner: str, collection: str, title: str = "") -> dict[str, Any]:
        """A new conversation over `collection`, titled by its first question unless `title`
        names it; 400 when the owner keeps as many as they may."""
        now = time.time()
        row = ("conv_" + secrets.token_hex(12), _checked_title(title), collection, now, now, 0)
        with self._transaction(write=True) as db:
            query = "SELECT COUNT(*) FROM conversations WHERE owner = ?"
            if db.execute(query, (owner,)).fetchone()[0] >= MAX_CONVERSATIONS:
                raise ApiError(
                    400,
                    f"at most {MAX_CONVERSATIONS} conversations are kept for each API key: "
                    "delete some to start another",
                    code="too_many_conversations",
                )
            insert = "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)"
            db.execute(insert, (row[0], owner, *row[1:]))
        return {**_summary(row), "turns": []}

    def listing(self, owner: str | None) -> list[dict[str, Any]]:
        """The owner's conversations (None: everyone's), the one most lately added to (or
        made) first."""
        with self._transaction() as db:
            query = f"{SUMMARY} WHERE {OWNED} ORDER BY updated DESC"
            rows = db.execute(query, (owner, owner))
            return [_summary(row) for row in rows]

    def get(self, owner: str | None, conversation_id: str) -> dict[str, Any] | None:
        """The conversation with its turns in order; None when the owner has none such."""
        with self._transaction() as db:
            row = _owned(db, owner, conversation_id)
            if row is None:
                return None
            query = "SELECT turn FROM turns WHERE conversation = ? ORDER BY number"
            turns = [json.loads(turn) for (turn,) in db.execute(query, (conversation_id,))]
        return {**_summary(row), "turns": turns}

    def rename(self, owner: str | None, conversation_id: str, title: str) -> dict[str, Any] | None:
        """The conversation, titled `title`; None when the owner has none such."""
        title = _checked_title(title)
        if not title:
            raise ApiError(400, "the title is empty", param="title")
        with self._transaction(write=True) as db:
            update = f"UPDATE conversations SET title = ? WHERE id = ? AND {OWNED}"
            db.execute(update, (title, conversation_id, owner, owner))
            row = _owned(db, owner, conversation_id)
        return None if row is None else _summary(row)

    def delete(self, owner: str | None, conversation_id: str) -> bool:
        """Remove the conversation and its turns; False when the owner has none such."""
        with self._transaction(write=True) as db:
            query = f"DELETE FROM conversations WHERE id = ? AND {OWNED}"
            return db.execute(query, (conversation_id, owner, owner)).rowcount > 0

    def continued(
        self, owner: str | None, conversation_id: str, last: int
    ) -> tuple[str, list[tuple[str, str]]]:
        """What carrying on a conversation needs: its collection and its last `last`
        (question, answer) turns; 404 when the owner has none such, 400 when it is full."""
        with self._transaction() as db:
            row = _owned(db, owner, conversation_id)
            if row is None:
                raise NoSuchConversation()
            _check_room(row)
            query = (
                "SELECT question, answer FROM turns WHERE conversation = ? "
                "AND answer IS NOT NULL ORDER BY number DESC LIMIT ?"
            )
            turns = db.execute(query, (conversation_id, last)).fetchall()
        return row[2], [(question, answer) for question, answer in reversed(turns)]

    def add_turn(self, owner: str | None, conversation_id: str, turn: dict[str, Any]) -> None:
        """Keep `turn` (an answer's JSON, answer_dict's form, and the settings it was asked
        with) as the conversation's next; 404 when the owner has none such, 400 when full."""
        question = turn["question"]
        with self._transaction(write=True) as db:
            row = _owned(db, owner, conversation_id)
            if row is None:
                raise NoSuchConversation()
            _check_room(row)
            number = row[5]  # the turns it has
            db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                (conversation_id, number, question, turn.get("answer"), json.dumps(turn)),
            )
            db.execute(
                "UPDATE conversations SET turns = ?, updated = ?, "
                "title = CASE title WHEN '' THEN ? ELSE title END WHERE id = ?",
                (number + 1, time.time(), question[:DEFAULT_TITLE_CHARS], conversation_id),
            )

    def _connect(self) -> sqlite3.Connection:
        # No transactions begun behind the code's back: _transaction says where they are.
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one operation (the routes' threads each open theirs),
        in one transaction: committed when the operation ends, rolled back if it fails. A
        writing one holds the write lock from its start, so what it read stays true."""
        with closing(self._connect()) as db:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")  # not reached when the operation raised: closing rolls back


def _owned(db: sqlite3.Connection, owner: str | None, conversation_id: str) -> Summary | None:
    row: Summary | None = db.execute(
        f"{SUMMARY} WHERE id = ? AND {OWNED}", (conversation_id, owner, owner)
    ).fetchone()
    return row


def _summary(row: Summary) -> dict[str, Any]:
    conversation_id, title, collection, created, updated, turns = row
    return {
        "id": conversation_id,
        "object": "conversation",
        "title": title,
        "collection": collection,
        "created": int(created),
        "updated": int(updated),
        "turns": turns,
    }


def _check_room(row: Summary) -> None:
    if row[5] >= MAX_TURNS:
        raise ApiError(
            400,
            f"a conversation keeps at most {MAX_TURNS} turns: start a new one",
            code="conversation_full",
        )


def _checked_title(title: str) -> str:
    """The title as kept (without surrounding spaces), or a 400 for one too long or not text."""
    if len(title) > MAX_TITLE_CHARS:
        raise ApiError(400, f"the title is longer than {MAX_TITLE_CHARS} characters", "title")
    if (problem := invalid_character(title)) is not None:
        raise ApiError(400, f"the title holds {problem}", "title", code="invalid_character")
    return title.strip()
