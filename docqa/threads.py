"""Work done in a thread of its own and handed over as it is produced: the chain's tokens as
the model generates them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
Put = Callable[[T], None]


class Stopped(Exception):
    """The reader went away: what was producing for it ends."""


def produced_beside(produce: Callable[[Put[T]], None], name: str) -> Generator[T, None, None]:
    """What `produce(put)` puts, as it puts it, from a thread named `name`. Its exception is
    raised here. Closing the iterator makes `put` raise Stopped (which ends `produce`
    quietly), then waits for the thread."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def put(item: T) -> None:
        if stop.is_set():
            raise Stopped
        items.put(("item", item))

    def work() -> None:
        try:
            produce(put)
            items.put(("end", None))
        except Stopped:
            pass  # nobody is reading
        except BaseException as exc:  # handed to the reader, which raises it
            items.put(("error", exc))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()
