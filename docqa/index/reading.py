"""Reading PDFs into documents and chunks, ahead of the embedding.

One file is read in a thread beside the embedding (pypdf holds its process's interpreter, the
embedding runs elsewhere); several are read in worker processes, one per core, so that pypdf
— the slowest part of a library of filings, ~15 pages/s on a 10-Q — keeps every core busy
while the embedding waits for pages, and shares them when it does not. Either way at most
READ_AHEAD files wait, read, for the embedding: memory stays bounded at any library size.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from docqa.config import ChunkingSettings, OcrMode
from docqa.errors import IngestInterrupted
from docqa.index.chunking import Chunk, Chunker, strip_boilerplate
from docqa.index.documents import Document
from docqa.index.identifying import headline_of, identify
from docqa.index.loading import PdfFile, PdfReadError, open_pdf, read_file
from docqa.threads import Put, produced_beside

READ_AHEAD = 2  # read files waiting for the embedding, beyond those being read


@dataclass(frozen=True)
class Planned:
    """A file to read: its content's hash and where it is."""

    sha256: str
    source: str  # path below the data folder, as sources name it
    path: Path


@dataclass(frozen=True)
class Reading:
    """How every file is read: the settings that shape its chunks."""

    chunking: ChunkingSettings
    ocr: OcrMode
    model_dir: Path  # the embedding model's, for its tokenizer: chunks fit its input


class ReadProgress:
    """Told how far reading has got (from the reading thread; per file when workers read);
    this base ignores it."""

    def file(self, source: str, pages: int) -> None:
        """Reading one more file, of `pages` pages (0 when it could not be read)."""

    def page(self, ocr: bool = False) -> None:
        """Read one more page (`ocr`: from its image)."""

    def chunked(self, chunks: int) -> None:
        """Split one more file into `chunks` chunks."""


def read_ahead(
    planned: list[Planned], reading: Reading, progress: ReadProgress
) -> Iterator[tuple[Document, list[Chunk]]]:
    """Each planned file's document and chunks (no vectors yet), in order, read ahead of the
    caller's embedding. Stopping early (an error, Ctrl-C) stops the reading."""
    if len(planned) > 1 and len(os.sched_getaffinity(0)) > 1:
        yield from _in_workers(planned, reading, progress)
    else:
        yield from _in_thread(planned, reading, progress)


def read_document(
    planned: Planned,
    reading: Reading,
    progress: ReadProgress | None = None,
    stop: threading.Event | None = None,
) -> tuple[Document, list[Chunk]]:
    """One file's document and chunks: its pages read (OCR'd where they have no text), its
    identity found, its running headers removed, its text cut into chunks."""
    progress = progress or ReadProgress()
    try:
        data = read_file(planned.path)
        if hashlib.sha256(data).hexdigest() != planned.sha256:
            raise PdfReadError("changed while it was being indexed: run ingest again")
        pdf = open_pdf(planned.source, data)
    except PdfReadError as exc:
        progress.file(planned.source, 0)
        return Document(planned.sha256, 0, 0, failure=str(exc)), []
    progress.file(planned.source, pdf.page_count)
    pages = []
    for page in pdf.pages(reading.ocr):
        if stop is not None and stop.is_set():
            raise IngestInterrupted("stopped")
        pages.append(page)
        progress.page(page.ocr)
    identity = identify(
        planned.source,
        [page.text for page in pages],  # running headers included: they name the company
        pdf.metadata(),
        headline_of(pdf.first_page_lines()),
    )
    chunking = reading.chunking
    if chunking.strip_boilerplate:
        pages = strip_boilerplate(pages)
    chunker = Chunker(
        _tokenizer(reading.model_dir),
        chunking.chunk_tokens,
        chunking.overlap_tokens,
        chunking.cross_page,
    )
    chunks = chunker.split_document(pages)
    progress.chunked(len(chunks))
    read = Document(
        planned.sha256,
        pdf.page_count,
        chunks=len(chunks),
        warnings=_warnings(pdf),
        parser=pdf.parser,
        ocr=reading.ocr,
        ocr_pages=tuple(pdf.ocr_pages),
        textless_pages=tuple(pdf.textless_pages),
        identity=identity,
    )
    if not chunks:
        return replace(read, failure=_no_text(pdf, reading.ocr)), []
    return read, chunks


def _in_thread(
    planned: list[Planned], reading: Reading, progress: ReadProgress
) -> Iterator[tuple[Document, list[Chunk]]]:
    def read_all(put: Put[tuple[Document, list[Chunk]]], stop: threading.Event) -> None:
        for item in planned:
            put(read_document(item, reading, progress, stop))

    return produced_beside(read_all, "docqa-read", ahead=READ_AHEAD)


def _in_workers(
    planned: list[Planned], reading: Reading, progress: ReadProgress
) -> Iterator[tuple[Document, list[Chunk]]]:
    """Read in a process per core, at most that many files plus READ_AHEAD in flight,
    results in order; progress is told per file, as each arrives."""
    cores = len(os.sched_getaffinity(0))
    workers: queue.Queue[_Worker] = queue.Queue()
    for _ in range(cores):
        workers.put(_Worker(reading))

    def read(item: Planned) -> tuple[Document, list[Chunk]]:
        worker = workers.get()
        try:
            return worker.read(item)
        finally:
            workers.put(worker)

    with ThreadPoolExecutor(cores, thread_name_prefix="docqa-read") as executor:
        try:
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
                document, chunks = future.result()
                progress.file(item.source, document.pages)
                for number in range(1, document.pages + 1):
                    progress.page(number in document.ocr_pages)
                if document.parser is not None:  # it opened: told as read_document tells it
                    progress.chunked(len(chunks))
                yield document, chunks
        finally:
            for _ in range(cores):
                workers.get().close()  # as each finishes: a kill ends a read in progress
            executor.shutdown(cancel_futures=True)


class _Worker:
    """A reading process (`python -m docqa.index.reading`): a file to read as a JSON line on
    its stdin, its document and chunks as a JSON line on its stdout."""

    def __init__(self, reading: Reading) -> None:
        settings = {
            "chunking": reading.chunking.model_dump(),
            "ocr": reading.ocr,
            "model_dir": str(reading.model_dir),
        }
        self._command = [sys.executable, "-m", __name__, json.dumps(settings)]
        self._child = self._spawn()

    def read(self, item: Planned) -> tuple[Document, list[Chunk]]:
        """The file's document and chunks; a file whose reading ends the process (a crash in
        a PDF library) is a file that failed, and a new process reads the next."""
        stdin, stdout = self._child.stdin, self._child.stdout
        assert stdin is not None
        assert stdout is not None
        request = {"sha256": item.sha256, "source": item.source, "path": str(item.path)}
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            reply = json.loads(stdout.readline() or b"null")
        except OSError:
            reply = None
        if reply is None:
            self.close()
            self._child = self._spawn()
            return Document(item.sha256, 0, 0, failure="reading it ended its process"), []
        if "error" in reply:
            raise RuntimeError(f"reading {item.source}: {reply['error']}")
        chunks = [Chunk(item.source, page, text, tokens) for page, text, tokens in reply["chunks"]]
        return Document.from_json(reply["document"]), chunks

    def close(self) -> None:
        self._child.kill()
        self._child.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _serve(settings: dict[str, Any]) -> None:
    """The reading process: read each file named on stdin until stdin ends."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the ingest's to handle
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the replies
    reading = Reading(
        ChunkingSettings.model_validate(settings["chunking"]),
        settings["ocr"],
        Path(settings["model_dir"]),
    )
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            item = Planned(request["sha256"], request["source"], Path(request["path"]))
            document, chunks = read_document(item, reading)
            reply: dict[str, Any] = {
                "document": document.as_json(),
                "chunks": [(chunk.page, chunk.text, chunk.tokens) for chunk in chunks],
            }
        except Exception as exc:  # told to the ingest, which stops with it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
        replies.flush()


@cache
def _tokenizer(model_dir: Path) -> Any:
    from docqa.index.encoders.tokens import load_tokenizer

    return load_tokenizer(model_dir)


def _warnings(pdf: PdfFile) -> tuple[str, ...]:
    if not pdf.unreadable_pages:
        return ()
    return (f"{pdf.source}: no text from pages {_ranges(pdf.unreadable_pages)} (damaged)",)


def _no_text(pdf: PdfFile, ocr: OcrMode) -> str:
    """Why a file that opened gave no chunks."""
    where = f"its {pdf.page_count} pages" if pdf.page_count != 1 else "its page"
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


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
