"""Following data folders: a callback each time files in one appear, change, move or go,
once they have stopped changing (a file still being copied is not read half-written) — for
one folder (`ingest --watch`), or every collection's (`serve --watch`).

watchfiles (inotify on Linux) reports the changes; it groups those that come together
(`debounce`). Every change counts, PDF or not: an ingest with nothing new to read takes a
fraction of a second, and a folder moved in announces itself, not each of its files.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docqa.config import Settings

DEBOUNCE_MS = 500  # changes this close together are one batch
WATCH_READY_MS = 1000  # with no change for this long, the watch says it is in place
SETTLE_S = 1.0  # a changed file must keep its size and time this long before it is read
LONGEST_SETTLE_S = 300.0  # a file still changing after this is read as it is


def follow_folder(
    folder: Path, changed: Callable[[], None], stop: threading.Event | None = None
) -> None:
    """Call `changed()` once the folder is being watched (for what came before), then after
    each batch of changes below it, once the changed files have settled; until `stop` is set
    (or Ctrl-C)."""
    for paths in _batches([folder], stop):
        settle(paths)
        changed()


def follow_collections(
    settings: Settings, changed: Callable[[str], None], stop: threading.Event
) -> None:
    """Call `changed(name)` for each collection once its data folder is being watched, then
    after each batch of changes in it, until `stop` is set; a collection made or deleted
    meanwhile is followed or dropped."""
    from docqa.collection import REGISTRY

    root = settings.paths.collections
    root.mkdir(parents=True, exist_ok=True)
    while not stop.is_set():
        folders = _data_folders(settings)
        for paths in _batches([*folders.values(), root], stop):
            if not paths:  # in place: catch up, unless the collections changed meanwhile
                if _data_folders(settings) != folders:
                    break
                for name in folders:
                    changed(name)
                continue
            # Only data folders are settled: an ingest writing an index is not waited on.
            owned = {n: [p for p in paths if p.is_relative_to(d)] for n, d in folders.items()}
            owned = {name: inside for name, inside in owned.items() if inside}
            settle(path for inside in owned.values() for path in inside)
            for name in owned:
                changed(name)
            if any(path.name == REGISTRY for path in paths):
                break  # the collections changed: follow their folders now


def _data_folders(settings: Settings) -> dict[str, Path]:
    from docqa.collection import collections

    return {c.name: c.data for c in collections(settings) if c.data.is_dir()}


def _batches(folders: list[Path], stop: threading.Event | None) -> Iterator[set[Path]]:
    """An empty set as soon as the watch on `folders` is in place (what came before it is for
    the caller to catch up on), then the paths of each batch of changes below them."""
    from watchfiles import watch

    changes = watch(
        *folders,
        debounce=DEBOUNCE_MS,
        stop_event=stop,
        recursive=True,
        yield_on_timeout=True,
        rust_timeout=WATCH_READY_MS,
    )
    for number, batch in enumerate(changes):
        if number == 0:
            yield set()
        if batch:
            yield {Path(path) for _, path in batch}


def settle(paths: Iterable[Path], settle_s: float = SETTLE_S) -> None:
    """Wait until none of the files among `paths` has changed size or time for `settle_s`."""
    files = [path for path in set(paths) if path.is_file()]
    deadline = time.monotonic() + LONGEST_SETTLE_S
    seen = _states(files)
    while time.monotonic() < deadline:
        time.sleep(settle_s)
        now = _states(files)
        if now == seen:
            return
        seen = now


def _states(files: list[Path]) -> list[tuple[int, int] | None]:
    states: list[tuple[int, int] | None] = []
    for path in files:
        try:
            found = os.stat(path)
        except OSError:
            states.append(None)
        else:
            states.append((found.st_size, found.st_mtime_ns))
    return states
