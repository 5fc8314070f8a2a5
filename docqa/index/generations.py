"""Index generations in the vectorstore folder, and the lock that lets one ingest write.

    CURRENT                  name of the generation in use, replaced atomically
    gen-<time>-<id>/         one complete index (docqa.index.store)
    documents/<settings>/    each document's chunks and vectors (docqa.index.documents)
    .lock                    held by the one ingest allowed to write at a time

A new generation is written beside the old one, flushed to disk, then CURRENT is switched, so a
crash at any moment leaves the previous index usable; the generation before it is kept too,
for readers still loading it.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from docqa.errors import IndexBusyError, IndexWriteError, VectorStoreError
from docqa.files import fsync

CURRENT = "CURRENT"
LOCK = ".lock"
KEEP_GENERATIONS = 2  # the current one and the one before, which a reader may still be loading
READ_ATTEMPTS = 3
RERUN = "run `python ingest.py` to rebuild it"
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}
_GENERATION = re.compile(r"gen-[0-9A-Za-z-]{1,64}")

T = TypeVar("T")


@contextmanager
def staged_generation(folder: Path) -> Iterator[Path]:
    """A staging folder to write a new generation in; when the block ends, the generation is
    flushed and made current atomically, and older ones are removed. A failed write leaves the
    current one as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"gen-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"  # sorts by time
    staging = folder / f".staging-{name}"
    try:
        staging.mkdir()
        yield staging
        for path in staging.iterdir():
            fsync(path)
        fsync(staging)
        os.rename(staging, folder / name)
        fsync(folder)
        pointer = folder / f".{CURRENT}.{name}"
        pointer.write_text(name + "\n", encoding="utf-8")
        fsync(pointer)
        os.replace(pointer, folder / CURRENT)
        fsync(folder)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
            raise write_error(folder, exc) from exc
        raise
    _remove_old_generations(folder, keep=name)


def write_error(folder: Path, exc: OSError) -> IndexWriteError:
    return IndexWriteError(
        f"cannot write the index in {folder} ({exc.strerror}); the previous index is "
        "unchanged and finished files are kept: free some space and run ingest again"
    )


def read_current(folder: Path, read: Callable[[Path], T]) -> T:
    """`read` of the current generation, read again from the newest one when CURRENT moved on
    meanwhile: ingest keeps only the newest two generations, so when two finish during a read
    its files vanish, whatever error that raises (a missing file, a "damaged" manifest, FAISS's
    RuntimeError). With CURRENT unchanged, the error is the index's own."""
    for attempt in range(READ_ATTEMPTS):
        name = current_generation(folder)
        try:
            if not (folder / name).is_dir():
                raise _bad_current(folder)
            return read(folder / name)
        except Exception:
            if attempt == READ_ATTEMPTS - 1 or not _replaced(folder, name):
                raise
    raise AssertionError("unreachable")


def current_generation(folder: Path) -> str:
    """The name of the generation CURRENT points to: a new one after each ingest that wrote."""
    try:
        name = (folder / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise VectorStoreError(
            f"no index in {folder}: run `python ingest.py` first (it reads the documents in data/)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorStoreError(f"cannot read the index in {folder} ({exc}): {RERUN}") from exc
    if not _GENERATION.fullmatch(name):
        raise _bad_current(folder)
    return name


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the index's write lock, or refuse at once when another ingest holds it."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise IndexBusyError(
                f"another ingest (process {holder}) is writing the index in {folder}: wait "
                "for it to finish, then run ingest again"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def index_size(folder: Path) -> int:
    """Bytes on disk under the index folder (every generation and the document store)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _replaced(folder: Path, name: str) -> bool:
    """Whether CURRENT no longer points to generation `name`."""
    try:
        return current_generation(folder) != name
    except VectorStoreError:
        return True  # read it again, to report what is wrong now


def _bad_current(folder: Path) -> VectorStoreError:
    return VectorStoreError(f"the index in {folder} is damaged (bad {CURRENT}): {RERUN}")


def _remove_old_generations(folder: Path, keep: str) -> None:
    """Remove every generation but the newest KEEP_GENERATIONS, and leftovers of crashes."""
    generations = sorted(
        (path for path in folder.iterdir() if _GENERATION.fullmatch(path.name)),
        key=lambda path: (path.name == keep, path.name),
        reverse=True,
    )
    leftovers = [
        path for path in folder.iterdir() if path.name.startswith((".staging-", f".{CURRENT}."))
    ]
    for path in generations[KEEP_GENERATIONS:] + leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
