"""Reading processes: every file is read — parsed, decompressed, rendered, OCR'd, chunked — in
a child process (`python -m docqa.index.readers`), so that whatever a file does to a PDF
library stays within limits (the loading settings): the process's memory (its address space),
its CPU time per file, and the file's wall time (past it the process is killed). A file past a
limit, or whose reading ends the process, fails with the reason and a new process reads the
next; the ingest goes on. Any format that is read this way is bounded the same way.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docqa.config import ChunkingSettings, LoadingSettings
from docqa.index.chunking import Chunk
from docqa.index.documents import Document
from docqa.index.loading import LimitReached

if TYPE_CHECKING:
    from docqa.index.pageview import PageImage
    from docqa.index.reading import Planned, Reading

MB = 1 << 20


class ReaderProcess:
    """One reading process: a request as a JSON line on its stdin, the reply as a JSON line
    on its stdout. Given only the loading limits, it renders pages but reads no files."""

    def __init__(self, reading: Reading | LoadingSettings, seconds: int | None = None) -> None:
        settings: dict[str, Any]
        if isinstance(reading, LoadingSettings):
            self.loading, settings = reading, {"loading": reading.model_dump()}
        else:
            self.loading = reading.loading
            settings = {
                "chunking": reading.chunking.model_dump(),
                "loading": reading.loading.model_dump(),
                "model_dir": str(reading.model_dir),
            }
        self.seconds = seconds or self.loading.max_file_seconds  # a request's time at most
        self._command = [sys.executable, "-m", __name__, json.dumps(settings)]
        self._child = self._spawn()
        self._closed = False

    def count_pages(self, items: list[Planned]) -> int:
        """How many pages the files have together (those that will not open count 0)."""
        return int(self._ask({"count": [str(item.path) for item in items]}).get("pages", 0))

    def read(
        self, item: Planned, on_page: Callable[[bool], None] = lambda ocr: None
    ) -> tuple[Document, list[Chunk]]:
        """The file's document and chunks, or the document of a file that failed; told
        `on_page(ocr)` as each page is read."""
        request = {"sha256": item.sha256, "source": item.source, "path": str(item.path)}
        reply = self._ask({"read": request}, on_page)
        if "failure" in reply:
            return Document(item.sha256, 0, 0, failure=reply["failure"], limit=reply["limit"]), []
        if "error" in reply:
            raise RuntimeError(f"reading {item.source}: {reply['error']}")
        chunks = [Chunk(item.source, *fields) for fields in reply["chunks"]]
        return Document.from_json(reply["document"]), chunks

    def render(self, path: Path, number: int, dpi: int, quote: str) -> PageImage:
        """Page `number` of a PDF as an image (docqa.index.pageview.render_page)."""
        from docqa.index.pageview import NoSuchPage, PageImage, RenderError

        request = {"path": str(path), "number": number, "dpi": dpi, "quote": quote}
        reply = self._ask({"render": request})
        if "image" in reply:
            return PageImage.from_json(reply["image"])
        if "missing" in reply:
            raise NoSuchPage(reply["missing"])
        raise RenderError(
            f"page {number} could not be rendered: {reply.get('failure') or reply.get('error')}"
        )

    def close(self) -> None:
        """End the process, and any request it is answering: no new one is started."""
        self._closed = True
        self._end()

    def _ask(
        self, request: dict[str, Any], on_page: Callable[[bool], None] = lambda ocr: None
    ) -> dict[str, Any]:
        """The reply to `request` (pages read told to `on_page` as they come); or, when the
        process ended first (a limit, a crash), the failure saying why — and a new process
        for the next request."""
        stdin, stdout = self._child.stdin, self._child.stdout
        assert stdin is not None
        assert stdout is not None
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self._child.kill()

        timer = threading.Timer(self.seconds, expire)
        timer.start()
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            while (reply := json.loads(stdout.readline() or b"null")) and "page" in reply:
                on_page(reply["page"])
        except OSError:
            reply = None
        finally:
            timer.cancel()
        if reply is not None:
            return reply
        self._end()
        ended = self._ended(expired.is_set())
        if not self._closed:
            self._child = self._spawn()
        return ended

    def _ended(self, timed_out: bool) -> dict[str, str]:
        """Why the process ended, as a failure."""
        loading, code = self.loading, self._child.returncode
        if timed_out:
            reason = f"reading it took longer than {self.seconds} s"
            setting = "max_file_seconds"
        elif code == -signal.SIGXCPU:
            reason = f"reading it took more than {loading.max_file_cpu_seconds} s of CPU time"
            setting = "max_file_cpu_seconds"
        else:
            how = signal.Signals(-code).name if code < 0 else f"exit status {code}"
            reason = (
                f"reading it ended its process ({how}): a damaged file, or one that needs "
                f"more than {loading.max_memory_mb} MB"
            )
            setting = "max_memory_mb"
        return limit_failure(LimitReached(reason, setting), loading)

    def _end(self) -> None:
        self._child.kill()
        self._child.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def limit_failure(exc: LimitReached, loading: LoadingSettings) -> dict[str, str]:
    """A document's failure at a limit, with the limit it is read again at when changed."""
    return {"failure": str(exc), "limit": f"{exc.setting}={getattr(loading, exc.setting)}"}


def _serve(settings: dict[str, Any]) -> None:
    """The reading process: answer each request on stdin until stdin ends."""
    from docqa.index.pageview import NoSuchPage, render_page
    from docqa.index.reading import Planned, Reading, read_document

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the ingest's to handle
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the replies

    def reply_with(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
        replies.flush()

    loading = LoadingSettings.model_validate(settings["loading"])
    reading = (
        Reading(
            ChunkingSettings.model_validate(settings["chunking"]),
            loading,
            Path(settings["model_dir"]),
        )
        if "chunking" in settings
        else None
    )
    memory = loading.max_memory_mb * MB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump one
    for line in sys.stdin.buffer:
        request = json.loads(line)
        _limit_cpu(loading.max_file_cpu_seconds)
        try:
            if "count" in request:
                reply: dict[str, Any] = {"pages": sum(map(_page_count, request["count"]))}
            elif "render" in request:
                asked = request["render"]
                image = render_page(
                    Path(asked["path"]), asked["number"], asked["dpi"], asked["quote"]
                )
                reply = {"image": image.as_json()}
            else:
                assert reading is not None, "a rendering process reads no files"
                item = Planned(**{**request["read"], "path": Path(request["read"]["path"])})
                document, chunks = read_document(
                    item, reading, lambda ocr: reply_with({"page": ocr})
                )
                reply = {
                    "document": document.as_json(),
                    "chunks": [
                        (chunk.page, chunk.text, chunk.tokens, chunk.locator) for chunk in chunks
                    ],
                }
        except NoSuchPage as exc:
            reply = {"missing": str(exc)}
        except MemoryError:
            reason = f"reading it needed more than {loading.max_memory_mb} MB"
            reply = limit_failure(LimitReached(reason, "max_memory_mb"), loading)
        except Exception as exc:  # told to the ingest, which stops with it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        reply_with(reply)


def _page_count(path: str) -> int:
    """A PDF's pages; a file of another format counts as one."""
    from docqa.index.formats import format_of
    from docqa.index.formats.pdf import page_count

    found = format_of(path)
    if found is None or not found.paged:
        return 1
    try:
        return page_count(Path(path).read_bytes())
    except OSError:  # gone since: reported when it is read
        return 0


def _limit_cpu(seconds: int) -> None:
    """Let this process use `seconds` more of CPU time (then SIGXCPU ends it)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime) + seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
