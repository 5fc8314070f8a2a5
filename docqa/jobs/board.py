"""Where jobs are tracked: each job's record (status, result, error) and its event log, which
readers follow as it grows — in the API process's memory (inline) or in Redis, shared by the
API and every worker (queue).

Only the runner that works on a job writes its status past "queued"; a cancel is a request
the runner sees between two events.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    import redis

T = TypeVar("T")
Status = Literal["queued", "running", "done", "failed", "cancelled"]
HEARTBEAT_S = 2  # a worker process says it is alive this often...
HEARTBEAT_TTL_S = 6  # ...and is taken for gone when it has not for this long
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})
END = "end"  # the last event of every job's log: {"event": "end", "status": ...}


def closing_events(status: str, error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The events a job's log ends with: its error, if it has one, then END."""
    events = [{"event": "error", **error}] if error else []
    return [*events, {"event": END, "status": status}]


class JobRecord(BaseModel):
    id: str
    kind: Literal["answer", "ingest"]
    status: Status = "queued"
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0  # times a runner started it (more than one after a worker was lost)
    worker: str | None = None  # HOST:PID of the process that runs (or ran) it; not public
    owner: str | None = None  # an answer's: the key that asked; not public
    collection: str | None = None  # an ingest's: the collection it reads; not public
    progress: dict[str, Any] | None = None  # an ingest's counts so far
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # {"message": ..., "type": ...}

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def public(self) -> dict[str, Any]:
        """The record as GET /v1/jobs/{id} shows it: which machine runs it is not shown."""
        return self.model_dump(exclude_none=True, exclude={"worker", "owner", "collection"})


class JobBoard(Protocol):
    def create(self, record: JobRecord) -> None: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def update(self, job_id: str, **changes: Any) -> None: ...

    def publish(self, job_id: str, event: dict[str, Any]) -> None: ...

    def read(self, job_id: str, cursor: str, timeout: float) -> tuple[str, list[dict[str, Any]]]:
        """The events after `cursor` ("0": from the first), waiting up to `timeout` seconds
        for one; and the cursor to read on from."""
        ...

    def request_cancel(self, job_id: str) -> None: ...

    def cancel_requested(self, job_id: str) -> bool: ...

    def still_running(self, record: JobRecord) -> bool:
        """Whether the process the record names as running the job is alive."""
        ...


class BoardUnavailable(Exception):
    """The board's store (Redis) cannot be reached, after retrying."""


class MemoryBoard:
    """Jobs of one process (inline mode); finished ones are forgotten after `ttl_s`."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._records: dict[str, JobRecord] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._cancels: set[str] = set()
        self._changed = threading.Condition()

    def create(self, record: JobRecord) -> None:
        with self._changed:
            self._forget_old()
            self._records[record.id] = record
            self._events[record.id] = []

    def get(self, job_id: str) -> JobRecord | None:
        with self._changed:
            return self._records.get(job_id)

    def update(self, job_id: str, **changes: Any) -> None:
        with self._changed:
            if job_id in self._records:
                self._records[job_id] = self._records[job_id].model_copy(update=changes)

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        with self._changed:
            self._events.setdefault(job_id, []).append(event)
            self._changed.notify_all()

    def read(self, job_id: str, cursor: str, timeout: float) -> tuple[str, list[dict[str, Any]]]:
        start = int(cursor)
        with self._changed:
            self._changed.wait_for(lambda: len(self._events.get(job_id, ())) > start, timeout)
            events = self._events.get(job_id, [])[start:]
        return str(start + len(events)), events

    def request_cancel(self, job_id: str) -> None:
        with self._changed:
            self._cancels.add(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with self._changed:
            return job_id in self._cancels

    def still_running(self, record: JobRecord) -> bool:
        return False  # one process: a job is never delivered twice

    def _forget_old(self) -> None:
        oldest = time.time() - self.ttl_s
        for job_id, record in list(self._records.items()):
            if record.finished and (record.finished_at or 0) < oldest:
                del self._records[job_id], self._events[job_id]
                self._cancels.discard(job_id)


def _redis_errors_as_unavailable(cls: type[T]) -> type[T]:
    """Each public method of the class raising BoardUnavailable for a Redis error."""

    def translated(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            import redis

            try:
                return method(*args, **kwargs)
            except redis.RedisError as exc:
                raise BoardUnavailable(f"Redis is unreachable ({exc})") from exc

        return call

    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_"):
            setattr(cls, name, translated(member))
    return cls


@_redis_errors_as_unavailable
class RedisBoard:
    """Jobs in Redis, shared by the API and the workers, on any machine. Every call retries
    while Redis restarts, then raises BoardUnavailable; an event log is a Redis stream, so a
    reader that reconnects reads on from where it was."""

    PREFIX = "docqa:job:"

    def __init__(self, url: str, ttl_s: int, retries: int = 12) -> None:
        """`retries`: how long calls wait for Redis to come back (12: ~15 s, a restart)."""
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.ttl_s = ttl_s
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=retries),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=15,
        )

    def _key(self, job_id: str, part: str) -> str:
        return f"{self.PREFIX}{job_id}:{part}"

    def create(self, record: JobRecord) -> None:
        self.client.set(self._key(record.id, "record"), record.model_dump_json(), ex=self.ttl_s)

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.client.get(self._key(job_id, "record"))
        return JobRecord.model_validate_json(raw) if raw else None

    def update(self, job_id: str, **changes: Any) -> None:
        record = self.get(job_id)
        if record is not None:
            self.client.set(
                self._key(job_id, "record"),
                record.model_copy(update=changes).model_dump_json(),
                ex=self.ttl_s,
            )

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        key = self._key(job_id, "events")
        pipe = self.client.pipeline()
        pipe.xadd(key, {"event": json.dumps(event, ensure_ascii=False)})
        pipe.expire(key, self.ttl_s)
        pipe.execute()

    def read(self, job_id: str, cursor: str, timeout: float) -> tuple[str, list[dict[str, Any]]]:
        key = self._key(job_id, "events")
        answer: Any = self.client.xread({key: cursor}, block=max(1, int(timeout * 1000)))
        events = []
        for _, entries in answer or ():
            for entry_id, fields in entries:
                cursor = entry_id
                events.append(json.loads(fields["event"]))
        return cursor, events

    def request_cancel(self, job_id: str) -> None:
        self.client.set(self._key(job_id, "cancel"), "1", ex=self.ttl_s)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.client.exists(self._key(job_id, "cancel")))

    def still_running(self, record: JobRecord) -> bool:
        """A process killed a moment ago keeps its heartbeat for up to HEARTBEAT_TTL_S: it is
        taken for alive only if its heartbeat outlasts that."""
        key = f"docqa:worker:{record.worker}"
        deadline = time.monotonic() + HEARTBEAT_TTL_S + 1
        while self.client.exists(key):
            if time.monotonic() > deadline:
                return True
            time.sleep(0.5)
        return False

    def depth(self, lists: list[str]) -> int:
        """Messages waiting in a Celery queue (its Redis lists)."""
        return sum(int(self.client.llen(name)) for name in lists)

    def heartbeat(self, name: str, info: dict[str, Any], ttl_s: int) -> None:
        """A worker says it is alive (and what it serves) for the next `ttl_s` seconds."""
        self.client.set(f"docqa:worker:{name}", json.dumps(info), ex=ttl_s)

    def workers(self) -> list[dict[str, Any]]:
        """The workers alive now."""
        keys = sorted(self.client.scan_iter("docqa:worker:*", count=100))
        return [json.loads(raw) for raw in self.client.mget(keys) if raw] if keys else []

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
