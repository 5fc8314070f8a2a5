"""Sharing a server between keys: each key's questions are limited (so many at once, so many a
minute), and questions waiting for the model are taken in turn across keys, so one busy key
cannot starve the others."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

from docqa.server.errors import ApiError
from docqa.server.keys import NO_KEY_OWNER

Item = TypeVar("Item")
MINUTE_S = 60.0


class FairQueue(Generic[Item]):
    """Waiting items taken in turn across their owners (round robin), each owner's in the order
    they came; at most `maxsize` wait in all."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._waiting: OrderedDict[str, deque[Item]] = OrderedDict()
        self._size = 0
        self._closed = False
        self._ready = threading.Condition()

    def qsize(self) -> int:
        return self._size

    def full(self) -> bool:
        return self._size >= self.maxsize

    def put_nowait(self, owner: str, item: Item) -> None:
        """Queue `item` of `owner` (queue.Full when `maxsize` wait already)."""
        with self._ready:
            if self.full():
                raise queue.Full
            self._waiting.setdefault(owner, deque()).append(item)
            self._size += 1
            self._ready.notify()

    def get(self, timeout: float) -> Item | None:
        """The next owner's oldest item (that owner then waits behind the others); None once
        closed; queue.Empty after `timeout` seconds with none."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._size or self._closed, timeout):
                raise queue.Empty
            if self._closed:
                return None
            owner, items = next(iter(self._waiting.items()))
            item = items.popleft()
            if items:
                self._waiting.move_to_end(owner)
            else:
                del self._waiting[owner]
            self._size -= 1
            return item

    def close(self) -> list[Item]:
        """Stop: `get` returns None from now on. The items that were waiting."""
        with self._ready:
            left = [item for items in self._waiting.values() for item in items]
            self._waiting.clear()
            self._size, self._closed = 0, True
            self._ready.notify_all()
            return left


class KeyLimits:
    """Each key's questions in this API process: at most `at_once` unfinished (a finished job
    is told by `finished(job_id)`) and `per_minute` in any minute; past either, a 429 with
    Retry-After. A question admitted holds its place (a ticket) until it is a job."""

    def __init__(self, at_once: int, per_minute: int, finished: Callable[[str], bool]) -> None:
        self.at_once, self.per_minute = at_once, per_minute
        self._finished = finished
        self._asked: dict[str, deque[float]] = {}  # owner -> when its last questions came
        self._open: dict[str, list[object]] = {}  # owner -> its questions: tickets or job ids
        self._lock = threading.Lock()

    def admit(self, owner: str, retry_after: int) -> tuple[object, int]:
        """A ticket for a question of `owner`'s, and how many of theirs are unanswered before
        it; or a 429 (`retry_after`: a typical answer's seconds, for a key with too many at
        once). A server without keys has one user, who is not limited."""
        if owner == NO_KEY_OWNER:
            return object(), 0
        with self._lock:
            jobs = [job for job in self._open.get(owner, []) if isinstance(job, str)]
        done = {job for job in jobs if self._finished(job)}  # looked up outside the lock
        now = time.monotonic()
        with self._lock:
            asked = self._asked.setdefault(owner, deque())
            while asked and asked[0] <= now - MINUTE_S:
                asked.popleft()
            if len(asked) >= self.per_minute:
                raise _too_many(f"{self.per_minute} questions a minute", asked[0] + MINUTE_S - now)
            unfinished = [job for job in self._open.get(owner, []) if job not in done]
            if len(unfinished) >= self.at_once:
                raise _too_many(f"{self.at_once} questions at once", retry_after)
            ticket = object()
            self._open[owner] = [*unfinished, ticket]
            asked.append(now)
            return ticket, len(unfinished)

    def started(self, owner: str, ticket: object, job_id: str | None) -> None:
        """The question of `ticket` became job `job_id` (None: it was refused after all)."""
        with self._lock:
            held = self._open.get(owner, [])
            self._open[owner] = [
                job_id if job is ticket else job for job in held if job is not ticket or job_id
            ]


def _too_many(limit: str, wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        f"this key asks more than its limit of {limit}: try again in {seconds} s",
        code="key_limit",
        headers={"Retry-After": str(seconds)},
    )
