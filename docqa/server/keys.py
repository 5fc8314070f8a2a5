"""API keys, one per person: a name, a role (reader, editor, admin) and the collections the key
may use (all of them, or a list). Kept in `keys.sqlite3` in the server's state folder (only its
owner may read it), each token stored as a salted scrypt hash (hashlib.scrypt: slow to guess,
in the standard library), never as itself.

A token reads `dq_<id>_<secret>`: its id finds the key, its secret is checked against the
hash in constant time. Every request looks its key up again, so a revoked key is refused from
the next request on, in every API process; the slow hash is computed once per token and
process (a verified token's SHA-256 is remembered).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from docqa.errors import ConfigError, UsageError

Role = Literal["reader", "editor", "admin"]
NO_KEY_OWNER = "default"  # whose every request is on a server without keys: its one user
ROLES: tuple[Role, ...] = get_args(Role)  # each may do what the ones before it may
FILE_NAME = "keys.sqlite3"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN = re.compile(r"dq_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MB and ~50 ms a hash
LAST_USED_EVERY_S = 60  # "last used" is written at most this often per key
BUSY_TIMEOUT_S = 10.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    collections TEXT,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created REAL NOT NULL,
    last_used REAL,
    revoked REAL
);
"""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from, and what it may do."""

    owner: str  # what their conversations and jobs are kept under
    name: str  # as the audit log and `docqa keys list` name them
    role: Role
    collections: frozenset[str] | None  # None: every collection

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def sees(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


@dataclass(frozen=True)
class KeyInfo:
    name: str
    role: Role
    collections: tuple[str, ...] | None
    created: float
    last_used: float | None


class KeyStore:
    """The keys in `<folder>/keys.sqlite3` (the folder 0o700, the file 0o600)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self._verified: dict[str, bytes] = {}  # key id -> SHA-256 of its verified token
        self._written: dict[str, float] = {}  # key id -> when its last use was written
        self._lock = threading.Lock()
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            with self._connection() as db:
                db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot keep API keys in {folder} (paths.state): {exc}") from exc

    def add(self, name: str, role: Role, collections: list[str] | None) -> str:
        """A new key: its token, the only time it is shown."""
        if not _NAME.fullmatch(name):
            raise UsageError(
                f"invalid key name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-'"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        scope = None if collections is None else json.dumps(sorted(set(collections)))
        row = (key_id, name, role, scope, salt, _hash(secret, salt), time.time(), None, None)
        with self._connection() as db:
            db.execute("DELETE FROM keys WHERE name = ? AND revoked IS NOT NULL", (name,))
            try:
                db.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                raise UsageError(f"a key named {name!r} exists: revoke it first") from None
        return f"dq_{key_id}_{secret}"

    def listing(self) -> list[KeyInfo]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT name, role, collections, created, last_used FROM keys "
                "WHERE revoked IS NULL ORDER BY name"
            ).fetchall()
        return [
            KeyInfo(name, role, None if scope is None else tuple(json.loads(scope)), made, used)
            for name, role, scope, made, used in rows
        ]

    def revoke(self, name: str) -> bool:
        """Refuse NAME's key from now on. It is kept, marked revoked: a server whose every key
        was revoked still needs a key, rather than opening to anyone."""
        with self._connection() as db:
            update = "UPDATE keys SET revoked = ? WHERE name = ? AND revoked IS NULL"
            return db.execute(update, (time.time(), name)).rowcount > 0

    def any(self) -> bool:
        """Whether a key was ever made (then every request needs one)."""
        with self._connection() as db:
            return db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None

    def verify(self, token: str) -> Principal | None:
        """The key's holder, or None for a token of no key (revoked, or never made)."""
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        key_id, secret = found.groups()
        with self._connection() as db:
            row = db.execute(
                "SELECT name, role, collections, salt, hash FROM keys "
                "WHERE id = ? AND revoked IS NULL",
                (key_id,),
            ).fetchone()
        if row is None:
            return None
        name, role, scope, salt, stored = row
        seen = hashlib.sha256(token.encode()).digest()
        with self._lock:
            known = self._verified.get(key_id)
        if known is None or not secrets.compare_digest(known, seen):
            if not secrets.compare_digest(_hash(secret, salt), stored):
                return None
            with self._lock:
                self._verified[key_id] = seen
        self._note_use(key_id)
        collections = None if scope is None else frozenset(json.loads(scope))
        return Principal(f"key:{key_id}", name, role, collections)

    def _note_use(self, key_id: str) -> None:
        now = time.time()
        with self._lock:
            if now - self._written.get(key_id, 0.0) < LAST_USED_EVERY_S:
                return
            self._written[key_id] = now
        with self._connection() as db:
            db.execute("UPDATE keys SET last_used = ? WHERE id = ?", (now, key_id))

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one operation, committed at its end."""
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as db, db:
            yield db


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **SCRYPT)


class Keys:
    """Every key a server takes: DOCQA_API_KEY (an admin's of every collection, for one-person
    use) and the key store's."""

    def __init__(self, api_key: str | None, store: KeyStore) -> None:
        self.store = store
        self.admin = (
            (api_key.encode(), Principal(key_owner(api_key), "DOCQA_API_KEY", "admin", None))
            if api_key
            else None
        )

    def required(self) -> bool:
        """Whether a request needs a key: one is set, or one was made."""
        return self.admin is not None or self.store.any()

    def principal(self, token: bytes) -> Principal | None:
        """Whose key `token` is, or None."""
        if self.admin is not None and secrets.compare_digest(token, self.admin[0]):
            return self.admin[1]
        try:
            return self.store.verify(token.decode("ascii"))
        except UnicodeDecodeError:
            return None


def key_owner(key: str) -> str:
    """Who a DOCQA_API_KEY's requests belong to, named without the key."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
