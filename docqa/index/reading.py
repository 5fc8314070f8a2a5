"""Reading files (PDFs and the other formats of docqa.index.formats) into documents and
chunks, ahead of the embedding.

Files are read in reading processes (docqa.index.readers), one per core, at most that many
files plus READ_AHEAD in flight: pypdf — the slowest part of a library of filings, ~15
pages/s on a 10-Q — keeps every core busy while the embedding waits for pages, memory stays
bounded at any library size, and whatever a file does to a PDF library stays within the
reading limits.
"""

from __future__ import annotations

import hashlib
import os
import queue
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from docqa.config import ChunkingSettings, LoadingSettings, OcrMode
from docqa.errors import IngestInterrupted
from docqa.index.chunking import Chunk, Chunker, strip_boilerplate
from docqa.index.documents import Document
from docqa.index.formats import read_document_file
from docqa.index.formats.units import Opened
from docqa.index.identifying import identify
from docqa.index.loading import LimitReached, ReadError, read_file
from docqa.index.readers import ReaderProcess, limit_failure

READ_AHEAD = 2  # read files waiting for the embedding, beyond those being read
STOP_CHECK_S = 0.5  # how often the reading looks whether it is to stop


@dataclass(frozen=True)
class Planned:
    """A file to read: its content's hash and where it is."""

    sha256: str
    source: str  # path below the data folder, as sources name it
    path: Path


@dataclass(frozen=True)
class Reading:
    """How every file is read: the settings that shape its chunks, and the limits."""

    chunking: ChunkingSettings
    loading: LoadingSettings
    model_dir: Path  # the embedding model's, for its tokenizer: chunks fit its input


class ReadProgress:
    """Told how far reading has got (pages from the threads that wait for the reading
    processes, the rest as each file arrives); this base ignores it."""

    def planned(self, files: int, pages: int) -> None:
        """`files` holding `pages` pages are to be read."""

    def file(self, source: str, pages: int) -> None:
        """Reading one more file, of `pages` pages (0 when it could not be read)."""

    def page(self, ocr: bool = False) -> None:
        """Read one more page (`ocr`: from its image)."""

    def chunked(self, chunks: int) -> None:
        """Split one more file into `chunks` chunks."""

    def stop_requested(self) -> bool:
        """Whether to stop (a cancelled job): asked every STOP_CHECK_S while files are read."""
        return False


def read_ahead(
    planned: list[Planned], reading: Reading, progress: ReadProgress
) -> Iterator[tuple[Document, list[Chunk]]]:
    """Each planned file's document and chunks (no vectors yet), in order, read ahead of the
    caller's embedding. Stopping early (an error, Ctrl-C, a stop request: IngestInterrupted)
    ends the reading processes."""
    if not planned:
        return
    cores = min(len(planned), len(os.sched_getaffinity(0)))
    started = [ReaderProcess(reading) for _ in range(cores)]
    readers: queue.Queue[ReaderProcess] = queue.Queue()
    for reader in started:
        readers.put(reader)

    def read(item: Planned) -> tuple[Document, list[Chunk]]:
        reader = readers.get()
        try:
            return reader.read(item, progress.page)  # told from this thread, as they come
        finally:
            readers.put(reader)

    with ThreadPoolExecutor(cores, thread_name_prefix="docqa-read") as executor:
        try:
            progress.planned(len(planned), started[0].count_pages(planned))
            waiting: deque[tuple[Planned, Future[tuple[Document, list[Chunk]]]]] = deque()
            remaining = iter(planned)
            while True:
                for item in remaining:
                    waiting.append((item, executor.submit(read, item)))
                    if len(waiting) >= cores + READ_AHEAD:
                        break
                if not waiting:
                    return
                item, future = waiting.popleft()
                document, chunks = _result(future, progress)
                progress.file(item.source, document.pages)
                if document.parser is not None:  # it opened: its chunks are told
                    progress.chunked(len(chunks))
                yield document, chunks
        finally:
            for reader in started:
                reader.close()  # a kill ends a read in progress
            executor.shutdown(cancel_futures=True)


def _result(
    future: Future[tuple[Document, list[Chunk]]], progress: ReadProgress
) -> tuple[Document, list[Chunk]]:
    while True:
        try:
            return future.result(timeout=STOP_CHECK_S)
        except TimeoutError:
            if progress.stop_requested():
                raise IngestInterrupted("stopped") from None


def read_document(
    planned: Planned, reading: Reading, on_page: Callable[[bool], None] = lambda ocr: None
) -> tuple[Document, list[Chunk]]:
    """One file's document and chunks (in a reading process): its pages or other units read
    (OCR'd where they have no text: `on_page(ocr)` told of each), its identity found, a
    PDF's running headers removed, its text cut into chunks; or why it could not be, a limit
    named."""
    loading = reading.loading
    try:
        data = read_file(planned.path)
        if hashlib.sha256(data).hexdigest() != planned.sha256:
            raise ReadError("changed while it was being indexed: run ingest again")
        opened = read_document_file(planned.source, data, loading)
        if opened.page_count > loading.max_pages:
            units = "pages" if opened.paged else "parts"
            raise LimitReached(f"it has {opened.page_count} {units}", "max_pages")
        pages = []
        for page in opened.pages(loading.ocr, loading.max_ocr_pages):
            pages.append(page)
            if opened.paged:
                on_page(page.ocr)
        if not opened.paged:  # counted as one page (count_pages does not open it)
            on_page(False)
    except LimitReached as exc:
        failed = limit_failure(exc, loading)
        return Document(planned.sha256, 0, 0, failure=failed["failure"], limit=failed["limit"]), []
    except ReadError as exc:
        return Document(planned.sha256, 0, 0, failure=str(exc)), []
    identity = identify(
        planned.source,
        [page.text for page in pages],  # running headers included: they name the company
        opened.metadata(),
        opened.headline(),
    )
    chunking = reading.chunking
    if chunking.strip_boilerplate and opened.paged:  # other formats have no running headers
        pages = strip_boilerplate(pages)
    chunker = Chunker(
        _tokenizer(reading.model_dir),
        chunking.chunk_tokens,
        chunking.overlap_tokens,
        chunking.cross_page,
    )
    chunks = chunker.split_document(pages)
    read = Document(
        planned.sha256,
        opened.page_count,
        chunks=len(chunks),
        warnings=_warnings(planned.source, opened),
        parser=opened.parser,
        ocr=loading.ocr,
        ocr_pages=tuple(opened.ocr_pages),
        textless_pages=tuple(opened.textless_pages),
        identity=identity,
    )
    if not chunks:
        return replace(read, failure=_no_text(opened, loading.ocr)), []
    return read, chunks


@cache
def _tokenizer(model_dir: Path) -> Any:
    from docqa.index.encoders.tokens import load_tokenizer

    return load_tokenizer(model_dir)


def _warnings(source: str, opened: Opened) -> tuple[str, ...]:
    if not opened.unreadable_pages:
        return ()
    return (f"{source}: no text from pages {_ranges(opened.unreadable_pages)} (damaged)",)


def _no_text(opened: Opened, ocr: OcrMode) -> str:
    """Why a file that opened gave no chunks."""
    if not opened.paged:
        return "no text in it"
    where = f"its {opened.page_count} pages" if opened.page_count != 1 else "its page"
    if ocr == "off":
        return f"no text layer on {where} (scanned? set loading.ocr to auto to read them)"
    return f"no text on {where}, even by OCR"


def _ranges(numbers: list[int]) -> str:
    """'1-3, 7' for [1, 2, 3, 7]."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
